"""The ``chargebay`` command.

    chargebay run FILE          the charger, until SIGTERM / SIGINT (real or simulated
                                hardware, as the file says)
    chargebay check-config FILE
    chargebay console PORT [--baud B] [--log FILE]
                                the field engineer's terminal on the charger's console
    chargebay passwd            print a console password hash for the [console] section

Installed plug-ins add commands (entry point group ``chargebay.commands``); the simulator
adds ``chargebay sim`` (the scenario player) and ``chargebay drive`` (its control
interface). The product never imports them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from firmware import config as cfg

COMMANDS_GROUP = "chargebay.commands"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chargebay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check-config", help="validate a config file")
    c.add_argument("file")
    c.set_defaults(handler=_check_config)
    r = sub.add_parser("run", help="run the charger on the hardware the file names")
    r.add_argument("file")
    r.set_defaults(handler=_run)
    t = sub.add_parser("console", help="terminal on a charger's serial console")
    t.add_argument("port", help="serial device, e.g. /dev/ttyUSB0 (or a /dev/pts/N)")
    t.add_argument("--baud", type=int, default=115200)
    t.add_argument("--log", help="append the transcript to this file")
    t.set_defaults(handler=_console)
    w = sub.add_parser("passwd", help="print a salted scrypt hash of a console password")
    w.add_argument("--stdin", action="store_true",
                   help="read the password from standard input (one line), no prompt")
    w.set_defaults(handler=_passwd)
    for entry in entry_points(group=COMMANDS_GROUP):
        entry.load()(sub)  # each plug-in adds its subcommands, with a handler
    return p


def load_config(path: str | Path) -> cfg.ChargerConfig:
    """The config, fully checked (driver names, owned sections); exit 2 with one line
    naming the key otherwise."""
    from firmware.service import check

    try:
        config = cfg.load(path)
        check(config)
        return config
    except cfg.ConfigError as exc:
        print(f"chargebay: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _check_config(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(f"{args.file}: OK ({config.identity.charge_point_id}, "
          f"{len(config.connectors)} connectors, {config.power_stage.module_count} modules)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from firmware.service import run_service

    logging.getLogger("chargebay").setLevel(logging.INFO)
    return run_service(load_config(args.file), say=print)


def _console(args: argparse.Namespace) -> int:
    from firmware.console import client

    return client.run(args.port, args.baud, args.log)


def _passwd(args: argparse.Namespace) -> int:
    import getpass

    from firmware.console.passwords import hash_password

    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("console password: ")
        if getpass.getpass("again: ") != password:
            print("chargebay: the two passwords differ", file=sys.stderr)
            return 2
    if not password:
        print("chargebay: an empty password is not a password", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    status: int = args.handler(args)
    if argv is None and args.handler is _run:
        _exit_at_once(status)
    return status


def _exit_at_once(status: int) -> None:
    """``chargebay run`` as the process: once the charger has stopped in order, every file
    and socket it opened is closed; the interpreter's own teardown of the imported
    packages (measured 2-3 s on a loaded 2-core machine, mostly the ocpp package's
    classes) would only delay the exit a supervisor waits for. Flush and leave."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    raise SystemExit(main())
