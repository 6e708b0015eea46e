"""The commands that act: config set, session start|stop, unlock, selftest, availability,
reboot, diag (and config get, which reads the same device model).

Every one goes through the part that owns the decision (the core's gates through the
controller, the OCPP device model's validation, the authorization) and is recorded in the
security event log with who did it.
"""

from __future__ import annotations

import io as iolib
import json
import re
import tarfile
import tempfile
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from firmware.console import selftest, views
from firmware.console.context import Context
from firmware.console.views import Refused
from firmware.core.events import StopReason, UnlockOutcome

SECRET_KEY = re.compile(r"password|secret|passphrase|private|_key$|^key$|token", re.I)
MASK = "********"


# --- config get | set ------------------------------------------------------------------


def _variable(word: str) -> tuple[str, str, str | None]:
    parts = word.split(".")
    if len(parts) not in (2, 3) or not all(parts):
        raise Refused(f"{word!r}: name a variable as Component.Variable[.Instance] "
                      "(e.g. OCPPCommCtrlr.HeartbeatInterval)")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _model(ctx: Context) -> Any:
    if ctx.station is None:
        raise Refused("no OCPP device model here (no [ocpp] section): edit the config file")
    return ctx.station.model


def config(ctx: Context, args: list[str]) -> str:
    if not args or args[0] not in ("get", "set"):
        raise Refused("usage: config get [Component[.Variable[.Instance]]] | "
                      "config set Component.Variable[.Instance] VALUE")
    if args[0] == "get":
        return _config_get(ctx, args[1:])
    if ctx.role != "service":
        ctx.record("ConsoleRefused", f"config set {' '.join(args[1:2])}: needs service")
        raise Refused(f"config set: refused: needs the service role (you are {ctx.role})")
    if len(args) != 3:
        raise Refused("usage: config set Component.Variable[.Instance] VALUE")
    if args[1].partition(".")[0] in FILE_SECTIONS:
        raise Refused(f"{args[1]}: a config file key; change it in the file (read at start)")
    component, name, instance = _variable(args[1])
    result: str = _model(ctx).set_variable(component, name, instance, args[2])
    secret = bool(SECRET_KEY.search(name))
    shown = MASK if secret else args[2]
    kind = ("ReconfigurationOfSecurityParameters" if component == "SecurityCtrlr"
            else "ConsoleConfigSet")
    ctx.record(kind, f"config set {args[1]} {shown}: {result}",
               critical=component == "SecurityCtrlr")
    return {"Accepted": f"{args[1]} = {shown} (persisted)",
            "RebootRequired": f"{args[1]} = {shown} (persisted; takes effect after `reboot`)",
            "Rejected": f"{args[1]}: rejected (read-only, or not a valid value)",
            "UnknownComponent": f"{component}: no such component",
            "UnknownVariable": f"{args[1]}: no such variable"}.get(result, result)


# The charger's own sections of the config file: read here, changed only in the file.
FILE_SECTIONS = ("identity", "power_stage", "io_board", "vehicle_link", "control")


def _file_key(ctx: Context, wanted: str) -> str:
    section, _, key = wanted.partition(".")
    table = masked(getattr(ctx.charger.config, section))
    if not key:
        return "\n".join(f"{section}.{k} = {v}" for k, v in table.items())
    if key not in table:
        raise Refused(f"{wanted}: no such key")
    return f"{wanted} = {table[key]}  (config file, read at start)"


def _config_get(ctx: Context, args: list[str]) -> str:
    if len(args) > 1:
        raise Refused("usage: config get [Component[.Variable[.Instance]]]")
    wanted = args[0] if args else ""
    if wanted.partition(".")[0] in FILE_SECTIONS:
        return _file_key(ctx, wanted)
    model = _model(ctx)
    if wanted.count(".") >= 1:
        component, name, instance = _variable(wanted)
        status, value = model.get_variable(component, name, instance)
        if status != "Accepted":
            return f"{wanted}: {status}" + (" (write-only)" if status == "Rejected" else "")
        return f"{wanted} = {value}"
    lines = []
    for (component, name, instance), var in model.spec.items():
        if wanted and component != wanted:
            continue
        key = ".".join(p for p in (component, name, instance) if p)
        value = MASK if var.mutability == "WriteOnly" else model.values[(component, name,
                                                                         instance)]
        lines.append(f"{key} = {value}  [{var.mutability}]")
    return "\n".join(lines) or f"{wanted}: no such component"


# --- session, unlock, selftest, availability --------------------------------------------


async def session(ctx: Context, args: list[str]) -> str:
    if len(args) not in (2, 3) or args[0] not in ("start", "stop"):
        raise Refused("usage: session start N [TOKEN] | session stop N")
    evse = views._evse(ctx, args[1])
    if args[0] == "stop":
        if ctx.controller.connectors[evse].session.session_at is None:
            raise Refused(f"EVSE {evse}: no session to stop")
        ctx.record("ConsoleSessionStop", f"session stop {evse}")
        ctx.controller.request_stop(evse, StopReason.LOCAL)
        return f"EVSE {evse}: stop requested (ordered shutdown)"
    token = args[2] if len(args) == 3 else f"console-{ctx.user}"[:36]
    ctx.record("ConsoleSessionStart", f"session start {evse} token {token}")
    decision = await ctx.charger.authorization.request_start(evse, token, "local",
                                                             vouched_by="console")
    if not decision.accepted:
        return f"EVSE {evse}: start refused ({decision.reason})"
    phase = ctx.controller.status(evse).phase.value
    return (f"EVSE {evse}: authorized with {token}; {phase} (the vehicle starts when it "
            "is plugged in)")


async def unlock(ctx: Context, args: list[str]) -> str:
    if len(args) != 1:
        raise Refused("usage: unlock N")
    evse = views._evse(ctx, args[0])
    outcome = await ctx.controller.unlock_connector(evse)
    ctx.record("ConsoleUnlock", f"unlock {evse}: {outcome.value}")
    locked = ctx.charger.io.inputs(evse).lock_locked
    switch = f"lock switch reads {'locked' if locked else 'open'}"
    return {UnlockOutcome.UNLOCKED: f"EVSE {evse}: unlocked ({switch})",
            UnlockOutcome.UNLOCK_FAILED: f"EVSE {evse}: UNLOCK FAILED ({switch})",
            UnlockOutcome.ONGOING_AUTHORIZED_TRANSACTION:
                f"EVSE {evse}: refused: a session runs (stop it first); {switch}",
            UnlockOutcome.REFUSED_ENERGIZED:
                f"EVSE {evse}: refused: energized (contactors not open or output >= 60 V); "
                f"{switch}"}[outcome]


async def selftest_cmd(ctx: Context, args: list[str]) -> str:
    if len(args) != 2 or args[0] not in ("lock", "contactors"):
        raise Refused("usage: selftest lock|contactors N")
    evse = views._evse(ctx, args[1])
    try:
        passed, report = await selftest.run(ctx.controller, ctx.charger.io, evse, args[0])
    except selftest.SelfTestRefused as exc:
        ctx.record("ConsoleSelfTest", f"selftest {args[0]} {evse}: refused: {exc}")
        raise Refused(f"EVSE {evse}: selftest refused: {exc}") from None
    verdict = "PASS" if passed else "FAIL"
    ctx.record("ConsoleSelfTest", f"selftest {args[0]} {evse}: {verdict}: {report}")
    return f"EVSE {evse} selftest {args[0]}: {verdict}: {report}"


def availability(ctx: Context, args: list[str]) -> str:
    if len(args) != 2 or args[1] not in ("operative", "inoperative"):
        raise Refused("usage: availability N operative|inoperative")
    evse = views._evse(ctx, args[0])
    operative = args[1] == "operative"
    if ctx.station is not None:  # persisted as ChangeAvailability does (G03.FR.06)
        ctx.station.store(f"availability:{evse}",
                          "Operative" if operative else "Inoperative")
    ctx.controller.set_availability(evse, operative)
    ctx.record("ConsoleAvailability", f"availability {evse} {args[1]}")
    phase = ctx.controller.status(evse).phase.value
    later = " (after the running session)" if not operative and phase != "Unavailable" else ""
    return f"EVSE {evse}: {args[1]}{later}; now {phase}"


def reboot(ctx: Context, args: list[str]) -> str:
    if args:
        raise Refused("usage: reboot")
    request = ctx.extra.get("reboot")
    if request is None:
        raise Refused("reboot is not available here (the service runs without a restarter)")
    ctx.record("ResetOrReboot", "reboot from the console", critical=True)
    request()
    return "rebooting: sessions end in order, then the charger starts again"


# --- diag -------------------------------------------------------------------------------


def masked(value: Any, key: str = "") -> Any:
    """``value`` with every secret-looking key's value masked (and console hashes)."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, key) for v in value]
    if key and SECRET_KEY.search(key) and value not in (None, ""):
        return MASK
    return value


def _state(ctx: Context) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for evse in ctx.evse_ids:
        st = ctx.controller.status(evse)
        state[str(evse)] = {k: (v.value if hasattr(v, "value") else v)
                            for k, v in asdict(st).items() if k != "faults"}
        state[str(evse)]["faults"] = [str(c) for c in st.faults]
    return state


def diag(ctx: Context, args: list[str]) -> str:
    if args:
        raise Refused("usage: diag")
    ident = ctx.charger.config.identity
    folder = Path(ctx.settings.diag_dir or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = folder / f"chargebay-diag-{ident.charge_point_id}-{stamp}.tar.gz"
    files = {
        "log.txt": "\n".join(line.render() for line in ctx.log.lines),
        "ocpp-traffic.txt": "\n".join(line.render() for line in ctx.traffic.lines),
        "security.txt": "\n".join(f"{e.at.isoformat()} {e.kind} {e.tech_info}"
                                  for e in ctx.charger.security.recent()),
        "config.json": json.dumps(masked(ctx.charger.config), indent=2, default=str),
        "state.json": json.dumps({"connectors": _state(ctx), "console": ctx.stats()},
                                 indent=2, default=str),
        "status.txt": "\n\n".join(f(ctx, []) for f in (views.status, views.errors,
                                                        views.ocpp, views.can, views.board,
                                                        views.version)),
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"diag/{name}")
            info.size, info.mtime = len(data), int(time.time())
            archive.addfile(info, iolib.BytesIO(data))
    ctx.record("ConsoleDiag", f"diagnostics archive {path}")
    return f"diagnostics: {path} ({path.stat().st_size} bytes)"
