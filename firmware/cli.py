"""The ``chargebay`` command.

    chargebay sim SCENARIO [--speed N|max] [--report json] [--config FILE] [--csms URL]
    chargebay sim --list
    chargebay check-config FILE
    chargebay run FILE          (the controller on the hardware the file names)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from firmware import config as cfg

DEFAULT_SIM_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "sim.toml"


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("speed is a number (e.g. 60) or 'max'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("speed must be positive")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chargebay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sim", help="play a scenario on simulated hardware")
    s.add_argument("scenario", nargs="?", help="scenario name (see --list) or file")
    s.add_argument("--list", action="store_true", help="list the scenarios")
    s.add_argument("--speed", type=_speed, default=None, metavar="N|max",
                   help="simulated seconds per wall second, or max (default)")
    s.add_argument("--report", choices=["json", "text"], default="text")
    s.add_argument("--config", default=None, help="charger config (default examples/sim.toml)")
    s.add_argument("--csms", default=None, metavar="ws://HOST:PORT/PATH",
                   help="an external central system instead of the local one (the charge "
                        "point id is appended, OCPP-J)")
    c = sub.add_parser("check-config", help="validate a config file")
    c.add_argument("file")
    r = sub.add_parser("run", help="run the controller on the configured hardware")
    r.add_argument("file")
    return p


def _load_config(path: str | Path) -> cfg.ChargerConfig:
    try:
        return cfg.load(path)
    except cfg.ConfigError as exc:
        print(f"chargebay: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _sim(args: argparse.Namespace) -> int:
    from sim import scenario as sc
    from sim.runner import Progress, run

    if args.list:
        for name, path in sc.available().items():
            first = next((ln.lstrip("# ").strip() for ln in path.read_text().splitlines()
                          if ln.startswith("#")), "")
            print(f"{name:<28} {first}")
        return 0
    if not args.scenario:
        print("chargebay sim: name a scenario (or --list)", file=sys.stderr)
        return 2
    try:
        name, steps = sc.load(args.scenario)
    except sc.ScenarioError as exc:
        print(f"chargebay sim: {exc}", file=sys.stderr)
        return 2
    config = _load_config(args.config or DEFAULT_SIM_CONFIG)
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
              f"{s['max_current_a']:.0f} A, stopped: {s['stop_reason']}")
        for f in s["faults"]:
            print(f"   fault {f['code']} at {f['at_s']:.1f} s, safe state after "
                  f"{f['safe_state_ms']} ms")
    print(f"safety violations: {report['safety_violations']}; simulated "
          f"{report['sim_s']} s in {report['wall_s']} s wall")
    if "error" in report:
        print(f"scenario failed: {report['error']}")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    if args.command == "sim":
        return _sim(args)
    if args.command == "check-config":
        config = _load_config(args.file)
        print(f"{args.file}: OK ({config.identity.charge_point_id}, "
              f"{len(config.connectors)} connectors, {config.power_stage.module_count} modules)")
        return 0
    if args.command == "run":
        from firmware.service import run_service

        return run_service(_load_config(args.file))
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
