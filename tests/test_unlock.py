"""UnlockConnector through the core's gates (pure core): refused while a session runs or
the output may carry voltage, confirmed by the lock's position switch, failed when the
switch does not follow (a jammed lock is never reported unlocked)."""

from __future__ import annotations

from core_rig import Rig

from firmware.core import events as ev
from firmware.core import limits as lim
from firmware.core.events import UnlockOutcome
from firmware.core.transitions import Phase


def results(cmds: list[ev.Command]) -> list[UnlockOutcome]:
    return [c.outcome for c in cmds if isinstance(c, ev.UnlockResult)]


def after_session(r: Rig) -> None:
    r.to_charging()
    r.demand(200, 5)
    r.send(ev.StopRequested("Local"))
    r.advance(3)
    assert r.s.phase is Phase.FINISHED


def test_free_lock_after_a_session_is_unlocked() -> None:
    r = Rig()
    after_session(r)
    cmds = r.send(ev.UnlockRequested())
    assert ev.SetLock(False) in cmds and results(cmds) == [UnlockOutcome.UNLOCKED]
    assert not r.lock


def test_lock_that_follows_a_moment_later_is_unlocked_once_confirmed() -> None:
    r = Rig()
    after_session(r)
    r.lock, r.lock_jammed = True, True  # the switch still reads locked: slow actuator
    r.send(ev.Feedback(r.contactors, r.lock))
    cmds = r.send(ev.UnlockRequested())
    assert results(cmds) == []  # not before the switch says so
    r.lock_jammed = False
    r.lock = False
    r.send(ev.Feedback(r.contactors, r.lock))
    assert results(r.log) == [UnlockOutcome.UNLOCKED]


def test_jammed_lock_is_unlock_failed_after_the_confirmation_time() -> None:
    r = Rig()
    r.to_charging()
    r.demand(200, 5)
    r.lock_jammed = True  # jammed shut: the shutdown's release does not move it
    r.send(ev.StopRequested("Local"))
    r.advance(5)
    assert r.lock and "lock_failure" in r.s.faults
    mark = len(r.log)
    r.send(ev.UnlockRequested())
    assert ev.SetLock(False) in r.log[mark:]  # commanded again: the retry
    r.advance(lim.LOCK_CONFIRM_S - 0.3)
    assert results(r.log[mark:]) == []
    r.advance(0.6)
    assert results(r.log[mark:]) == [UnlockOutcome.UNLOCK_FAILED]
    assert r.s.unlock_requested_at is None  # answered once


def test_during_a_session_the_answer_is_ongoing_transaction_and_nothing_moves() -> None:
    r = Rig()
    r.to_charging()
    cmds = r.send(ev.UnlockRequested())
    assert results(cmds) == [UnlockOutcome.ONGOING_AUTHORIZED_TRANSACTION]
    assert not any(isinstance(c, ev.SetLock) for c in cmds) and r.lock


def test_never_unlocked_at_or_above_60_volts() -> None:
    """IEC 61851-23: the connector stays locked while the output is at 60 V or more."""
    r = Rig()
    after_session(r)
    r.send(ev.Measurement(lim.SAFE_VOLTAGE_V, 0.0))
    cmds = r.send(ev.UnlockRequested())
    assert results(cmds) == [UnlockOutcome.REFUSED_ENERGIZED]
    assert not any(isinstance(c, ev.SetLock) for c in cmds)
    r.send(ev.Measurement(61.0, 0.0))  # fails if SAFE_VOLTAGE_V is moved above 60 V
    assert results(r.send(ev.UnlockRequested())) == [UnlockOutcome.REFUSED_ENERGIZED]
    r.send(ev.Measurement(59.0, 0.0))
    assert results(r.send(ev.UnlockRequested())) == [UnlockOutcome.UNLOCKED]


def test_refused_with_a_contactor_closed() -> None:
    r = Rig()
    after_session(r)
    r.send(ev.Feedback(True, r.lock))  # welded: the mirror contact reads closed
    assert results(r.send(ev.UnlockRequested())) == [UnlockOutcome.REFUSED_ENERGIZED]
