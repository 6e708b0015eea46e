"""Every entry of the error catalogue, raised the way it happens at a bay.

For each code: what the core does (emergency: supply off and contactors open in the
same batch of commands; error: an ordered shutdown; warning: keep charging), what the
driver reads on the screen, and the recovery the catalogue promises (cleared when the
vehicle leaves, when the condition is gone, or only by service). Faults that come from
a driver's own detection (power stage, IO-board link, meter) arrive as the FaultRaised
event those drivers produce; their detection is tested with the drivers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from safety_rig import Bench

from firmware import words
from firmware.core import events as ev
from firmware.core.transitions import Phase
from firmware.errors import CATALOGUE, Clearing, Severity, spec
from firmware.ocpp.v201 import mapping
from firmware.ocpp.v201.device_model import VARIABLES
from firmware.ocpp.v201.transactions import Transactions
from hal import vehicle_link as vl
from hal.power_stage import Mode

EPOCH = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
DEFAULTS = {(v.component, v.name): v.default for v in VARIABLES}
REASONS = {"DeAuthorized", "EmergencyStop", "EnergyLimitReached", "EVDisconnected",
           "GroundFault", "ImmediateReset", "Local", "LocalOutOfCredit", "MasterPass", "Other",
           "OvercurrentFault", "PowerLoss", "PowerQuality", "Reboot", "Remote",
           "SOCLimitReached", "StoppedByEV", "TimeLimitReached", "Timeout"}  # ReasonEnumType
# OCPP 1.6 ChargePointErrorCode (what the 1.6 StatusNotification and NotifyEvent carry)
OCPP_ERROR_CODES = {"ConnectorLockFailure", "EVCommunicationError", "GroundFailure",
                    "HighTemperature", "InternalError", "LocalListConflict", "NoError",
                    "OtherError", "OverCurrentFailure", "OverVoltage", "PowerMeterFailure",
                    "PowerSwitchFailure", "ReaderFailure", "ResetFailure", "UnderVoltage",
                    "WeakSignal"}
EXPECTED_REASON = {"emergency_stop": "EmergencyStop", "isolation_fault": "GroundFault",
                   "over_current": "OvercurrentFault", "vehicle_comm_timeout": "Timeout"}


def charging(b: Bench) -> None:
    b.plug()
    b.send(ev.Authorize("TOKEN-1", "rfid"))
    for _ in range(60):
        b.truck_step()
    assert b.session.phase is Phase.CHARGING and b.hw.current_a > 100


def plugged_and_talking_until(stage: str) -> Callable[[Bench], None]:
    def setup(b: Bench) -> None:
        b.plug()
        b.send(ev.Authorize("TOKEN-1", "rfid"))
        for _ in range(40):
            if b.truck.stage == stage:
                return
            b.truck_step()
        raise AssertionError(f"truck never reached {stage}")
    return setup


def plugged_silent(b: Bench) -> None:
    b.plug()


def before_plug(hw_change: Callable[[Bench], None]) -> Callable[[Bench], None]:
    def setup(b: Bench) -> None:
        hw_change(b)
        charging_attempt(b)
    return setup


def charging_attempt(b: Bench) -> None:
    b.plug()
    b.send(ev.Authorize("TOKEN-1", "rfid"))
    for _ in range(40):
        b.truck_step()


def talk(n: int) -> Callable[[Bench], None]:
    def act(b: Bench) -> None:
        for _ in range(n):
            b.truck_step()
    return act


def hw(**changes: object) -> Callable[[Bench], None]:
    def act(b: Bench) -> None:
        for k, v in changes.items():
            setattr(b.hw, k, v)
        b.sense()
    return act


def then(*acts: Callable[[Bench], None]) -> Callable[[Bench], None]:
    def act(b: Bench) -> None:
        for a in acts:
            a(b)
    return act


def silence(seconds: float) -> Callable[[Bench], None]:
    return lambda b: b.advance(seconds, step=0.5)


def event(e: ev.Event) -> Callable[[Bench], None]:
    return lambda b: b.carry_out(b.session.handle(e, b.now))


def nothing(b: Bench) -> None:
    return None


# code -> (how the bay gets there, what happens, the condition healing)
CASES: dict[str, tuple[Callable[[Bench], None], Callable[[Bench], None],
                       Callable[[Bench], None]]] = {
    "emergency_stop": (charging, hw(estop=True), hw(estop=False)),
    "isolation_fault": (charging, hw(isolation=True), hw(isolation=False)),
    "welded_contactor": (charging, then(hw(welded=True), event(ev.StopRequested("Local")),
                                        silence(3)), nothing),
    "contactor_stuck_open": (nothing, before_plug(hw(stuck_open=True)), hw(stuck_open=False)),
    "lock_failure": (nothing, before_plug(hw(lock_jammed=True)), hw(lock_jammed=False)),
    "over_voltage": (charging, then(hw(pack_v=960.0), silence(0.2)), hw(pack_v=650.0)),
    "over_current": (charging, then(hw(current_offset_a=400.0), silence(0.2)),
                     hw(current_offset_a=0.0)),
    "over_temperature": (charging, hw(temperature_c=95.0), hw(temperature_c=60.0)),
    "pilot_fault": (charging, hw(pilot_short=True), hw(pilot_short=False)),
    "diode_fault": (charging, hw(diode_fault=True), hw(diode_fault=False)),
    "cable_check_failed": (plugged_and_talking_until("cable_check"),
                           then(talk(4), hw(max_output_v=100.0), silence(0.5)),
                           hw(max_output_v=1e9)),
    "cable_check_timeout": (plugged_and_talking_until("cable_check"),
                            then(hw(max_output_v=300.0), talk(3), silence(40)),
                            hw(max_output_v=1e9)),
    "precharge_timeout": (plugged_and_talking_until("precharge"),
                          then(hw(max_output_v=300.0), talk(30)), hw(max_output_v=1e9)),
    "vehicle_comm_timeout": (charging, silence(65), nothing),
    "vehicle_comm_lost": (charging, event(ev.FromVehicle(vl.LinkLost("TCP reset"))), nothing),
    "comm_setup_timeout": (plugged_silent, silence(20), nothing),
    "module_lost": (charging, event(ev.FaultRaised("module_lost")),
                    event(ev.FaultCleared("module_lost"))),
    "module_fault": (charging, event(ev.FaultRaised("module_fault")),
                     event(ev.FaultCleared("module_fault"))),
    "comm_lost": (charging, event(ev.FaultRaised("comm_lost")),
                  event(ev.FaultCleared("comm_lost"))),
    "io_board_link_lost": (charging, event(ev.FaultRaised("io_board_link_lost")),
                           event(ev.FaultCleared("io_board_link_lost"))),
    "meter_failure": (charging, event(ev.FaultRaised("meter_failure")),
                      event(ev.FaultCleared("meter_failure"))),
    "isolation_monitor_failed": (nothing, before_plug(hw(imd_broken=True)),
                                 hw(imd_broken=False)),
    "measurement_implausible": (charging, then(hw(sense_offset_v=40.0), silence(4)),
                                hw(sense_offset_v=0.0)),
}


class MemoryQueue:
    """The transaction queue's interface, in memory: what OCPP would send."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.state: dict[str, dict[str, Any]] = {}

    def append_with_state(self, action: str, payload: dict[str, Any], key: str,
                          value: dict[str, Any]) -> int:
        self.sent.append(payload)
        self.state[key] = value
        return len(self.sent)

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        self.state[key] = value

    def get_state(self, key: str) -> dict[str, Any] | None:
        return self.state.get(key)

    def state_items(self, prefix: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.state.items() if k.startswith(prefix)}


class Recorder:
    """Every batch of commands, and what the OCPP side makes of them (transactions with
    the default start/stop points, and the connector status StatusNotification sends)."""

    def __init__(self, bench: Bench) -> None:
        self.batches: list[tuple[bool, list[ev.Command]]] = []
        self.queue = MemoryQueue()
        self.tx = Transactions(self.queue, lambda c, v: DEFAULTS[(c, v)], (1,),
                               lambda: bench.now)
        self.tx.set_online(True)
        self.statuses: list[str] = []
        original = bench.carry_out

        def carry_out(cmds: list[ev.Command]) -> None:
            # whether the contactors were commanded closed when this batch came out
            self.batches.append((bench.hw.contactors_cmd, list(cmds)))
            original(cmds)
            status = bench.session.status(bench.now)
            utc = EPOCH + dt.timedelta(seconds=bench.now)
            for cmd in cmds:
                self.tx.on_command(1, cmd, status, utc)
            connector = mapping.CONNECTOR_STATUS[status.phase]
            if not self.statuses or self.statuses[-1] != connector:
                self.statuses.append(connector)
        bench.carry_out = carry_out  # type: ignore[method-assign]

    def reported(self, code: str) -> list[tuple[bool, list[ev.Command]]]:
        return [(was_closed, cmds) for was_closed, cmds in self.batches
                if any(isinstance(c, ev.FaultReported) and c.code == code for c in cmds)]

    def screens(self) -> list[ev.Screen]:
        return [c for _, cmds in self.batches for c in cmds if isinstance(c, ev.Screen)]


def test_every_catalogue_code_has_a_case() -> None:
    assert set(CASES) == set(CATALOGUE)


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_catalogue_entry_behaves_as_written(code: str) -> None:
    entry = spec(code)
    setup, happen, heal = CASES[code]
    b = Bench()
    rec = Recorder(b)
    setup(b)
    was_charging = b.session.phase is Phase.CHARGING
    happen(b)
    reports = rec.reported(code)
    assert len(reports) == 1, f"{code} reported {len(reports)} times"
    was_closed, batch = reports[0]
    if entry.severity is Severity.EMERGENCY and was_closed:
        assert ev.SetContactors(False) in batch and ev.SetPower(Mode.OFF, 0.0, 0.0) in batch
    if entry.severity is Severity.WARNING:
        if was_charging:
            assert b.session.phase is Phase.CHARGING and b.hw.current_a > 0
    else:
        b.advance(3.0)
        assert not b.hw.contactors or b.hw.welded
        assert b.hw.mode is Mode.OFF
        assert b.session.phase is Phase.FAULTED
    text = words.fault_text(entry.code)
    assert any(words.screen_text(s)[1] == text for s in rec.screens()), (
        f"screen never said {text!r}")
    assert not b.violations, b.violations
    # What the operator sees over OCPP.
    assert entry.ocpp_error_code in OCPP_ERROR_CODES
    if entry.severity is not Severity.WARNING:
        assert rec.statuses[-1] == "Faulted", rec.statuses
    ended = [p for p in rec.queue.sent if p["eventType"] == "Ended"]
    if was_charging and entry.severity is not Severity.WARNING:
        assert len(ended) == 1, [p["eventType"] for p in rec.queue.sent]
        assert ended[0]["transactionInfo"]["stoppedReason"] in REASONS
        if code in EXPECTED_REASON:
            assert ended[0]["transactionInfo"]["stoppedReason"] == EXPECTED_REASON[code]
    elif was_charging:
        assert not ended  # a warning does not end the transaction

    heal(b)
    b.unplug()
    b.advance(5.0)
    if entry.clearing is Clearing.NEEDS_SERVICE:
        assert code in b.session.faults and b.session.phase is Phase.FAULTED
        assert b.hw.lock or b.hw.voltage_v < 60  # never released under voltage
        b.hw.welded = False  # the field engineer replaces the contactor
        b.session.service_reset(code)
        b.advance(2.0)
    assert code not in b.session.faults
    assert b.session.phase is Phase.AVAILABLE, b.session.phase
    assert not b.hw.lock and not b.violations
    assert rec.statuses[-1] == "Available"  # and the operator sees it back in service
