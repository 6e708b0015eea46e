"""Two rules the IO board holds whatever the host does, in the real MCU firmware on
simulated pins, in virtual time, with the real serial driver as the host:

- the insulation monitor's self test before the cable check measures (IEC 61851-23;
  IEC 61557-8 IMDs have a test function): the contactors close for a vehicle only after
  a passed test since it plugged in, every session;
- E/F held (IEC 61851-1): once the board signals state F it keeps it at least 4 s, and
  says so, so the host does not read its own F as the vehicle's diode.
"""

from __future__ import annotations

from typing import Any

from board_rig import Rig, virtual

from firmware.core import events as ev
from firmware.inputs import input_events
from hal.io_board import ConnectorInputs

EF_HOLD_MIN_S = 4.0  # IEC 61851-1: E/F stepping lasts at least 4 s


async def _plugged(rig: Rig) -> None:
    rig.board.port(1).set_pilot("C")
    rig.host.set_pilot(1, 5.0, False)
    rig.host.set_lock(1, True)
    await rig.sleep(0.3)


async def _close(rig: Rig) -> bool:
    rig.host.set_contactors(1, True)
    await rig.sleep(0.3)
    return rig.board.bays[1].contactors


def test_contactors_close_for_a_vehicle_only_after_a_passed_imd_test_every_session() -> None:
    async def body() -> dict[str, Any]:
        rig = Rig()
        await rig.start()
        out: dict[str, Any] = {"sessions": []}
        for _ in range(3):  # trucks in a row: each one's session tests the monitor anew
            await _plugged(rig)
            before = await _close(rig)  # no test yet: refused, the wish is kept
            rig.host.set_contactors(1, False)
            await rig.sleep(0.1)
            rig.host.test_insulation_monitor(1)
            await rig.sleep(0.1)
            testing = rig.host.inputs(1)
            await rig.sleep(1.0)
            after = rig.host.inputs(1)
            closed = await _close(rig)
            out["sessions"].append((before, testing, after, closed))
            rig.host.set_contactors(1, False)
            await rig.sleep(0.3)
            rig.board.port(1).set_pilot("A")  # the truck leaves
            await rig.sleep(0.3)
            out.setdefault("left", []).append(rig.host.inputs(1))
        out["tests"] = rig.board.imds[1].self_tests
        await rig.close()
        return out

    out = virtual(body)
    assert out["tests"] == 3
    for before, testing, after, closed in out["sessions"]:
        assert not before
        assert testing.imd_testing and not testing.isolation_fault  # the test's alarm is
        assert after.imd_passed and not after.imd_testing           # not a fault
        assert closed
    assert all(not i.imd_passed for i in out["left"])  # the result left with the truck


def test_a_broken_imd_fails_its_self_test_and_nothing_closes() -> None:
    async def body() -> tuple[ConnectorInputs, bool, float]:
        rig = Rig()
        await rig.start()
        rig.board.imds[1].broken = True  # it no longer alarms, not even for its test
        await _plugged(rig)
        t0 = rig.clock.now()
        rig.host.test_insulation_monitor(1)
        while not rig.host.inputs(1).imd_failed and rig.clock.now() - t0 < 10.0:
            await rig.sleep(0.05)
        failed_after = rig.clock.now() - t0
        inputs = rig.host.inputs(1)
        closed = await _close(rig)
        await rig.close()
        return inputs, closed, failed_after

    inputs, closed, failed_after = virtual(body)
    assert inputs.imd_failed and not inputs.imd_passed
    assert not closed
    assert failed_after <= 2.5  # the board's own bound (2 s) and a report


def test_imd_test_refused_with_the_contactors_closed_or_the_output_live() -> None:
    async def body() -> tuple[int, int]:
        rig = Rig()
        await rig.start()
        await rig.charging()  # a passed test, contactors closed
        rig.host.test_insulation_monitor(1)  # a testing monitor would not watch
        await rig.sleep(0.2)
        refused_closed = rig.host.stats.refused
        rig.host.set_contactors(1, False)
        rig.board.set_output_voltage(1, 61.0)
        await rig.sleep(0.3)
        rig.host.test_insulation_monitor(1)
        await rig.sleep(0.2)
        refused_live = rig.host.stats.refused - refused_closed
        await rig.close()
        return refused_closed, refused_live

    assert virtual(body) == (1, 1)


def _hold_run(link_loss: bool) -> dict[str, Any]:
    """The board signals F (the host asks, or the host goes silent), the host asks for
    the pilot back at once; records what the pilot carries and what the host reads."""

    async def body() -> dict[str, Any]:
        rig = Rig()
        await rig.start()
        await rig.charging()
        bay = rig.board.bays[1]
        if link_loss:
            rig.polling = False  # silent past the 500 ms heartbeat timeout: F
            while bay.pwm_duty_u16 != 0:
                await rig.sleep(0.001)
            t_f = rig.clock.now()
            await rig.sleep(0.6)
            rig.polling = True
        else:
            rig.host.set_pilot(1, 100.0, True)
            while bay.pwm_duty_u16 != 0:
                await rig.sleep(0.001)
            t_f = rig.clock.now()
            await rig.sleep(0.05)
        rig.host.set_pilot(1, 5.0, False)  # the host wants PWM back at once
        readings: list[tuple[float, ConnectorInputs]] = []
        released = None
        while rig.clock.now() - t_f < 6.0:
            await rig.sleep(0.01)
            if released is None and bay.pwm_duty_u16 != 0:
                released = rig.clock.now() - t_f
            readings.append((rig.clock.now() - t_f, rig.host.inputs(1)))
        await rig.close()
        return {"released": released, "readings": readings}

    return virtual(body)


def test_state_f_is_held_at_least_4s_then_released() -> None:
    for link_loss in (False, True):
        out = _hold_run(link_loss)
        assert out["released"] is not None
        assert EF_HOLD_MIN_S <= out["released"] <= EF_HOLD_MIN_S + 0.1, out["released"]
        # Reported while it lasts (from the host's first report after its own wish).
        assert all(i.pilot_held_f for t, i in out["readings"]
                   if 0.2 <= t <= EF_HOLD_MIN_S - 0.05)
        assert out["readings"][-1][1].pilot == "C"  # the vehicle read again


def test_the_host_does_not_take_the_held_f_for_a_diode_fault() -> None:
    """Every reading the host made once the board took its wish for the pilot back (the F
    it had asked for itself is F), fed through the loop's own mapping: the board's held
    F never becomes the pilot state F (which the session would call diode_fault on a
    plugged bay, session._on_pilot)."""
    out = _hold_run(link_loss=False)
    readings = [i for _, i in out["readings"]]
    first_held = next(n for n, i in enumerate(readings) if i.pilot_held_f)
    events: list[ev.Event] = []
    old = None
    for inputs in readings[first_held:]:
        if old is not None:
            events.extend(input_events(old, inputs))
        old = inputs
    assert ev.PilotChanged("F") not in events
    assert ev.PilotChanged("C") in events  # and the vehicle comes back once released
