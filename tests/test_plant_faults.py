"""Faults of the plant with a cable (sim/plant.py), each played end to end on the real
controller, the real drivers and the simulated board, judged by the safety monitor on the
plant itself: every one ends safely, with 0 violations."""

from __future__ import annotations

from pathlib import Path

from firmware import config as cfg
from firmware.core.transitions import Phase
from sim import scenario as sc
from sim.runner import Outcome, run

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
