"""The command set: names, who may run them, their help, completion, and running one.

viewer: reads only. service: may also act. A refusal for the role is one line, changes
nothing, and is recorded like every action (security event log)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from firmware.console import actions, views
from firmware.console.context import Context
from firmware.console.views import Refused

log = logging.getLogger("chargebay.console")
Handler = Callable[[Context, list[str]], str | Awaitable[str]]
ROLES = ("viewer", "service")


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    role: str  # the least role that may run it
    usage: str
    help: str
    handler: Handler
    words: tuple[str, ...] = ()  # completion for the first argument
    connector_at: int | None = None  # which argument is a connector number


def _help(ctx: Context, args: list[str]) -> str:
    if args:
        cmd = COMMANDS.get(args[0])
        if cmd is None:
            raise Refused(f"no command {args[0]!r}; `help` lists them")
        return f"{cmd.usage}\n  {cmd.help}\n  role: {cmd.role}"
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = [f"{c.usage:<{width}}  {c.help.split('. ')[0].rstrip('.')}"
             + ("" if c.role == "viewer" else "  [service]") for c in COMMANDS.values()]
    lines += [f"{'logout':<{width}}  end the session (also Ctrl-D)",
              "keys: Backspace, Ctrl-U (erase line), Ctrl-W (erase word), Ctrl-C (cancel "
              "line), Up/Down (history), Tab (complete)"]
    return "\n".join(lines)


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("help", "viewer", "help [COMMAND]", "What each command does.", _help),
    Command("status", "viewer", "status [N]",
            "The charger and each connector: state, V, A, kW, SoC, session, active "
            "errors, which limit binds.", views.status, connector_at=0),
    Command("errors", "viewer", "errors", "Active errors and their history with times.",
            views.errors),
    Command("log", "viewer", "log [N] [part=PART] [level=LEVEL]",
            "The last N log lines (default 20), of one part (loop, ocpp, charger, console,"
            " ..., or security: the security event log) and at least LEVEL.", views.log,
            words=("part=", "level=")),
    Command("ocpp", "viewer", "ocpp",
            "The CSMS connection, the queue depth and the last messages.", views.ocpp),
    Command("can", "viewer", "can",
            "The power modules' CAN bus: statistics, each module's V, A, temperature, "
            "status; lost modules.", views.can),
    Command("board", "viewer", "board [N]",
            "The IO board: pilot, lock, contactors, e-stop per connector; link statistics.",
            views.board, connector_at=0),
    Command("config", "viewer", "config get [KEY] | config set KEY VALUE",
            "The OCPP device model (Component.Variable[.Instance]): get reads; set "
            "(service) validates and persists, as SetVariables does.", actions.config,
            words=("get", "set")),
    Command("session", "service", "session start N [TOKEN] | session stop N",
            "Start a session authorized by you (or with TOKEN), or stop one in order.",
            actions.session, words=("start", "stop"), connector_at=1),
    Command("unlock", "service", "unlock N",
            "Release connector N's lock. Refused while a session runs or while energized;"
            " the answer is what the lock's switch reads.", actions.unlock, connector_at=0),
    Command("selftest", "service", "selftest lock|contactors N",
            "Move the lock (and contactors) of an idle connector and time them. Only with"
            " no vehicle.", actions.selftest_cmd, words=("lock", "contactors"),
            connector_at=1),
    Command("availability", "service", "availability N operative|inoperative",
            "Take a connector out of service or back (persisted, as ChangeAvailability)."
            , actions.availability, connector_at=0),
    Command("reboot", "service", "reboot",
            "Restart the charger: sessions end in order first.", actions.reboot),
    Command("version", "viewer", "version", "Software and firmware versions.",
            views.version),
    Command("diag", "service", "diag",
            "Write one archive with logs, config (secrets masked), state and recent OCPP "
            "traffic; prints its path.", actions.diag),
)}
SECOND_WORDS = {"availability": ("operative", "inoperative")}


def complete(typed: str, evse_ids: tuple[int, ...], role: str | None = None) -> list[str]:
    """Candidates for the last word of ``typed``."""
    words = typed.split(" ")
    last = words[-1]
    if len(words) == 1:
        return sorted(n for n in [*COMMANDS, "logout", "whoami"] if n.startswith(last))
    cmd = COMMANDS.get(words[0])
    if cmd is None:
        return []
    position = len(words) - 2
    options: tuple[str, ...] = ()
    if position == 0 and cmd.words:
        options = cmd.words
    elif cmd.connector_at == position:
        options = tuple(str(e) for e in evse_ids)
    elif position == 1 and cmd.name in SECOND_WORDS:
        options = SECOND_WORDS[cmd.name]
    elif cmd.name == "help" and position == 0:
        options = tuple(COMMANDS)
    return sorted(o for o in options if o.startswith(last))


async def run(ctx: Context, line: str) -> str:
    """One command line, answered as text; never raises."""
    words = line.split()
    cmd = COMMANDS.get(words[0])
    if cmd is None:
        return f"unknown command {words[0]!r}; `help` lists the commands"
    if ROLES.index(ctx.role) < ROLES.index(cmd.role):
        ctx.record("ConsoleRefused", f"{line[:80]}: needs {cmd.role}")
        return f"{cmd.name}: refused: needs the {cmd.role} role (you are {ctx.role})"
    try:
        result = cmd.handler(ctx, words[1:])
        if inspect.isawaitable(result):
            result = await result
        return result
    except Refused as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - a broken command must not end the console
        log.exception("console command %r failed", line)
        return f"{cmd.name}: failed: {exc!r} (logged)"
