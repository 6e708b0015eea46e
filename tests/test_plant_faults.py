"""Faults of the plant with a cable (sim/plant.py), each played end to end on the real
controller, the real drivers and the simulated board, judged by the safety monitor on the
plant itself: every one ends safely, with 0 violations."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware import config as cfg
from firmware.core.transitions import Phase
from sim import scenario as sc
from sim.mcu_board import SimMcuBoard
from sim.runner import Outcome, run
from sim.world import SimWorld

CONFIG = cfg.load(Path(__file__).parent.parent / "examples" / "sim.toml")


def play(name: str) -> tuple[Outcome, dict[str, object]]:
    outcome = run(CONFIG, sc.load(name)[1], None)
    report = outcome.report()
    assert "error" not in report, report.get("error")
    assert report["safety_violations"] == 0, report.get("violations")
    sessions = report["sessions"]
    assert isinstance(sessions, list) and len(sessions) == 1
    assert outcome.world.controller.status(1).phase is Phase.AVAILABLE  # nothing latched
    assert not outcome.world.io.bays[1].contactors
    return outcome, sessions[0]


def _codes(session: dict[str, object]) -> list[str]:
    return [f["code"] for f in session["faults"]]  # type: ignore[attr-defined, index]


def test_cable_insulation_found_by_the_cable_check_on_the_cable() -> None:
    outcome, s = play("cable-insulation")
    assert "isolation_fault" in _codes(s)
    assert s["energy_kwh"] == 0 and s["max_current_a"] == 0


def test_earth_voltage_above_the_limit_never_energizes() -> None:
    outcome, s = play("earth-voltage")
    assert "isolation_fault" in _codes(s)
    assert s["energy_kwh"] == 0


def test_over_voltage_on_the_output_trips_the_board() -> None:
    outcome, s = play("output-overvoltage")
    assert "over_voltage" in _codes(s)
    assert s["energy_kwh"] == 0


def test_pe_open_mid_charge_ends_the_session_at_once() -> None:
    outcome, s = play("pe-open")
    assert s["energy_kwh"] > 0  # it was charging
    assert s["stop_reason"] == "EVDisconnected"


def test_io_board_reset_mid_session_clears_by_itself() -> None:
    """The MCU hangs mid-charge: the watchdog opens the contactors, the host reports the
    link loss, the board boots afresh and shakes hands, and nothing latches (the stale
    mirror contacts of the silent board are not taken for a welded contactor)."""
    outcome, s = play("io-board-reset")
    (fault,) = s["faults"]  # type: ignore[misc]
    assert fault["code"] == "io_board_link_lost"
    assert fault["safe_state_ms"] is not None and fault["safe_state_ms"] <= 110.0
    assert outcome.world.io.resets == 1
    assert not outcome.world.controller.connectors[1].session.faults


def test_io_board_silent_at_start_up_then_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    """The board is held in reset while the controller starts: both bays report the
    link loss and refuse to charge; once it answers, the fault clears and a truck
    charges normally."""
    start = SimMcuBoard.start

    async def held_in_reset(self: SimMcuBoard) -> None:
        await start(self)
        self.halted = True

    monkeypatch.setattr(SimMcuBoard, "start", held_in_reset)
    seen: dict[str, object] = {}

    def phases(world: SimWorld) -> None:
        seen["faults"] = {c: set(conn.session.faults)
                          for c, conn in world.controller.connectors.items()}

    steps = sc.parse("sleep 5s\nclear 1 board_reset\nsleep 5s\nplug 1 eactros600 soc=30\n"
                     "authorize 1 rfid 04A1B2C3D4E5F6\nwait 1 Charging timeout=2m\n"
                     "sleep 30s\nstop 1 Local\nwait 1 Finished timeout=1m\nunplug 1\n"
                     "wait 1 Available timeout=30s\n")
    outcome = run(CONFIG, steps, None, at_end=phases)
    report = outcome.report()
    assert "error" not in report, report.get("error")
    assert report["safety_violations"] == 0
    (session,) = report["sessions"]  # type: ignore[misc]
    assert session["energy_kwh"] > 0 and session["stop_reason"] == "Local"
    assert seen["faults"] == {1: set(), 2: set()}


def test_broken_insulation_monitor_fails_its_self_test_and_nothing_is_energized() -> None:
    """The monitor no longer alarms and the cable is damaged: without the self test the
    cable check would pass on a blind monitor (88 monitor violations before it ran). The
    board runs the test first thing in the cable check; it fails, so the contactors never
    close: 0 kWh, and the bay is usable again once the truck leaves."""
    outcome, s = play("imd-selftest")
    assert "isolation_monitor_failed" in _codes(s)
    assert s["energy_kwh"] == 0 and s["max_current_a"] == 0
    assert outcome.world.bays[1].plant.imd.self_tests == 1


def test_a_drifting_module_voltage_sensor_ends_the_session_in_order() -> None:
    outcome, s = play("sensor-drift")
    assert s["energy_kwh"] > 0  # it was charging
    assert s["fault"] == "measurement_implausible" and s["stop_reason"] == "Fault"
