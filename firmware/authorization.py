"""Who may charge: one place that every source of a token feeds and that alone tells the
controller to start or stop a session for one.

Sources: a card at the bay's reader (``present_card``, what a card-reader driver calls),
a remote start from the central system (the OCPP station calls ``request_start``), later
the payment terminal. A backend checks tokens (today the OCPP station: Authorize to the
CSMS, or its local list, cache and offline policy while offline); this module decides
what a check means for the EVSE, tells the controller, remembers who holds each EVSE,
and publishes every decision as a value (``AuthDecision``) so the bay screen and the
OCPP station (the idToken of a TransactionEvent) can follow.

    authorization = Authorization(controller, clock.now)
    authorization.use_backend(backend)          # backend.check(evse_id, token, source)
    unsubscribe = authorization.subscribe(on_decision)
    decision = await authorization.present_card(1, "04A1B2C3D4E5F6")
    decision = await authorization.request_start(2, "APP-USER-1", "app", vouched_by="csms")

A card at an EVSE with a running session is a stop request: it stops the session when
it is accepted and is the card that started it or one of the same group (OCPP 2.0.1
C01.FR.03 / C09 groupIdToken; OCPP 1.6 parentIdTag); a stranger's card is
refused and the session goes on. Status words are the AuthorizationStatus words OCPP
1.6 and 2.0.1 share (Accepted, Blocked, Expired, Invalid, Unknown, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from firmware import words
from firmware.core import events as ev
from firmware.core.events import StopReason
from firmware.core.session import Status
from firmware.core.transitions import SESSION

log = logging.getLogger("chargebay.authorization")


# Reasons this module gives on top of the backend's status words.
NOT_HOLDER = "NotHolder"  # a card that neither started the session nor shares its group
BACKEND_FAILED = "BackendFailed"  # the backend raised: refused (fail closed)
NO_BACKEND = "NoBackend"  # nobody to ask: refused
OCCUPIED = "Occupied"  # a start for an EVSE whose session runs: refused, session goes on


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a backend says about a token."""

    status: str  # Accepted, or why not: Blocked, Expired, Invalid, Unknown, ...
    group: str | None = None  # the token's group (2.0.1 groupIdToken, 1.6 parentIdTag)
    basis: str = "csms"  # who said so: csms, local_list, cache, offline_policy
    # Text for the driver with it, as (language tag or "", text): the CSMS's tariff or
    # greeting (2.0.1 idTokenInfo.personalMessage); and the holder's languages, first
    # preferred (RFC 5646 tags: 2.0.1 language1 / language2).
    messages: tuple[tuple[str, str], ...] = ()
    languages: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status == "Accepted"


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """One decision about one token at one EVSE, as published to subscribers."""

    evse_id: int
    token: str
    source: str  # rfid, app, payment (the core's words)
    accepted: bool
    reason: str  # the backend's status word, or NOT_HOLDER / BACKEND_FAILED / NO_BACKEND /
    #              OCCUPIED
    at: float  # the controller's clock
    action: str = "start"  # start: a session may begin; stop: the running one ends
    basis: str = "csms"  # csms, local_list, cache, offline_policy, or who vouched
    group: str | None = None
    messages: tuple[tuple[str, str], ...] = ()  # the verdict's, for the bay screen
    languages: tuple[str, ...] = ()

    @property
    def offline(self) -> bool:
        """Decided without the central system (the screen says so)."""
        return self.basis in ("local_list", "cache", "offline_policy")

    @property
    def message(self) -> str:
        """A line for the bay screen or a log (English; firmware/words.py has them all)."""
        return words.authorization_text(self.action, self.accepted, self.source,
                                        self.reason)


class Backend(Protocol):
    async def check(self, evse_id: int, token: str, source: str) -> Verdict: ...


class ControllerPort(Protocol):
    """What this module needs of firmware.loop.Controller."""

    observers: list[Callable[[int, ev.Command, float], None]]

    def authorize(self, evse_id: int, token: str, source: str) -> None: ...
    def request_stop(self, evse_id: int, reason: StopReason) -> None: ...
    def dispatch(self, evse_id: int, event: ev.Event) -> None: ...
    def status(self, evse_id: int) -> Status: ...


Listener = Callable[[AuthDecision], None]


@dataclass(frozen=True, slots=True)
class Holder:
    """The token whose acceptance started an EVSE's session."""

    token: str
    group: str | None
    source: str


def same_holder(holder: Holder, token: str, group: str | None) -> bool:
    """May ``token`` (of ``group``) stop the session ``holder`` started? The same token,
    or one of the same group."""
    if token == holder.token:
        return True
    return holder.group is not None and group is not None and holder.group == group


class Authorization:
    def __init__(self, controller: ControllerPort, now: Callable[[], float],
                 backend: Backend | None = None) -> None:
        self.controller = controller
        self.now = now
        self.backend = backend
        self._listeners: list[Listener] = []
        self._holders: dict[int, Holder] = {}
        self._last: dict[int, AuthDecision] = {}
        controller.observers.append(self._observe)

    def close(self) -> None:
        """Stop watching the controller."""
        if self._observe in self.controller.observers:
            self.controller.observers.remove(self._observe)

    def _observe(self, evse_id: int, cmd: ev.Command, now: float) -> None:
        """A session that began without us (e.g. a start the vehicle authorized) still
        has a holder: its token, no group. The holder goes with the session."""
        if isinstance(cmd, ev.SessionStarted):
            held = self._holders.get(evse_id)
            if held is None or held.token != cmd.token:
                self._holders[evse_id] = Holder(cmd.token, None, cmd.source)
        elif isinstance(cmd, ev.SessionEnded):
            self._holders.pop(evse_id, None)

    def use_backend(self, backend: Backend) -> None:
        self.backend = backend

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """``listener(decision)`` for every decision, before the controller is told (so
        the TransactionEvent the start triggers already carries its idToken).
        Returns the call that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)
        return unsubscribe

    def holder(self, evse_id: int) -> Holder | None:
        """Who holds the EVSE's running session (None when no session runs)."""
        holder = self._holders.get(evse_id)
        if holder is None or self.controller.status(evse_id).phase not in SESSION:
            return None
        return holder

    def last(self, evse_id: int) -> AuthDecision | None:
        return self._last.get(evse_id)

    # --- sources -------------------------------------------------------------------------

    async def present_card(self, evse_id: int, token: str) -> AuthDecision:
        """A card at the bay's reader: start a session, or stop the one it (or its
        group) started."""
        verdict = await self._check(evse_id, token, "rfid")
        holder = self.holder(evse_id)  # after the check: the session may have ended
        if holder is not None:
            return self._stop(evse_id, token, "rfid", verdict, holder)
        return self._start(evse_id, token, "rfid", verdict)

    async def request_start(self, evse_id: int, token: str, source: str, *,
                            vouched_by: str | None = None) -> AuthDecision:
        """A start for ``evse_id`` from ``source`` (the app through the CSMS, later the
        payment terminal). ``vouched_by`` names a source that has authorized the token
        itself (the CSMS's RequestStartTransaction when AuthCtrlr.AuthorizeRemoteStart
        is false, F01; an approved payment): no backend check then. Never a stop: at an
        EVSE with a running session it is refused (OCCUPIED) and the session goes on."""
        if vouched_by is not None:
            verdict = Verdict("Accepted", None, vouched_by)
        else:
            verdict = await self._check(evse_id, token, source)
        if self.holder(evse_id) is not None:
            decision = self._decision(evse_id, token, source, verdict, "start", OCCUPIED)
            self._publish(decision)
            return decision
        return self._start(evse_id, token, source, verdict)

    # --- decisions -----------------------------------------------------------------------

    async def _check(self, evse_id: int, token: str, source: str) -> Verdict:
        if self.backend is None:
            return Verdict(NO_BACKEND, None, "none")
        try:
            return await self.backend.check(evse_id, token, source)
        except Exception:  # noqa: BLE001 - any failure of the backend refuses the token
            log.exception("authorization backend failed for %s at EVSE %d", token, evse_id)
            return Verdict(BACKEND_FAILED, None, "none")

    def _start(self, evse_id: int, token: str, source: str, verdict: Verdict
               ) -> AuthDecision:
        decision = self._decision(evse_id, token, source, verdict, "start")
        self._publish(decision)  # first: the transaction notes the idToken
        if decision.accepted:
            self._holders[evse_id] = Holder(token, verdict.group, source)
            self.controller.authorize(evse_id, token, source)
        else:
            self.controller.dispatch(evse_id, ev.AuthorizeRejected(token, decision.reason))
        return decision

    def _stop(self, evse_id: int, token: str, source: str, verdict: Verdict,
              holder: Holder) -> AuthDecision:
        may = verdict.accepted and same_holder(holder, token, verdict.group)
        decision = self._decision(evse_id, token, source, verdict, "stop",
                                  None if may else (NOT_HOLDER if verdict.accepted
                                                    else verdict.status))
        self._publish(decision)
        if may:
            self.controller.request_stop(evse_id, StopReason.LOCAL)
        return decision

    def _decision(self, evse_id: int, token: str, source: str, verdict: Verdict,
                  action: str, refused: str | None = None) -> AuthDecision:
        accepted = verdict.accepted and refused is None
        return AuthDecision(evse_id, token, source, accepted,
                            verdict.status if refused is None else refused, self.now(),
                            action, verdict.basis, verdict.group, verdict.messages,
                            verdict.languages)

    def _publish(self, decision: AuthDecision) -> None:
        self._last[decision.evse_id] = decision
        for listener in list(self._listeners):
            try:
                listener(decision)
            except Exception:  # noqa: BLE001 - a subscriber must not stop the decision
                log.exception("authorization subscriber failed on %s", decision)
