"""The simulator's commands, added to ``chargebay`` as a plug-in (pyproject entry point
``chargebay.commands``):

    chargebay sim SCENARIO [--speed N|max] [--report json] [--config FILE] [--csms URL]
    chargebay sim --list
    chargebay drive [--to HOST:PORT] COMMAND...   one line to a running simulated
                                                   charger's control interface
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import sys
from pathlib import Path
from typing import Any

from firmware.cli import load_config

DEFAULT_SIM_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "sim.toml"
DEFAULT_CONTROL = "127.0.0.1:7781"
# Wall-clock speed-up: above this the real waits are shorter than the event loop's own
# turn, so a faster run is 'max' (virtual time) in all but name.
MAX_SPEED = 10_000.0


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("speed is a number (e.g. 60) or 'max'") from None
    if not math.isfinite(value) or not 0 < value <= MAX_SPEED:
        raise argparse.ArgumentTypeError(f"speed must be a number above 0 and at most "
                                         f"{MAX_SPEED:g} (or 'max' for virtual time)")
    return value


def register(sub: Any) -> None:
    s = sub.add_parser("sim", help="play a scenario against the charger on simulated "
                                   "hardware")
    s.add_argument("scenario", nargs="?", help="scenario name (see --list) or file")
    s.add_argument("--list", action="store_true", help="list the scenarios")
    s.add_argument("--speed", type=_speed, default=None, metavar="N|max",
                   help="simulated seconds per wall second, or max (default)")
    s.add_argument("--report", choices=["json", "text"], default="text")
    s.add_argument("--config", default=None, help="charger config (default examples/sim.toml)")
    s.add_argument("--csms", default=None, metavar="ws://HOST:PORT/PATH",
                   help="an external central system instead of the local one (the charge "
                        "point id is appended, OCPP-J)")
    s.set_defaults(handler=_sim)
    d = sub.add_parser("drive", help="send one command to a running simulated charger "
                                     "(chargebay run examples/sim.toml)")
    d.add_argument("--to", default=DEFAULT_CONTROL, metavar="HOST:PORT")
    d.add_argument("words", nargs="+", help="e.g. plug 1 eactros600 soc=20 | status")
    d.set_defaults(handler=_drive)


def _sim(args: argparse.Namespace) -> int:
    from sim import scenario as sc
    from sim.runner import Progress, check_against, run

    if args.list:
        for name, path in sc.available().items():
            first = next((ln.lstrip("# ").strip() for ln in path.read_text().splitlines()
                          if ln.startswith("#")), "")
            print(f"{name:<28} {first}")
        return 0
    if not args.scenario:
        print("chargebay sim: name a scenario (or --list)", file=sys.stderr)
        return 2
    config = load_config(args.config or DEFAULT_SIM_CONFIG)
    try:
        name, steps = sc.load(args.scenario)
        check_against(config, steps, name)
    except sc.ScenarioError as exc:
        print(f"chargebay sim: {exc}", file=sys.stderr)
        return 2
    text = args.report == "text"
    progress = Progress() if text else None
    if args.csms and "ocpp" not in config.extra:
        print("chargebay sim: --csms needs an [ocpp] section in the config", file=sys.stderr)
        return 2
    outcome = run(config, steps, args.speed, progress, say=print if text else None,
                  csms_url=args.csms)
    report = outcome.report()
    if args.report == "json":
        print(json.dumps(report))
    else:
        _print_summary(name, report)
    return 1 if outcome.error or report["safety_violations"] else 0


def _print_summary(name: str, report: dict[str, object]) -> None:
    print(f"\n=== {name}: session summary ===")
    sessions = report["sessions"]
    assert isinstance(sessions, list)
    for s in sessions:
        print(f"bay {s['connector']}  {s['truck']}: SoC {s['start_soc']:.1f} -> "
              f"{s['end_soc']:.1f} %, {s['energy_kwh']:.1f} kWh in "
              f"{s['duration_s'] / 60:.1f} min, peak {s['peak_power_kw']:.0f} kW / "
              f"{s['max_current_a']:.0f} A, stopped: {s['stop_reason']}"
              + (f" ({s['fault']})" if s.get("fault") else ""))
        for f in s["faults"]:
            print(f"   fault {f['code']} at {f['at_s']:.1f} s, safe state after "
                  f"{f['safe_state_ms']} ms")
    violations = report.get("violations", [])
    assert isinstance(violations, list)
    for v in violations:
        print(f"   violation at {v['at_s']:.1f} s, bay {v['connector']}: {v['rule']}: "
              f"{v['detail']}")
    print(f"safety violations: {report['safety_violations']}; simulated "
          f"{report['sim_s']} s in {report['wall_s']} s wall")
    if "error" in report:
        print(f"scenario failed: {report['error']}")


def _drive(args: argparse.Namespace) -> int:
    host, _, port = args.to.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=30) as conn:
            conn.sendall((" ".join(args.words) + "\n").encode())
            reply = conn.makefile("r", encoding="utf-8").readline().strip()
    except OSError as exc:
        print(f"chargebay drive: {args.to}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(reply)
    return 0 if not reply.startswith("error") else 1
