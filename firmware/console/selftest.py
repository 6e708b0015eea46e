"""`selftest lock|contactors N`: move the lock (and the contactors) of an idle connector
and time how its position switch (its mirror contacts) follow.

Only with no vehicle: the connector must be idle (Available or Unavailable), unplugged
(pilot A, no plug seen), with no session, the contactors commanded and read open and its
output known below 60 V (IEC 61851-23: no voltage on an unplugged connector). While it
runs the connector is made Unavailable (pilot F: no vehicle can start meanwhile) and its
power output stays off; afterwards its availability is what it was.

PARTIAL: the test drives the IO board directly (the core has no self-test event yet). The
core keeps supervising what it sees: a lock or contactor that does not follow back within
its confirmation time becomes the core's own lock_failure / welded_contactor fault. The
IO board's hard rules still hold (contactors close only with the lock confirmed).
"""

from __future__ import annotations

from typing import Any

from firmware.core import limits as lim
from firmware.core.transitions import IDLE
from hal.power_stage import Mode


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
            passed = await _step(controller, io, evse_id, "contactors_closed", True,
                                 lim.CONTACTOR_CONFIRM_S, "contactors closed", steps)
            passed = await _step(controller, io, evse_id, "contactors_closed", False,
                                 lim.CONTACTOR_CONFIRM_S, "contactors opened", steps) and passed
    finally:
        io.set_contactors(evse_id, False)
        io.set_lock(evse_id, False)
        released = await _follow(controller, io, evse_id, "lock_locked", False,
                                 lim.LOCK_CONFIRM_S)
        steps.append(_said("lock released", released, lim.LOCK_CONFIRM_S))
        passed = passed and released is not None
        controller.set_availability(evse_id, was_operative)
    return passed, "; ".join(steps)


async def _step(controller: Any, io: Any, evse_id: int, what: str, want: bool,
                within_s: float, label: str, steps: list[str]) -> bool:
    if what == "lock_locked":
        io.set_lock(evse_id, want)
    else:
        io.set_contactors(evse_id, want)
    took = await _follow(controller, io, evse_id, what, want, within_s)
    steps.append(_said(label, took, within_s))
    return took is not None


def _said(label: str, took: float | None, within_s: float) -> str:
    if took is None:
        return f"{label}: NO (not within {within_s:.1f} s)"
    return f"{label} in {took:.2f} s"
