"""The authorization module on its own (firmware/authorization.py): a fake backend and a
fake controller, no OCPP. Starts, refusals, the offline answers a backend gives, stops by
the same card or its group, strangers refused, and every decision published before the
controller is told."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from firmware.authorization import (
    BACKEND_FAILED,
    NO_BACKEND,
    NOT_HOLDER,
    OCCUPIED,
    AuthDecision,
    Authorization,
    Verdict,
)
from firmware.core import events as ev
from firmware.core.session import Status
from firmware.core.transitions import Phase


def _status(phase: Phase) -> Status:
    return Status(phase, 0.0, 0.0, 0.0, None, 0.0, 0.0, 0.0, (), None)


@dataclass
class FakeController:
    phases: dict[int, Phase] = field(default_factory=lambda: {1: Phase.PREPARING,
                                                              2: Phase.PREPARING})
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    observers: list[Any] = field(default_factory=list)

    def emit(self, evse_id: int, cmd: ev.Command) -> None:
        for observer in self.observers:
            observer(evse_id, cmd, 0.0)

    def authorize(self, evse_id: int, token: str, source: str) -> None:
        self.calls.append(("authorize", evse_id, token, source))
        self.phases[evse_id] = Phase.CHARGING  # as if the session went straight on
        self.emit(evse_id, ev.SessionStarted(token, source, 0.0))

    def request_stop(self, evse_id: int, reason: str) -> None:
        self.calls.append(("stop", evse_id, reason))

    def dispatch(self, evse_id: int, event: ev.Event) -> None:
        self.calls.append(("dispatch", evse_id, event))

    def status(self, evse_id: int) -> Status:
        return _status(self.phases[evse_id])


class FakeBackend:
    """Answers from a table; ``offline`` answers as a station's offline policy would."""

    def __init__(self, known: dict[str, Verdict]) -> None:
        self.known = known
        self.asked: list[tuple[int, str, str]] = []
        self.fail = False

    async def check(self, evse_id: int, token: str, source: str) -> Verdict:
        self.asked.append((evse_id, token, source))
        if self.fail:
            raise RuntimeError("backend exploded")
        return self.known.get(token, Verdict("Unknown"))


def _rig(known: dict[str, Verdict] | None = None
         ) -> tuple[Authorization, FakeController, FakeBackend, list[AuthDecision]]:
    controller = FakeController()
    backend = FakeBackend(known or {})
    clock = iter(range(100, 10_000))
    auth = Authorization(controller, lambda: float(next(clock)), backend)
    seen: list[AuthDecision] = []
    auth.subscribe(seen.append)
    return auth, controller, backend, seen


FLEET = {"DRIVER-A": Verdict("Accepted", "FLEET-7"), "DRIVER-B": Verdict("Accepted", "FLEET-7"),
         "LONER": Verdict("Accepted"), "BLOCKED": Verdict("Blocked")}


def test_accepted_card_starts_the_session() -> None:
    auth, controller, backend, seen = _rig(FLEET)
    decision = asyncio.run(auth.present_card(1, "DRIVER-A"))
    assert decision == AuthDecision(1, "DRIVER-A", "rfid", True, "Accepted", 100.0, "start",
                                    "csms", "FLEET-7")
    assert backend.asked == [(1, "DRIVER-A", "rfid")]
    assert controller.calls == [("authorize", 1, "DRIVER-A", "rfid")]
    assert seen == [decision] and auth.last(1) == decision
    assert decision.message == "Card accepted." and not decision.offline


def test_rejected_card_is_told_to_the_core_and_no_session_starts() -> None:
    auth, controller, _, seen = _rig(FLEET)
    blocked = asyncio.run(auth.present_card(1, "BLOCKED"))
    unknown = asyncio.run(auth.present_card(1, "NOBODY"))
    assert (blocked.accepted, blocked.reason) == (False, "Blocked")
    assert (unknown.accepted, unknown.reason) == (False, "Unknown")
    assert controller.calls == [("dispatch", 1, ev.AuthorizeRejected("BLOCKED", "Blocked")),
                                ("dispatch", 1, ev.AuthorizeRejected("NOBODY", "Unknown"))]
    assert seen == [blocked, unknown]
    assert unknown.message == "Card not accepted (Unknown)."
    assert auth.holder(1) is None


def test_offline_answers_of_the_backend_are_shown_as_offline() -> None:
    """The backend decides offline (local list, cache, offline policy); the decision says
    which, so the screen can show "offline, accepted by local list"."""
    auth, controller, _, _ = _rig({"LISTED": Verdict("Accepted", None, "local_list"),
                                   "ANYONE": Verdict("Accepted", None, "offline_policy"),
                                   "STALE": Verdict("Unknown", None, "offline_policy")})
    listed = asyncio.run(auth.present_card(1, "LISTED"))
    assert listed.accepted and listed.offline and listed.basis == "local_list"
    anyone = asyncio.run(auth.present_card(2, "ANYONE"))
    assert anyone.accepted and anyone.basis == "offline_policy"
    controller.phases[1] = Phase.PREPARING
    stale = asyncio.run(auth.present_card(1, "STALE"))
    assert not stale.accepted and stale.offline and stale.reason == "Unknown"


def test_backend_failure_or_none_refuses() -> None:
    """Fail closed: a backend that raises, or none at all, refuses the token."""
    auth, controller, backend, seen = _rig(FLEET)
    backend.fail = True
    failed = asyncio.run(auth.present_card(1, "DRIVER-A"))
    assert (failed.accepted, failed.reason) == (False, BACKEND_FAILED)
    nobody = Authorization(controller, lambda: 0.0)
    none = asyncio.run(nobody.present_card(2, "DRIVER-A"))
    assert (none.accepted, none.reason) == (False, NO_BACKEND)
    assert not any(c[0] == "authorize" for c in controller.calls)


def test_same_card_stops_its_session() -> None:
    auth, controller, _, seen = _rig(FLEET)
    asyncio.run(auth.present_card(1, "LONER"))
    stop = asyncio.run(auth.present_card(1, "LONER"))
    assert (stop.action, stop.accepted) == ("stop", True)
    assert controller.calls[-1] == ("stop", 1, "Local")
    assert stop.message == "Stopping: card accepted."
    assert [d.action for d in seen] == ["start", "stop"]


def test_card_of_the_same_group_stops_the_session() -> None:
    auth, controller, _, _ = _rig(FLEET)
    asyncio.run(auth.present_card(1, "DRIVER-A"))
    stop = asyncio.run(auth.present_card(1, "DRIVER-B"))
    assert (stop.action, stop.accepted, stop.group) == ("stop", True, "FLEET-7")
    assert controller.calls[-1] == ("stop", 1, "Local")


def test_stranger_cannot_stop_and_the_session_goes_on() -> None:
    auth, controller, _, seen = _rig(FLEET)
    asyncio.run(auth.present_card(1, "DRIVER-A"))
    calls = len(controller.calls)
    loner = asyncio.run(auth.present_card(1, "LONER"))  # accepted card, other holder
    blocked = asyncio.run(auth.present_card(1, "BLOCKED"))
    assert (loner.action, loner.accepted, loner.reason) == ("stop", False, NOT_HOLDER)
    assert (blocked.action, blocked.accepted, blocked.reason) == ("stop", False, "Blocked")
    assert len(controller.calls) == calls  # nothing told to the controller
    assert controller.phases[1] is Phase.CHARGING
    assert loner.message == "This card did not start this session."
    assert seen[-2:] == [loner, blocked]


def test_a_holder_counts_only_while_a_session_runs() -> None:
    """After the session (Finished, unplugged) the same card starts a new one."""
    auth, controller, _, _ = _rig(FLEET)
    asyncio.run(auth.present_card(1, "LONER"))
    assert auth.holder(1) is not None
    controller.phases[1] = Phase.PREPARING
    assert auth.holder(1) is None
    again = asyncio.run(auth.present_card(1, "LONER"))
    assert (again.action, again.accepted) == ("start", True)


def test_a_session_started_elsewhere_has_its_token_as_holder() -> None:
    """A session the core began for a token that did not come through here (the vehicle,
    a scenario): its own card stops it, others do not; the holder ends with it."""
    auth, controller, _, _ = _rig(FLEET)
    controller.phases[1] = Phase.CHARGING
    controller.emit(1, ev.SessionStarted("LONER", "rfid", 0.0))
    assert (asyncio.run(auth.present_card(1, "DRIVER-A"))).reason == NOT_HOLDER
    assert (asyncio.run(auth.present_card(1, "LONER"))).accepted
    controller.emit(1, ev.SessionEnded("Local", 1.0, 500.0))
    assert auth.holder(1) is None
    auth.close()
    assert controller.observers == []


def test_vouched_start_skips_the_backend() -> None:
    """A remote start the CSMS vouches for (AuthorizeRemoteStart false) is not checked."""
    auth, controller, backend, seen = _rig()
    decision = asyncio.run(auth.request_start(2, "APP-USER", "app", vouched_by="csms"))
    assert decision.accepted and decision.basis == "csms" and backend.asked == []
    assert controller.calls == [("authorize", 2, "APP-USER", "app")]
    assert decision.message == "Token accepted."


def test_a_start_at_a_running_session_is_refused_and_stops_nothing() -> None:
    """Only a card at the reader toggles; an app or terminal start never stops."""
    auth, controller, _, seen = _rig(FLEET)
    asyncio.run(auth.present_card(1, "LONER"))
    calls = len(controller.calls)
    again = asyncio.run(auth.request_start(1, "LONER", "app", vouched_by="csms"))
    assert (again.action, again.accepted, again.reason) == ("start", False, OCCUPIED)
    assert len(controller.calls) == calls and seen[-1] == again
    holder = auth.holder(1)
    assert holder is not None and (holder.token, holder.source) == ("LONER", "rfid")


def test_subscribers_hear_before_the_controller_and_a_failing_one_is_contained(
        caplog: pytest.LogCaptureFixture) -> None:
    auth, controller, _, _ = _rig(FLEET)
    order: list[str] = []
    auth.subscribe(lambda d: order.append(f"heard, controller saw {len(controller.calls)}"))

    def broken(_: AuthDecision) -> None:
        raise ValueError("screen unplugged")
    unsubscribe = auth.subscribe(broken)
    with caplog.at_level(logging.ERROR, logger="chargebay.authorization"):
        decision = asyncio.run(auth.present_card(1, "LONER"))
    assert decision.accepted and controller.calls == [("authorize", 1, "LONER", "rfid")]
    assert order == ["heard, controller saw 0"]
    assert "subscriber failed" in caplog.text
    unsubscribe()
    caplog.clear()
    asyncio.run(auth.present_card(2, "DRIVER-A"))
    assert "subscriber failed" not in caplog.text
