"""Unit tests of the connector session machine (pure core)."""

from __future__ import annotations

import pytest
from core_rig import EV, Rig

from firmware import words
from firmware.core import events as ev
from firmware.core import limits as lim
from firmware.core.transitions import TABLE, Phase, Trigger, next_phase
from hal import vehicle_link as vl
from hal.power_stage import Mode


def test_cable_check_voltage_formula() -> None:
    # IEC 61851-23:2023: <= 500 V EV: min(EV + 50, 500, EVSE); above: min(1.1 EV, EVSE)
    assert lim.cable_check_voltage(400, 1000) == 450
    assert lim.cable_check_voltage(480, 1000) == 500
    assert lim.cable_check_voltage(450, 480) == 480
    assert lim.cable_check_voltage(850, 1000) == pytest.approx(935)
    assert lim.cable_check_voltage(920, 1000) == 1000


def test_ramp_limits_rise_but_not_fall() -> None:
    assert lim.ramp(0, 100, 25, 0.1) == pytest.approx(2.5)
    assert lim.ramp(50, 100, 25, 1.0) == 75
    assert lim.ramp(100, 20, 25, 0.1) == 20  # a lower limit is honoured at once


def test_current_limit_is_lowest_and_says_which() -> None:
    kw = dict(ev_target_a=600, ev_max_a=550, cable_max_a=500, allocation_a=450,
              evse_power_w=400_000, ev_power_w=1e6, voltage_v=800)
    assert lim.current_limit(**kw) == lim.CurrentLimit(  # type: ignore[arg-type]
        450, lim.BindingLimit.ALLOCATION)
    kw["evse_power_w"] = 200_000
    assert lim.current_limit(**kw) == lim.CurrentLimit(  # type: ignore[arg-type]
        250, lim.BindingLimit.EVSE_POWER)


@pytest.mark.parametrize(("lowest", "binding"), [
    ("ev_target_a", lim.BindingLimit.EV_REQUEST), ("ev_max_a", lim.BindingLimit.EV_MAX),
    ("cable_max_a", lim.BindingLimit.CABLE), ("allocation_a", lim.BindingLimit.ALLOCATION),
    ("evse_power_w", lim.BindingLimit.EVSE_POWER), ("ev_power_w", lim.BindingLimit.EV_POWER)])
def test_every_limit_is_named_when_it_binds(lowest: str, binding: lim.BindingLimit) -> None:
    kw: dict[str, float] = dict(ev_target_a=600, ev_max_a=600, cable_max_a=600,
                                allocation_a=600, evse_power_w=600_000, ev_power_w=600_000,
                                voltage_v=800)  # 600 kW / 800 V = 750 A: no power limit
    kw[lowest] = 100 * (800 if lowest.endswith("_w") else 1)  # 100 A worth of it
    assert lim.current_limit(**kw) == lim.CurrentLimit(100, binding)  # type: ignore[arg-type]


def test_status_says_which_limit_binds() -> None:
    r = Rig()
    r.to_charging()
    r.demand(300, 15)  # the truck asks 300 A: its own request binds
    assert r.s.status(r.now).binding_limit is lim.BindingLimit.EV_REQUEST
    r.send(ev.Capability(1000, 200, 400_000))  # fewer modules for this connector
    r.demand(300, 1)
    st = r.s.status(r.now)
    assert st.binding_limit is lim.BindingLimit.ALLOCATION and st.limit_a == 200
    r.send(ev.StopRequested("Local"))
    assert r.s.status(r.now).binding_limit is None  # nothing binds once stopping


def test_table_reads_as_one_session() -> None:
    path = [Trigger.PLUG_IN, Trigger.AUTHORIZED, Trigger.CABLE_CHECK_START,
            Trigger.PRECHARGE_START, Trigger.POWER_DELIVERY_START, Trigger.STOP,
            Trigger.SHUTDOWN_DONE, Trigger.UNPLUG]
    phase = Phase.AVAILABLE
    seen = [phase]
    for trig in path:
        nxt = next_phase(phase, trig)
        assert nxt is not None, (phase, trig)
        phase = nxt
        seen.append(phase)
    assert seen[-1] is Phase.AVAILABLE and Phase.CHARGING in seen
    assert next_phase(Phase.AVAILABLE, Trigger.POWER_DELIVERY_START) is None
    assert all(target is Phase.FAULTED for (_, t), target in TABLE.items()
               if t is Trigger.EMERGENCY)


def test_normal_session_and_ramp() -> None:
    r = Rig()
    r.to_charging()
    assert r.s.phase is Phase.CHARGING
    assert r.s.cable_check_passed and r.contactors and r.lock
    r.demand(400, 1.0)
    assert 0 < r.set_a <= 25 * 1.3 + 1  # 25 A/s ramp
    r.demand(400, 30)
    assert r.set_a == pytest.approx(400)
    r.send(ev.StopRequested("Local"))
    assert r.s.phase is Phase.STOPPING
    r.advance(3)
    assert r.s.phase is Phase.FINISHED and not r.contactors and not r.lock
    ended = [c for c in r.log if isinstance(c, ev.SessionEnded)]
    assert ended and ended[0].reason == "Local" and ended[0].energy_wh > 0
    r.send(ev.PilotChanged("A"))
    assert r.s.phase is Phase.AVAILABLE


def test_cable_check_needs_low_voltage_and_state_c() -> None:
    r = Rig()
    r.to_parameters()
    assert r.ask(vl.CableCheckReq(20)).processing is vl.Processing.ONGOING
    assert r.s.phase is Phase.AUTHORIZED  # still state B: no cable check
    r.send(ev.PilotChanged("C"))
    r.send(ev.Measurement(120, 0))  # residual voltage on the output
    r.ask(vl.CableCheckReq(20))
    assert r.s.phase is Phase.AUTHORIZED
    r.send(ev.Measurement(10, 0))
    r.ask(vl.CableCheckReq(20))
    assert r.s.phase is Phase.CABLE_CHECK
    r.advance(0.5)
    assert r.mode is Mode.CABLE_CHECK and r.set_v == pytest.approx(990) and r.set_a <= 2


def test_isolation_fault_never_energizes() -> None:
    r = Rig()
    r.to_parameters()
    r.send(ev.PilotChanged("C"))
    r.ask(vl.CableCheckReq(20))
    r.advance(1)
    r.send(ev.FaultRaised("isolation_fault"))
    assert r.s.phase is Phase.FAULTED and r.mode is Mode.OFF
    assert r.ask(vl.PreChargeReq(650, 2)).code is not vl.ResponseCode.OK
    # Closed only for the cable check itself (its voltage must reach the cable), opened
    # by the fault, and never a precharge or charging setpoint.
    contactor_cmds = [c.closed for c in r.log if isinstance(c, ev.SetContactors)]
    assert contactor_cmds[-1] is False and not r.contactors
    assert not any(isinstance(c, ev.SetPower) and c.mode in (Mode.PRECHARGE, Mode.CHARGE)
                   for c in r.log)
    r.advance(2)
    assert not r.lock  # unlocked once below 60 V
    r.send(ev.PilotChanged("A"))
    r.advance(0.2)
    assert r.s.phase is Phase.FAULTED  # the monitor still reports it: stays latched
    r.send(ev.FaultCleared("isolation_fault"))
    r.advance(0.2)
    assert r.s.phase is Phase.AVAILABLE  # gone, and the vehicle has left


def test_unplug_mid_charge_opens_at_once() -> None:
    r = Rig()
    r.to_charging()
    r.demand(300, 20)
    cmds = r.send(ev.PilotChanged("A"))
    assert ev.SetContactors(False) in cmds and ev.SetPower(Mode.OFF, 0, 0) in cmds
    r.advance(2)
    assert r.s.phase is Phase.AVAILABLE
    ended = [c for c in r.log if isinstance(c, ev.SessionEnded)]
    assert ended[0].reason == "EVDisconnected"


def test_welded_contactor_keeps_lock_while_voltage() -> None:
    r = Rig()
    r.to_charging()
    r.demand(300, 20)
    r.welded = True
    r.send(ev.StopRequested("Local"))
    for _ in range(40):
        r.now += 0.1
        r.send(ev.Feedback(r.contactors, r.lock))
        r.send(ev.Measurement(650, 0))  # welded: the pack still holds the output up
        r.send(ev.Tick())
    assert r.s.phase is Phase.FAULTED and "welded_contactor" in r.s.faults
    assert r.lock and not any(isinstance(c, ev.SetLock) and not c.locked for c in r.log)
    r.send(ev.PilotChanged("A"))
    assert "welded_contactor" in r.s.faults  # needs service, not cleared by unplug


def test_estop_is_immediate() -> None:
    r = Rig()
    r.to_charging()
    r.demand(300, 20)
    cmds = r.send(ev.FaultRaised("emergency_stop"))
    assert cmds[1:3] == [ev.SetPower(Mode.OFF, 0, 0), ev.SetContactors(False)]
    assert r.s.phase is Phase.FAULTED
    r.advance(1)
    r.send(ev.FaultCleared("emergency_stop"))
    r.advance(0.2)
    assert r.s.phase is Phase.FINISHED  # released while still plugged: no auto restart


@pytest.mark.parametrize("timeout,setup", [
    ("comm_setup_timeout", "plug"), ("vehicle_comm_timeout", "setup")])
def test_vehicle_timeouts(timeout: str, setup: str) -> None:
    r = Rig()
    r.send(ev.PilotChanged("B"))
    if setup == "setup":
        r.ask(vl.SessionSetupReq("X"))
        r.advance(lim.SEQUENCE_TIMEOUT_S - 1, step=1)
        assert r.s.phase is Phase.PREPARING
        r.advance(2, step=1)
    else:
        r.advance(lim.COMM_SETUP_TIMEOUT_S - 1, step=1)
        assert r.s.phase is Phase.PREPARING
        r.advance(2, step=1)
    assert timeout in r.s.faults


def test_cable_check_timeout() -> None:
    r = Rig()
    r.to_parameters()
    r.send(ev.PilotChanged("C"))
    r.max_output_v = 300  # the stage never reaches the test voltage
    r.ask(vl.CableCheckReq(20))
    r.advance(lim.CABLE_CHECK_TIMEOUT_S - 1, step=1)
    assert r.s.phase is Phase.CABLE_CHECK
    r.advance(2, step=1)
    assert "cable_check_timeout" in r.s.faults and not r.s.cable_check_passed
    r.advance(1)  # ordered shutdown: test voltage off and discharged
    assert r.s.phase is Phase.FAULTED and r.mode is Mode.OFF


def test_lock_that_never_confirms_is_a_lock_failure_and_no_test_voltage() -> None:
    r = Rig()
    r.to_parameters()
    r.send(ev.PilotChanged("C"))
    r.lock_jammed = True  # lock never confirms
    r.ask(vl.CableCheckReq(20))
    r.advance(lim.LOCK_CONFIRM_S - 0.5)
    assert "lock_failure" not in r.s.faults
    r.advance(1.0)
    assert "lock_failure" in r.s.faults
    assert not any(isinstance(c, ev.SetPower) and c.mode is Mode.CABLE_CHECK for c in r.log)
    screens = [c for c in r.log if isinstance(c, ev.Screen)]
    assert "could not be locked" in words.screen_text(screens[-1])[1]


def test_cable_check_voltage_breaking_down_fails_the_check() -> None:
    r = Rig()
    r.to_parameters()
    r.send(ev.PilotChanged("C"))
    r.ask(vl.CableCheckReq(20))
    r.advance(0.5)
    assert r.s.cable_check.reached_at is not None
    r.max_output_v = 100  # insulation breaks down under the test voltage
    r.advance(0.3)
    assert "cable_check_failed" in r.s.faults and not r.s.cable_check_passed
    assert r.mode is Mode.OFF and not r.contactors


def test_over_voltage_and_over_current_trip_at_once() -> None:
    r = Rig()
    r.to_charging()
    r.demand(400, 20)
    cmds = r.send(ev.Measurement(EV.max_voltage_v + 50, 400))
    assert "over_voltage" in r.s.faults and r.s.phase is Phase.FAULTED
    assert ev.SetContactors(False) in cmds and ev.SetPower(Mode.OFF, 0, 0) in cmds
    r2 = Rig()
    r2.to_charging()
    r2.demand(400, 20)
    cmds = r2.send(ev.Measurement(650, 580))  # cable 500 A, margin 50 A
    assert "over_current" in r2.s.faults and ev.SetContactors(False) in cmds


def test_precharge_timeout() -> None:
    r2 = Rig()
    r2.send(ev.PilotChanged("B"))
    r2.ask(vl.SessionSetupReq("X"))
    r2.send(ev.Authorize("C", "rfid"))
    r2.ask(vl.ChargeParameterDiscoveryReq(EV))
    r2.send(ev.PilotChanged("C"))
    while r2.ask(vl.CableCheckReq(20)).processing is vl.Processing.ONGOING:
        r2.advance(0.5)
    r2.ask(vl.PreChargeReq(650, 2))
    for _ in range(70):  # the output never reaches the target (stage stuck at 0 V)
        r2.now += 0.1
        r2.send(ev.Feedback(r2.contactors, r2.lock))
        r2.send(ev.Measurement(0, 0))
    assert "precharge_timeout" in r2.s.faults


def test_every_request_gets_one_answer() -> None:
    r = Rig()
    reqs: list[vl.VehicleRequest] = [vl.CurrentDemandReq(900, 10, 20, 900, 500, 1e5),
                                     vl.WeldingDetectionReq(), vl.SessionStopReq()]
    for req in reqs:
        before = len(r.answers)
        resp = r.ask(req)
        assert len(r.answers) == before + 1
        assert resp.code is vl.ResponseCode.FAILED_SEQUENCE_ERROR


def test_ev_stops_at_target_soc() -> None:
    r = Rig()
    r.to_charging()
    r.demand(200, 10)
    r.ask(vl.PowerDeliveryReq(False))
    assert r.s.phase is Phase.STOPPING and r.s.stop_reason == "StoppedByEV"
    r.advance(3)
    assert r.s.phase is Phase.FINISHED
    assert r.ask(vl.WeldingDetectionReq()).code is vl.ResponseCode.OK


def test_pre_authorization_before_plug_in() -> None:
    r = Rig()
    r.send(ev.Authorize("APP", "remote"))
    r.send(ev.PilotChanged("B"))
    assert r.s.phase is Phase.AUTHORIZED


def test_whole_45_minute_break_in_virtual_time() -> None:
    """A driver's 45-minute break at the pure core: time is a value, so the whole session
    runs in a fraction of a second of wall time. The energy the machine bills is the
    integral of what the output delivered, and the connector unlocks only below 60 V."""
    r = Rig()
    r.to_charging()
    started = r.now
    while r.now - started < 45 * 60:
        r.ask(vl.CurrentDemandReq(900, 500, 50, 900, 500, 400_000))
        r.advance(0.25, step=0.25)  # CurrentDemand cadence of a real EV (ISO 15118-2)
    assert r.s.phase is Phase.CHARGING and r.set_a == pytest.approx(500)
    charged_s = r.now - started
    # 650 V x 500 A for 45 min, minus the 20 s ramp at 25 A/s (half the current on average).
    expected_wh = 650 * 500 * (charged_s - 10) / 3600
    assert r.s.energy_wh == pytest.approx(expected_wh, rel=0.01)
    r.send(ev.StopRequested("Local"))
    unlocked_at_v = None
    for _ in range(50):
        r.advance(0.1)
        if not r.lock and unlocked_at_v is None:
            unlocked_at_v = r.s.voltage_v
    assert r.s.phase is Phase.FINISHED and unlocked_at_v is not None and unlocked_at_v < 60
    ended = [c for c in r.log if isinstance(c, ev.SessionEnded)]
    assert len(ended) == 1 and ended[0].energy_wh == pytest.approx(r.s.energy_wh)
