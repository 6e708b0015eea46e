"""The scenario language: one command a line (docs/scenarios.md). Parsing only.

    # a comment
    plug 1 eactros600 soc=20 target=80
    authorize 1 rfid 04A1B2C3D4
    wait 1 Charging timeout=2m
    sleep 45m
    stop 1
    unplug 1

A bad line raises ScenarioError with the file, line number and the reason: one line,
never a traceback or a hang. Parsing checks what the line alone can say (numbers finite
and in range, durations at most MAX_DURATION_S, known options); ``check`` then holds the
steps against the charger they will run on (its connectors, its module addresses, the
truck presets) before anything starts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from firmware.core.events import StopReason
from firmware.core.transitions import Phase

SCENARIO_DIR = Path(__file__).parent / "scenarios"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
FAULT_KINDS = ("estop", "isolation", "welded", "lock_jam", "pilot_short", "diode",
               "module_lost", "module_fault", "derate", "cable_insulation", "pe_open",
               "earth_voltage", "overvoltage", "imd_selftest", "board_reset",
               "sensor_drift")
AUTH_SOURCES = ("rfid", "app", "payment")
MAX_DURATION_S = 7 * 24 * 3600.0  # a week of simulated time: longer is a typo
MAX_FILE_BYTES = 1 << 20
MODULE_FAULTS = ("module_lost", "module_fault", "derate")
_OPTIONS = {"plug": {"soc", "target"}, "wait": {"timeout"}, "wait-soc": {"timeout"},
            "expect": {"timeout"}}


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
    match = re.fullmatch(r"(\d{1,9}(?:\.\d{1,6})?)(ms|s|m|h)?", text)
    if not match:
        raise ValueError(f"{text[:40]!r} is not a duration (e.g. 30s, 5m, 2h)")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{text} is longer than a week of simulated time")
    return seconds


def _percent(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text[:40]!r} is not a number") from None
    if not math.isfinite(value) or not 0.0 <= value <= 100.0:
        raise ValueError(f"{what} {text[:40]} is not a percentage 0..100")
    return value


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
    # the bay (docs/bay.md): pay by card, a screen button, a card at the RFID reader,
    # the card terminal's link
    "pay": (True, 0, 1), "press": (True, 1, 1), "tap": (True, 1, 1),
    "terminal": (False, 1, 1),
}
PAY_MODES = ("approve", "decline", "timeout", "lost")


def parse_line(text: str, line: int) -> Step | None:
    words = text.split("#", 1)[0].split()
    if not words:
        return None
    verb, rest = words[0].lower(), words[1:]
    if verb not in _ARITY:
        raise ValueError(f"unknown command {verb!r}; one of {', '.join(_ARITY)}")
    takes_connector, lo, hi = _ARITY[verb]
    options = dict(w.split("=", 1) for w in rest if "=" in w)
    for name in options:
        if name not in _OPTIONS.get(verb, set()):
            known = ", ".join(sorted(_OPTIONS.get(verb, set()))) or "none"
            raise ValueError(f"{verb} has no option {name[:40]!r} (options: {known})")
    positional = [w for w in rest if "=" not in w]
    connector = 0
    if takes_connector:
        if not positional or not re.fullmatch(r"\d{1,3}", positional[0]):
            raise ValueError(f"{verb} needs a connector number first")
        connector = int(positional.pop(0))
        if connector < 1:
            raise ValueError("connector numbers start at 1 (the EVSE id)")
    if not lo <= len(positional) <= hi:
        raise ValueError(f"{verb} takes {lo}..{hi} arguments after the connector")
    step = Step(line, verb, connector, tuple(positional), options)
    if verb in ("wait", "expect"):
        step = Step(line, verb, connector, step.args, options, phase=_phase(positional[0]),
                    seconds=parse_duration(options.get("timeout", "10m")))
    elif verb == "wait-soc":
        step = Step(line, verb, connector, step.args, options,
                    seconds=parse_duration(options.get("timeout", "12h")))
        _percent(positional[0], "SoC")
    elif verb == "sleep":
        step = Step(line, verb, 0, (), options, seconds=parse_duration(positional[0]))
    elif verb == "plug":
        _percent(options.get("soc", "20"), "soc")
        _percent(options.get("target", "100"), "target")
    elif verb == "stop" and positional and positional[0] not in {r.value for r in StopReason}:
        raise ValueError(f"stop reason {positional[0][:40]!r} is not one of "
                         f"{', '.join(r.value for r in StopReason)}")
    elif verb == "authorize" and positional[0] not in AUTH_SOURCES:
        raise ValueError(f"authorize source must be one of {', '.join(AUTH_SOURCES)}")
    elif verb == "pay" and positional and positional[0] not in PAY_MODES:
        raise ValueError(f"pay takes one of {', '.join(PAY_MODES)}")
    elif verb == "terminal" and positional[0] not in ("down", "up"):
        raise ValueError("terminal takes down or up")
    elif verb == "csms" and positional[0] not in ("down", "up"):
        raise ValueError("csms takes down or up")
    elif verb in ("fault", "clear"):
        if positional[0] not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}")
        if len(positional) > 1 and positional[0] not in MODULE_FAULTS:
            raise ValueError(f"{positional[0]} takes no argument")
        if len(positional) > 1 and not re.fullmatch(r"\d{1,2}", positional[1]):
            raise ValueError(f"module address {positional[1][:40]!r} is not a number 0..62")
    return step


def check(steps: Iterable[Step], connectors: Collection[int], trucks: Collection[str],
          modules: Collection[int], name: str = "<scenario>") -> None:
    """The steps held against the charger they will drive: every connector exists,
    every truck preset is known, every module address is on the bus."""
    for step in steps:
        problem = None
        if step.connector and step.connector not in connectors:
            problem = (f"connector {step.connector} does not exist (the config has "
                       f"{', '.join(map(str, sorted(connectors)))})")
        elif step.verb == "plug" and step.args[0] not in trucks:
            problem = (f"unknown truck {step.args[0][:40]!r}; one of "
                       f"{', '.join(sorted(trucks))}")
        elif step.verb in ("fault", "clear") and len(step.args) > 1 \
                and int(step.args[1]) not in modules:
            problem = (f"module address {step.args[1]} is not on the bus (the config has "
                       f"{', '.join(map(str, sorted(modules)))})")
        if problem:
            raise ScenarioError(f"{name}:{step.line}: {problem}")


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
    try:
        if not path.is_file():
            raise ScenarioError(f"{path} is not a regular file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ScenarioError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    return path.stem, parse(text, str(path))
