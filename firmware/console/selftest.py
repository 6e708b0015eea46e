"""`selftest lock|contactors N`: move the lock (and the contactors) of an idle connector
and time how its position switch (its mirror contacts) follow.

Only with no vehicle: the connector must be idle (Available or Unavailable), unplugged
(pilot A, no plug seen), with no session, the contactors commanded and read open and its
output known below 60 V (IEC 61851-23: no voltage on an unplugged connector). While it
runs the connector is made Unavailable (pilot F: no vehicle can start meanwhile) and its
power output stays off; afterwards its availability is what it was.

The contactors are closed by the IO board's own self test (``selftest_contactors``):
the board closes them only when it reads the connector empty and safe, holds them for
its own bounded time and opens them by itself, so a console or controller that stops
midway cannot leave an empty connector's output closed. Its normal rule (contactors
only in pilot C/D) is unchanged.

PARTIAL: the test drives the IO board directly (the core has no self-test event yet). The
core keeps supervising what it sees: a lock or contactor that does not follow back within
its confirmation time becomes the core's own lock_failure / welded_contactor fault.
"""

from __future__ import annotations

from typing import Any

from firmware.core import limits as lim
from firmware.core.transitions import IDLE
from hal.power_stage import Mode

# How long the board may hold its self test: its own bound (500 ms on the reference board,
# hal/mcu/rules.py SELFTEST_CLOSE_MS) with a margin for the link; the contract fixes no
# figure, so a board holding longer fails the test here.
BOARD_HOLD_MAX_S = 1.0


class SelfTestRefused(Exception):
    pass


def refusal(controller: Any, io: Any, evse_id: int) -> str | None:
    """Why a self test may not run on this connector now (None: it may)."""
    conn = controller.connectors[evse_id]
    s = conn.session
    inputs = io.inputs(evse_id)
    if inputs.plugged or s.pilot != "A":
        return "a vehicle is plugged in"
    if s.phase not in IDLE or s.session_at is not None:
        return f"connector is {s.phase.value}, not idle"
    if s.contactors_commanded or s.contactors_closed or inputs.contactors_closed:
        return "contactors are not open"
    if not s.below_safe_voltage or conn.power_mode is not Mode.OFF:
        return f"output not known below {lim.SAFE_VOLTAGE_V:.0f} V"
    if not io.link_up:
        return "IO board link is down"
    return None


async def _follow(controller: Any, io: Any, evse_id: int, what: str, want: bool,
                  within_s: float) -> float | None:
    """Seconds until the input ``what`` reads ``want`` (None: not within ``within_s``)."""
    clock = controller.clock
    start = clock.now()
    period = 1.0 / controller.config.control.loop_hz
    while clock.now() - start <= within_s:
        if getattr(io.inputs(evse_id), what) is want:
            return float(clock.now() - start)
        if io.inputs(evse_id).plugged:
            raise SelfTestRefused("a vehicle was plugged in: test stopped")
        await clock.sleep(period)
    return None


async def run(controller: Any, io: Any, evse_id: int, part: str) -> tuple[bool, str]:
    """(passed, report)."""
    why = refusal(controller, io, evse_id)
    if why is not None:
        raise SelfTestRefused(why)
    session = controller.connectors[evse_id].session
    was_operative = session.operative
    controller.set_availability(evse_id, False)
    steps: list[str] = []
    passed = True
    try:
        passed = await _step(controller, io, evse_id, "lock_locked", True,
                             lim.LOCK_CONFIRM_S, "lock closed", steps)
        if passed and part == "contactors":
            passed = await _contactors(controller, io, evse_id, steps)
    finally:
        io.set_contactors(evse_id, False)
        io.set_lock(evse_id, False)
        released = await _follow(controller, io, evse_id, "lock_locked", False,
                                 lim.LOCK_CONFIRM_S)
        steps.append(_said("lock released", released, lim.LOCK_CONFIRM_S))
        passed = passed and released is not None
        controller.set_availability(evse_id, was_operative)
    return passed, "; ".join(steps)


async def _contactors(controller: Any, io: Any, evse_id: int, steps: list[str]) -> bool:
    """The board's own test: closed, held for its bounded time, opened by itself."""
    io.selftest_contactors(evse_id)
    closed = await _follow(controller, io, evse_id, "selftest_closed", True,
                           lim.CONTACTOR_CONFIRM_S)
    steps.append(_said("contactors closed", closed, lim.CONTACTOR_CONFIRM_S))
    ended = await _follow(controller, io, evse_id, "selftest_running", False,
                          BOARD_HOLD_MAX_S)
    opened = await _follow(controller, io, evse_id, "selftest_opened", True,
                           lim.CONTACTOR_CONFIRM_S) if closed is not None else None
    inputs = io.inputs(evse_id)
    if inputs.selftest_aborted:
        steps.append("contactors opened early: the board stopped the test (not safe)")
    elif ended is None:
        steps.append(f"contactors held closed past {BOARD_HOLD_MAX_S:.1f} s")
    elif inputs.welded:
        steps.append("contactors opened: NO (welded, mirror contact stays closed)")
    elif closed is not None:
        steps.append(_said("contactors opened", opened, lim.CONTACTOR_CONFIRM_S))
    return (closed is not None and ended is not None and opened is not None
            and not inputs.selftest_aborted and not inputs.welded)


async def _step(controller: Any, io: Any, evse_id: int, what: str, want: bool,
                within_s: float, label: str, steps: list[str]) -> bool:
    io.set_lock(evse_id, want)
    took = await _follow(controller, io, evse_id, what, want, within_s)
    steps.append(_said(label, took, within_s))
    return took is not None


def _said(label: str, took: float | None, within_s: float) -> str:
    if took is None:
        return f"{label}: NO (not within {within_s:.1f} s)"
    return f"{label} in {took:.2f} s"
