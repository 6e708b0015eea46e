"""The scenario language: one command a line (docs/scenarios.md). Parsing only.

    # a comment
    plug 1 eactros600 soc=20 target=80
    authorize 1 rfid 04A1B2C3D4
    wait 1 Charging timeout=2m
    sleep 45m
    stop 1
    unplug 1

A bad line raises ScenarioError with the file, line number and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from firmware.core.transitions import Phase

SCENARIO_DIR = Path(__file__).parent / "scenarios"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
FAULT_KINDS = ("estop", "isolation", "welded", "lock_jam", "pilot_short", "diode",
               "module_lost", "module_fault", "derate", "cable_insulation", "pe_open",
               "earth_voltage", "overvoltage", "imd_selftest", "board_reset")
AUTH_SOURCES = ("rfid", "app", "payment")


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Step:
    line: int
    verb: str
    connector: int = 0
    args: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    phase: Phase | None = None


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 30s, 5m, 2h)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def _phase(name: str) -> Phase:
    for phase in Phase:
        if phase.value.lower() == name.lower():
            return phase
    raise ValueError(f"unknown state {name!r}; one of {', '.join(p.value for p in Phase)}")


_ARITY = {  # verb -> (takes a connector, positional args min, max)
    "plug": (True, 1, 1), "authorize": (True, 2, 2), "wait": (True, 1, 1),
    "wait-soc": (True, 1, 1), "sleep": (False, 1, 1), "stop": (True, 0, 1),
    "unplug": (True, 0, 0), "fault": (True, 1, 2), "clear": (True, 1, 2),
    "expect": (True, 1, 1), "csms": (False, 1, 1),
}


def parse_line(text: str, line: int) -> Step | None:
    words = text.split("#", 1)[0].split()
    if not words:
        return None
    verb, rest = words[0].lower(), words[1:]
    if verb not in _ARITY:
        raise ValueError(f"unknown command {verb!r}; one of {', '.join(_ARITY)}")
    takes_connector, lo, hi = _ARITY[verb]
    options = dict(w.split("=", 1) for w in rest if "=" in w)
    positional = [w for w in rest if "=" not in w]
    connector = 0
    if takes_connector:
        if not positional or not positional[0].isdigit():
            raise ValueError(f"{verb} needs a connector number first")
        connector = int(positional.pop(0))
    if not lo <= len(positional) <= hi:
        raise ValueError(f"{verb} takes {lo}..{hi} arguments after the connector")
    step = Step(line, verb, connector, tuple(positional), options)
    if verb in ("wait", "expect"):
        step = Step(line, verb, connector, step.args, options, phase=_phase(positional[0]),
                    seconds=parse_duration(options.get("timeout", "10m")))
    elif verb == "wait-soc":
        step = Step(line, verb, connector, step.args, options,
                    seconds=parse_duration(options.get("timeout", "12h")))
        float(positional[0])
    elif verb == "sleep":
        step = Step(line, verb, 0, (), options, seconds=parse_duration(positional[0]))
    elif verb == "plug":
        float(options.get("soc", "20"))
        float(options.get("target", "100"))
    elif verb == "authorize" and positional[0] not in AUTH_SOURCES:
        raise ValueError(f"authorize source must be one of {', '.join(AUTH_SOURCES)}")
    elif verb == "csms" and positional[0] not in ("down", "up"):
        raise ValueError("csms takes down or up")
    elif verb in ("fault", "clear") and positional[0] not in FAULT_KINDS:
        raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}")
    return step


def parse(text: str, name: str = "<scenario>") -> list[Step]:
    steps: list[Step] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            step = parse_line(raw, number)
        except ValueError as exc:
            raise ScenarioError(f"{name}:{number}: {exc}") from None
        if step is not None:
            steps.append(step)
    return steps


def available() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.scenario"))}


def load(name_or_path: str) -> tuple[str, list[Step]]:
    path = Path(name_or_path)
    if not path.exists():
        scenarios = available()
        if name_or_path not in scenarios:
            raise ScenarioError(f"no scenario {name_or_path!r}; try: {', '.join(scenarios)}")
        path = scenarios[name_or_path]
    return path.stem, parse(path.read_text(), str(path))
