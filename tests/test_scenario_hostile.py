"""Scenario files and the sim command from a careless author (issue 16): every bad line
is one clear error with its line number (never a traceback, never a hang), ``--speed``
refuses what is not a speed, and the JSON report carries its safety violations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from firmware import config as cfg
from sim import scenario as sc
from sim.cli import _print_summary
from sim.monitor import Violation
from sim.runner import Outcome, check_against

ROOT = Path(__file__).resolve().parent.parent
CONFIG = cfg.load(ROOT / "examples" / "sim.toml")


@pytest.mark.parametrize("line,needle", [
    ("plug 1 eactros600 soc=150", "0..100"),
    ("plug 1 eactros600 soc=-5", "0..100"),
    ("plug 1 eactros600 soc=nan", "0..100"),
    ("plug 1 eactros600 soc=inf", "0..100"),
    ("plug 1 eactros600 soc=lots", "not a number"),
    ("plug 1 eactros600 target=1e400", "0..100"),
    ("plug 1 eactros600 speed=3", "no option"),
    ("wait-soc 1 150", "0..100"),
    ("wait-soc 1 nan", "0..100"),
    ("plug 0 eactros600", "start at 1"),
    ("plug 99999 eactros600", "connector number"),
    ("sleep " + "9" * 400, "not a duration"),
    ("sleep 1000000h", "longer than a week"),
    ("wait 1 Charging timeout=1000000h", "longer than a week"),
    ("wait 1 Charging timeout=" + "1" * 400 + "s", "not a duration"),
    ("sleep 1e6h", "not a duration"),
    ("sleep -5s", "not a duration"),
    ("fault 1 module_fault abc", "module address"),
    ("fault 1 module_fault -1", "module address"),
    ("fault 1 estop 3", "takes no argument"),
    ("stop 1 Whenever", "stop reason"),
])
def test_a_bad_line_is_one_error_with_its_line_number(line: str, needle: str) -> None:
    with pytest.raises(sc.ScenarioError) as err:
        sc.parse(f"# first\n{line}\n", "bad.scenario")
    assert str(err.value).startswith("bad.scenario:2: ")
    assert needle in str(err.value)


@pytest.mark.parametrize("line,needle", [
    ("plug 1 hovercraft", "unknown truck"),
    ("plug 99 eactros600", "connector 99 does not exist"),
    ("authorize 3 rfid CARD", "connector 3 does not exist"),
    ("fault 1 module_lost 42", "module address 42 is not on the bus"),
])
def test_a_line_the_charger_cannot_play_is_refused_before_it_starts(line: str,
                                                                    needle: str) -> None:
    steps = sc.parse(f"sleep 1s\n\n{line}\n")
    with pytest.raises(sc.ScenarioError) as err:
        check_against(CONFIG, steps, "x.scenario")
    assert str(err.value).startswith("x.scenario:3: ") and needle in str(err.value)


def test_every_shipped_scenario_fits_the_sim_config() -> None:
    for name in sc.available():
        check_against(CONFIG, sc.load(name)[1], name)


def _chargebay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "firmware.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_the_sim_command_names_the_bad_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.scenario"
    path.write_text("plug 1 eactros600 soc=20\nplug 2 hovercraft\n")
    done = _chargebay("sim", str(path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"chargebay sim: bad:2: unknown truck 'hovercraft'; one of "
        f"{', '.join(sorted(__import__('sim.battery').battery.PRESETS))}"]


@pytest.mark.parametrize("speed", ["nan", "inf", "-inf", "0", "1e400", "fast"])
def test_speed_nan_or_inf_is_a_clear_error(speed: str) -> None:
    done = _chargebay("sim", "driver-stop", "--speed", speed)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--speed" in done.stderr


def test_the_json_report_with_a_safety_violation_in_it(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    violation = Violation(12.5, 1, "unlock_above_60v", "787 V with lock open")
    world = SimpleNamespace(sessions=[], monitor=SimpleNamespace(violations=[violation]))
    outcome = Outcome(world, None, 1.0, 60.0)  # type: ignore[arg-type]
    report = outcome.report()
    text = json.dumps(report)  # the break: v.__dict__ on a slots dataclass raised here
    back = json.loads(text)
    assert back["safety_violations"] == 1
    assert back["violations"] == [{"at_s": 12.5, "connector": 1, "rule": "unlock_above_60v",
                                   "detail": "787 V with lock open"}]
    _print_summary("x", report)
    assert "safety violations: 1" in capsys.readouterr().out
