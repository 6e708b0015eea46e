"""The simulator's safety monitor judges the cable check from the plant (the output's
own voltage, the lock, the isolation monitor), never from the controller's word."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from firmware import config as cfg
from sim import scenario as sc
from sim.monitor import CABLE_CHECK_HOLD_S, CableCheckJudge, cable_check_voltage
from sim.runner import run

CONFIG = cfg.load(Path(__file__).parent.parent / "examples" / "sim.toml")


@pytest.mark.parametrize("ev_max,evse_max,test_v", [
    (900.0, 1000.0, 990.0),  # 1.1 x EV max (IEC 61851-23:2023, EV max above 500 V)
    (950.0, 1000.0, 1000.0),  # never above what the EVSE can give
    (400.0, 1000.0, 450.0),  # EV max + 50 V up to 500 V
    (480.0, 1000.0, 500.0),
])
def test_test_voltage_is_worked_out_from_the_standard(ev_max: float, evse_max: float,
                                                     test_v: float) -> None:
    assert cable_check_voltage(ev_max, evse_max) == pytest.approx(test_v)


def _hold(judge: CableCheckJudge, seconds: float, volts: float = 990.0, lock: bool = True,
          iso: bool = False, t0: float = 0.0) -> float:
    steps = round(seconds / 0.1)
    for i in range(steps + 1):  # readings every 0.1 s, the last one ``seconds`` after t0
        judge.step(t0 + i * seconds / steps, True, 990.0, volts, lock, iso)
    return t0 + seconds


def test_judge_needs_the_voltage_held_behind_a_lock_without_isolation_fault() -> None:
    short = CableCheckJudge()
    _hold(short, CABLE_CHECK_HOLD_S - 0.2)
    assert not short.passed
    held = CableCheckJudge()
    _hold(held, CABLE_CHECK_HOLD_S)
    assert held.passed
    low = CableCheckJudge()
    _hold(low, 5.0, volts=0.9 * 990.0)  # below 95 % of the test voltage
    assert not low.passed
    unlocked = CableCheckJudge()
    _hold(unlocked, 5.0, lock=False)
    assert not unlocked.passed
    leaking = CableCheckJudge()
    _hold(leaking, 5.0, iso=True)
    assert not leaking.passed
    held.step(10.0, False, None, 0.0, False, False)  # the vehicle left: start again
    assert not held.passed


def test_a_controller_that_passes_a_check_the_plant_never_saw_is_caught(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken controller: it counts the test voltage as reached at any voltage (and
    never as broken down) and settles for 0.1 s, so it declares the check passed before
    the output got there. The monitor, reading the plant, reports the contactors closing
    without a cable check; the old monitor took the controller's word and saw nothing."""
    from firmware.core import limits

    hasty = replace(CONFIG, control=replace(CONFIG.control, cable_check_settle_s=0.1))
    steps = sc.parse("plug 1 eactros600 soc=30\nauthorize 1 rfid CARD\n"
                     "wait 1 Charging timeout=2m\nsleep 10s\n")
    clean = run(CONFIG, steps, None).report()
    monkeypatch.setattr(limits, "CABLE_CHECK_REACHED", 0.0)
    monkeypatch.setattr(limits, "CABLE_CHECK_COLLAPSE", 0.0)
    report = run(hasty, steps, None).report()
    rules = {v["rule"] for v in report.get("violations", [])}  # type: ignore[union-attr]
    assert "contactors_without_cable_check" in rules
    # and the same run with the real controller is clean
    assert clean["safety_violations"] == 0
