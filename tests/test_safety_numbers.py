"""Numbers of charging-facts.md held by the host's core, each tested against the
standard's figure written here (never the code's own constant), so that moving the
number past the limit fails (tests/mutation_check.py moves each one)."""

from __future__ import annotations

import dataclasses

import pytest
from core_rig import EV, Rig

from firmware.core import events as ev
from firmware.core.transitions import Phase
from firmware.inputs import input_events
from hal import vehicle_link as vl
from hal.io_board import ConnectorInputs
from hal.power_stage import Mode


@pytest.mark.parametrize(("ev_max_v", "band_v"), [
    (400.0, 550.0), (700.0, 825.0), (850.0, 935.0), (920.0, 1100.0), (1200.0, 1100.0)])
def test_over_voltage_band_goes_to_the_board_when_the_range_is_negotiated(
        ev_max_v: float, band_v: float) -> None:
    # IEC 61851-23 bands; the EVSE here is a 1000 V output, so a 1200 V EV negotiates
    # 1000 V and gets the 1100 V band, not MCS's 1375 V.
    rig = Rig()
    rig.send(ev.PilotChanged("B"))
    rig.ask(vl.SessionSetupReq("X"))
    rig.send(ev.Authorize("CARD1", "rfid"))
    before = len(rig.log)
    rig.ask(vl.ChargeParameterDiscoveryReq(dataclasses.replace(EV, max_voltage_v=ev_max_v)))
    bands = [c.limit_v for c in rig.log[before:] if isinstance(c, ev.SetOverVoltageBand)]
    assert bands == [band_v]


# --- DC flow timers (ISO 15118-2 / DIN SPEC 70121, charging-facts "DC flow") ----------
# Each test checks the standard's figure written here: quiet just before it, the fault
# just after (one 1 s step of slack), so a timer moved past the figure fails.

SEQUENCE_S = 60.0  # the charger waits this long for the next request, then ends
COMM_SETUP_S = 18.0  # communication set-up (charger side)
CABLE_CHECK_S = 38.0  # cable check performance time
PRECHARGE_S = 5.0  # precharge (charger side)
SAFE_V = 60.0  # IEC 61851-23: cable check and unlocking only below 60 V


def test_sequence_timeout_is_60s() -> None:
    r = Rig()
    r.send(ev.PilotChanged("B"))
    r.ask(vl.SessionSetupReq("X"))
    r.advance(SEQUENCE_S - 1.0, step=1)
    assert "vehicle_comm_timeout" not in r.s.faults
    r.advance(2.0, step=1)
    assert "vehicle_comm_timeout" in r.s.faults


def test_communication_setup_timeout_is_18s() -> None:
    r = Rig()
    r.send(ev.PilotChanged("B"))
    r.advance(COMM_SETUP_S - 1.0, step=1)
    assert "comm_setup_timeout" not in r.s.faults
    r.advance(2.0, step=1)
    assert "comm_setup_timeout" in r.s.faults


def test_with_slac_the_18s_count_from_the_match_not_from_the_pwm() -> None:
    """ISO 15118-2: the EV's communication setup timer starts at D-LINK_READY (the SLAC
    match, ISO 15118-3), and SLAC may take up to TT_EVSE_SLAC_init (50 s) to begin. So a
    slow EV that matched 40 s after 5 % PWM is given its 18 s from the match."""
    r = Rig()
    r.send(ev.PilotChanged("B"))
    r.send(ev.DataLinkChanged(False))  # matching began
    r.advance(40.0, step=1)
    assert "comm_setup_timeout" not in r.s.faults  # SLAC's own timers, not ours
    r.send(ev.DataLinkChanged(True))  # matched
    r.advance(COMM_SETUP_S - 1.0, step=1)
    assert "comm_setup_timeout" not in r.s.faults
    r.advance(2.0, step=1)
    assert "comm_setup_timeout" in r.s.faults


def test_a_match_at_once_leaves_the_18s_as_without_slac() -> None:
    r = Rig()
    r.send(ev.PilotChanged("B"))
    r.send(ev.DataLinkChanged(False))
    r.send(ev.DataLinkChanged(True))
    r.advance(COMM_SETUP_S - 1.0, step=1)
    r.ask(vl.SessionSetupReq("X"))  # in time: the session goes on
    r.advance(10.0, step=1)
    assert "comm_setup_timeout" not in r.s.faults


def test_cable_check_gives_up_by_38s() -> None:
    r = Rig()
    r.to_parameters()
    r.send(ev.PilotChanged("C"))
    r.max_output_v = 300  # the stage never reaches the test voltage
    r.ask(vl.CableCheckReq(20))
    r.advance(CABLE_CHECK_S - 1.0, step=1)
    assert "cable_check_timeout" not in r.s.faults
    r.advance(2.0, step=1)
    assert "cable_check_timeout" in r.s.faults


def test_precharge_gives_up_by_5s() -> None:
    r = Rig()
    r.to_parameters()
    r.send(ev.PilotChanged("C"))
    while r.ask(vl.CableCheckReq(20)).processing is vl.Processing.ONGOING:
        r.advance(0.5)
    r.max_output_v = 0.0  # the stage is stuck at 0 V
    r.ask(vl.PreChargeReq(650, 2))
    start = r.now
    r.advance(PRECHARGE_S - 0.5)
    assert "precharge_timeout" not in r.s.faults
    r.advance(start + PRECHARGE_S + 1.0 - r.now)
    assert "precharge_timeout" in r.s.faults


@pytest.mark.parametrize(("volts", "starts"), [(SAFE_V + 1.0, False), (SAFE_V - 1.0, True)])
def test_cable_check_starts_only_below_60v(volts: float, starts: bool) -> None:
    r = Rig()
    r.to_parameters()
    r.send(ev.PilotChanged("C"))
    r.send(ev.Measurement(volts, 0.0))  # left on the output (a previous session)
    r.ask(vl.CableCheckReq(20))
    r.send(ev.Tick())
    assert (r.s.phase is Phase.CABLE_CHECK) is starts


def test_ordered_shutdown_ramps_down_before_opening() -> None:
    """IEC 61851-23 ordered shutdown: current to ~0 first, then open the contactors."""
    r = Rig()
    r.to_charging()
    r.demand(400, 20)
    cmds = r.send(ev.StopRequested(ev.StopReason.LOCAL))
    assert ev.SetContactors(False) not in cmds
    powers = [c for c in cmds if isinstance(c, ev.SetPower)]
    assert powers and powers[-1].current_a == 0.0 and powers[-1].mode is not Mode.OFF
    for _ in range(5):  # the EV still draws 400 A for half a second
        r.now += 0.1
        opened = ev.SetContactors(False) in r.send(ev.Measurement(650, 400))
        assert not opened
    r.now += 0.1
    assert ev.SetContactors(False) in r.send(ev.Measurement(650, 3.0))  # below ~5 A


def test_plug_in_starts_5_percent_pwm() -> None:
    # IEC 61851-1 Annex A: 5 % duty = high-level communication (all DC charging).
    r = Rig()
    assert ev.SetPilot(5.0) in r.send(ev.PilotChanged("B"))


def test_cable_check_at_2a_with_contactors_closed_within_3s_of_c() -> None:
    r = Rig()
    r.to_parameters()
    c_at = r.now
    r.send(ev.PilotChanged("C"))
    mark = len(r.log)
    r.ask(vl.CableCheckReq(20))
    r.advance(0.5)
    checks = [c for c in r.log[mark:] if isinstance(c, ev.SetPower) and c.mode is Mode.CABLE_CHECK]
    assert checks and all(c.current_a <= 2.0 for c in checks)  # IEC 61851-23: 2 A
    # Contactors closed within 3 s after the vehicle's C (charging-facts "DC flow"), and
    # before the test voltage: it must reach the cable.
    closed_at = next(i for i, c in enumerate(r.log) if c == ev.SetContactors(True))
    tested_at = r.log.index(checks[0])
    assert closed_at < tested_at and r.contactors and r.now - c_at <= 3.0


def test_lock_held_while_the_cable_side_is_above_60v() -> None:
    """The module side can be discharged while the cable side (the board's HV sense)
    still holds the test voltage: the < 60 V gate reads both."""
    r = Rig()
    r.to_parameters()
    r.send(ev.PilotChanged("C"))
    r.ask(vl.CableCheckReq(20))
    r.advance(0.5)
    assert r.lock
    r.send(ev.StopRequested(ev.StopReason.LOCAL))
    for _ in range(30):
        r.now += 0.1
        r.send(ev.Feedback(False, r.lock))
        r.send(ev.Measurement(0.0, 0.0, SAFE_V + 1.0))
    assert r.lock  # never released at 61 V on the cable
    r.now += 0.1
    r.send(ev.Measurement(0.0, 0.0, SAFE_V - 1.0))
    r.send(ev.Tick())
    assert not r.lock


def test_pe_loss_read_as_the_vehicle_gone_opens_at_once_on_the_host() -> None:
    """The host's part of the PE row (IEC 61851-23: emergency shutdown within 5 s of PE
    loss): CP and PP return through PE, so the board reports no vehicle; the machine
    switches the supply off and opens the contactors in that same batch."""
    r = Rig()
    r.to_charging()
    r.demand(200.0, 10.0)
    assert r.s.phase is Phase.CHARGING and r.contactors
    lost = ConnectorInputs("A", True, True, False, False, 35.0, plugged=False)
    before = ConnectorInputs("C", True, True, False, False, 35.0, plugged=True)
    cmds = [c for e in input_events(before, lost) for c in r.send(e)]
    assert ev.SetContactors(False) in cmds
    assert ev.SetPower(Mode.OFF, 0.0, 0.0) in cmds


def test_imd_self_test_before_the_contactors_and_the_test_voltage_every_session() -> None:
    """IEC 61851-23: the insulation monitor's self test before it measures. In each
    session's cable check the test is asked for first; the contactors are commanded
    only once it passed, and the test voltage after them."""
    r = Rig()
    for _ in range(2):  # sessions in a row: each one tests the monitor
        start = len(r.log)
        r.to_charging()
        log = r.log[start:]
        asked = log.index(ev.TestInsulationMonitor())
        closed = log.index(ev.SetContactors(True))
        test_voltage = next(n for n, c in enumerate(log)
                            if isinstance(c, ev.SetPower) and c.mode is Mode.CABLE_CHECK)
        assert r.imd_answered_at is not None
        assert asked < r.imd_answered_at - start <= closed < test_voltage
        assert r.s.phase is Phase.CHARGING
        r.ask(vl.PowerDeliveryReq(False))
        r.advance(5.0)
        r.send(ev.PilotChanged("A"))
        r.advance(1.0)
        assert r.s.phase is Phase.AVAILABLE


def test_a_failed_imd_self_test_ends_the_session_before_any_voltage() -> None:
    r = Rig(imd_broken=True)
    r.to_parameters()
    r.send(ev.PilotChanged("C"))
    r.ask(vl.CableCheckReq(20))
    r.advance(2.0)
    assert "isolation_monitor_failed" in r.s.faults
    assert ev.SetContactors(True) not in r.log
    assert not any(isinstance(c, ev.SetPower) and c.mode is Mode.CABLE_CHECK for c in r.log)
