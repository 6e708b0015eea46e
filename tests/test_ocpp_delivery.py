"""Delivery of the transaction queue with a fake CSMS ``call``, in virtual time (looptime):
order, MessageAttempts / MessageAttemptInterval (OCPP 2.0.1 Part 2 E12, Part 4 4.1.4),
a lost connection mid-call, and a 2 h offline period in the middle of a session."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import looptime

from firmware.core import events as ev
from firmware.core.session import Status
from firmware.core.transitions import Phase
from firmware.ocpp.delivery import Delivery
from firmware.ocpp.link import CallFailed
from firmware.ocpp.queue import MessageQueue
from firmware.ocpp.v201.transactions import DEFAULTS, Transactions
from hal.clock import Clock

T = TypeVar("T")


def run_virtual(body: Callable[[], Awaitable[T]]) -> T:
    loop = looptime.new_event_loop(start=0.0, noop_cycles=1)
    try:
        return loop.run_until_complete(body())
    finally:  # a delivery a test left running ends with its loop, not at GC time
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.close()


def settings(**over: str) -> Callable[[str, str], str]:
    values = {**{f"{c}.{v}": s for (c, v), s in DEFAULTS.items()}, **over}
    return lambda component, variable: values[f"{component}.{variable}"]


class FakeCsms:
    """Answers each CALL after ``latency`` virtual seconds; ``refuse`` makes the next n
    calls fail (as a CALLERROR would); ``down`` makes calls hang until cancelled."""

    def __init__(self, clock: Clock, latency: float = 0.05) -> None:
        self.clock, self.latency = clock, latency
        self.got: list[tuple[float, dict[str, Any]]] = []
        self.tried: list[tuple[float, int]] = []
        self.refuse = 0

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        assert action == "TransactionEvent"
        self.tried.append((self.clock.now(), payload["seqNo"]))
        await self.clock.sleep(self.latency)
        if self.refuse:
            self.refuse -= 1
            raise RuntimeError("CALLERROR InternalError")
        self.got.append((self.clock.now(), payload))
        return {"idTokenInfo": {"status": "Accepted"}} if "idToken" in payload else {}


def _ev(seq: int, kind: str = "Updated") -> dict[str, Any]:
    return {"eventType": kind, "seqNo": seq, "triggerReason": "ChargingStateChanged"}


def test_in_order_and_response_hook(tmp_path: Path) -> None:
    async def body() -> None:
        clock = Clock(1.0, virtual=True)
        q = MessageQueue(tmp_path / "q.db")
        for n in range(5):
            q.append("TransactionEvent", _ev(n))
        seen: list[tuple[str, int, dict[str, Any]]] = []
        d = Delivery(q, settings(), clock,
                     on_response=lambda a, p, r: seen.append((a, p["seqNo"], r)))
        csms, online = FakeCsms(clock), asyncio.Event()
        task = asyncio.create_task(d.run(csms.call, online))
        await clock.sleep(10)
        assert csms.tried == []  # nothing leaves while offline
        online.set()
        await clock.sleep(1)
        assert [p["seqNo"] for _, p in csms.got] == [0, 1, 2, 3, 4]
        q.append("TransactionEvent", {**_ev(5), "idToken": {"idToken": "A", "type": "Local"}})
        d.wake()
        await clock.sleep(1)
        assert [s for _, s, _ in seen] == [0, 1, 2, 3, 4, 5]
        assert seen[-1][2] == {"idTokenInfo": {"status": "Accepted"}}
        assert len(q) == 0 and d.sent == 6 and d.failures == 0
        task.cancel()
        q.close()

    run_virtual(body)


def test_attempts_wait_interval_times_attempts_and_started_is_kept(tmp_path: Path) -> None:
    async def body() -> None:
        clock = Clock(1.0, virtual=True)
        q = MessageQueue(tmp_path / "q.db")
        q.append("TransactionEvent", _ev(0, "Started"))
        q.append("TransactionEvent", _ev(1, "Ended"))
        d = Delivery(q, settings(**{"OCPPCommCtrlr.MessageAttempts": "3",
                                    "OCPPCommCtrlr.MessageAttemptInterval": "60"}), clock)
        csms, online = FakeCsms(clock, latency=0.0), asyncio.Event()
        online.set()
        csms.refuse = 3
        task = asyncio.create_task(d.run(csms.call, online))
        await clock.sleep(500)
        # Tries at 0, then 60 (1 x interval), then 60 + 120 (2 x interval); after the
        # third failure a Started is kept (never discarded, issue 16) and tried again
        # after 3 x interval; then seqNo 1 goes at once.
        times = [(round(t), s) for t, s in csms.tried]
        assert times == [(0, 0), (60, 0), (180, 0), (360, 0), (360, 1)]
        assert [p["seqNo"] for _, p in csms.got] == [0, 1]
        assert d.failures == 3 and d.dropped == 0 and q.discarded == 0 and len(q) == 0
        task.cancel()
        q.close()

    run_virtual(body)


def test_a_refused_message_is_set_aside_and_the_queue_goes_on(tmp_path: Path) -> None:
    """The CSMS refuses seqNo 0 (CALLERROR) on every try: after MessageAttempts it is set
    aside and seqNo 1 and 2 go; then it is offered every interval x attempts while
    nothing else waits, and delivered once the CSMS takes it."""
    async def body() -> None:
        clock = Clock(1.0, virtual=True)
        q = MessageQueue(tmp_path / "q.db")
        for n in range(3):
            q.append("TransactionEvent", _ev(n, "Started" if n == 0 else "Updated"))
        d = Delivery(q, settings(**{"OCPPCommCtrlr.MessageAttempts": "3",
                                    "OCPPCommCtrlr.MessageAttemptInterval": "60"}), clock)
        tried: list[tuple[int, int]] = []
        refuse = {"on": True}

        async def call(action: str, payload: dict[str, Any]) -> dict[str, Any]:
            tried.append((round(clock.now()), payload["seqNo"]))
            if payload["seqNo"] == 0 and refuse["on"]:
                raise CallFailed(action, "InternalError: cannot store it")
            return {}

        online = asyncio.Event()
        online.set()
        task = asyncio.create_task(d.run(call, online))
        await clock.sleep(700)
        assert tried == [(0, 0), (60, 0), (180, 0), (180, 1), (180, 2), (360, 0), (540, 0)]
        assert len(q) == 0 and [m.payload["seqNo"] for m in q.aside()] == [0]
        assert d.dropped == 1 and q.discarded == 0
        refuse["on"] = False
        await clock.sleep(200)
        assert tried[-1] == (720, 0) and q.aside() == [] and d.sent == 3
        task.cancel()
        q.close()

    run_virtual(body)


def test_lost_connection_is_not_an_attempt(tmp_path: Path) -> None:
    async def body() -> None:
        clock = Clock(1.0, virtual=True)
        q = MessageQueue(tmp_path / "q.db")
        q.append("TransactionEvent", _ev(0))
        online = asyncio.Event()
        online.set()
        calls = 0

        async def flaky(action: str, payload: dict[str, Any]) -> dict[str, Any]:
            nonlocal calls
            calls += 1
            if calls == 1:
                online.clear()  # the websocket closed while the CALL was out
                raise ConnectionError("closed")
            return {}

        d = Delivery(q, settings(**{"OCPPCommCtrlr.MessageAttempts": "1"}), clock)
        task = asyncio.create_task(d.run(flaky, online))
        await clock.sleep(5)
        assert calls == 1 and len(q) == 1  # kept, even with MessageAttempts = 1
        online.set()
        await clock.sleep(1)
        assert calls == 2 and len(q) == 0 and d.failures == 0 and q.discarded == 0
        task.cancel()
        q.close()

    run_virtual(body)


def _status(phase: Phase, energy: float = 0.0, soc: float | None = None,
            amps: float = 0.0) -> Status:
    return Status(phase, 700.0 if amps else 0.0, amps, energy, soc, 0.0, amps, amps, (), None)


def test_two_hours_offline_mid_session(tmp_path: Path) -> None:
    """RFID session, online at first; the CSMS goes away for 2 h while charging and the
    session ends offline; on reconnect everything is delivered in order, gapless, and
    exactly the events made offline carry offline=true (E04 / E12)."""

    async def body() -> None:
        clock = Clock(1.0, virtual=True)
        t0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
        q = MessageQueue(tmp_path / "q.db")
        tx = Transactions(q, settings(), (1,), monotonic=clock.now)
        d = Delivery(q, settings(), clock)
        csms, online = FakeCsms(clock), asyncio.Event()
        task = asyncio.create_task(d.run(csms.call, online))

        def utc() -> datetime:
            return t0 + timedelta(seconds=clock.now())

        def set_online(up: bool) -> None:
            tx.set_online(up)
            (online.set if up else online.clear)()

        def command(cmd: ev.Command, st: Status) -> None:
            before = len(q)
            tx.on_command(1, cmd, st, utc())
            if len(q) != before:
                d.wake()

        set_online(True)
        command(ev.Screen(Phase.PREPARING), _status(Phase.PREPARING))
        tx.note_authorization(1, {"idToken": "CARD1", "type": "ISO14443"}, "Authorized",
                              None, None)
        command(ev.SessionStarted("CARD1", "rfid", clock.now()), _status(Phase.AUTHORIZED))
        command(ev.SetContactors(True), _status(Phase.CABLE_CHECK))
        energy = 0.0
        for second in range(3 * 3600):
            if second == 600:
                set_online(False)
            energy += 150_000 / 3600  # 150 kW
            before = len(q)
            tx.on_tick({1: _status(Phase.CHARGING, energy, 20 + second / 200, 214.0)}, utc())
            if len(q) != before:
                d.wake()
            if second == 7000:  # the session ends while the CSMS is away
                command(ev.SetContactors(False), _status(Phase.STOPPING, energy))
                command(ev.SessionEnded(ev.StopReason.LOCAL, clock.now(), energy),
                        _status(Phase.FINISHED, energy))
                break
            await clock.sleep(1)
        await clock.sleep(60)
        assert all(t < 600 for t, _ in csms.got)  # nothing left while offline
        await clock.sleep_until(600 + 7200)
        set_online(True)
        await clock.sleep(60)
        sent = [p for _, p in csms.got]
        assert len(q) == 0 and sent
        assert [p["seqNo"] for p in sent] == list(range(len(sent)))
        assert sent[0]["eventType"] == "Started" and sent[-1]["eventType"] == "Ended"
        assert sent[-1]["transactionInfo"]["stoppedReason"] == "Local"
        made_at = [datetime.fromisoformat(p["timestamp"].replace("Z", "+00:00"))
                   for p in sent]
        offline = [t0 + timedelta(seconds=600) <= t < t0 + timedelta(seconds=7800)
                   for t in made_at]
        assert [bool(p.get("offline")) for p in sent] == offline
        assert any(offline) and not all(offline)
        # Nothing queued offline left before the reconnect; all of it after, in order.
        back = 600 + 7200
        delivered_at = {p["seqNo"]: t for t, p in csms.got}
        assert all(delivered_at[p["seqNo"]] >= back for p in sent if p.get("offline"))
        periodic = [p for p in sent if p["triggerReason"] == "MeterValuePeriodic"]
        assert len(periodic) == 7000 // 30  # TxUpdatedInterval 30 s, none lost or thinned
        ids = {p["transactionInfo"]["transactionId"] for p in sent}
        assert len(ids) == 1
        task.cancel()
        q.close()

    run_virtual(body)
