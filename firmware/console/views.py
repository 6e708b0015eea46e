"""The read-only commands: status, errors, log, ocpp, can, board, version.

Each returns text for the terminal. They read the controller, the station and the
drivers through their public state; a driver that does not offer a figure shows "-"
(the simulator's drivers and the real ones offer the same)."""

from __future__ import annotations

import logging
import statistics
from dataclasses import asdict
from typing import Any

from firmware.console.context import Context
from firmware.console.records import LEVELS
from firmware.errors import spec

DASH = "-"


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    return DASH if value is None else f"{value:.{digits}f} {unit}"


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


def status(ctx: Context, args: list[str]) -> str:
    ident = ctx.charger.config.identity
    power = ctx.charger.power
    lines = [f"{ident.charge_point_id}  {ident.vendor} {ident.model}  serial {ident.serial}"
             f"  firmware {ident.firmware_version}",
             f"OCPP {_ocpp_state(ctx)}   power modules {power.available_modules()}/"
             f"{ctx.charger.config.power_stage.module_count} healthy   IO board "
             f"{'up' if ctx.charger.io.link_up else 'DOWN'}"]
    for evse_id in _evses(ctx, args):
        st = ctx.controller.status(evse_id)
        conn = ctx.controller.connectors[evse_id]
        kw = st.voltage_v * st.current_a / 1000.0
        soc = DASH if st.soc_percent is None else f"{st.soc_percent:.0f} %"
        avail = "" if conn.session.operative else " (set inoperative)"
        lines.append(f"EVSE {evse_id}: {st.phase.value}{avail}")
        lines.append(f"  {st.voltage_v:7.1f} V  {st.current_a:6.1f} A  {kw:6.1f} kW  "
                     f"SoC {soc}")
        holder = ctx.charger.authorization.holder(evse_id)
        if conn.session.session_at is not None:
            who = f", token {holder.token} ({holder.source})" if holder else ""
            lines.append(f"  session {_hms(st.elapsed_s)}, {st.energy_wh / 1000:.2f} kWh{who}")
        else:
            last = f" (last ended: {st.stop_reason.value})" if st.stop_reason else ""
            lines.append(f"  no session{last}")
        binds = st.binding_limit.value if st.binding_limit is not None else DASH
        lines.append(f"  limit {st.limit_a:.1f} A, binding: {binds}; setpoint "
                     f"{st.setpoint_a:.1f} A")
        faults = ", ".join(f"{c} ({spec(c).severity.value})" for c in st.faults) or "none"
        lines.append(f"  active errors: {faults}")
    lines.append("console: " + ", ".join(f"{k} {v}" for k, v in ctx.stats().items()))
    return "\n".join(lines)


def _ocpp_state(ctx: Context) -> str:
    st = ctx.station
    if st is None:
        return "not configured"
    return (f"{'online' if st.online.is_set() else 'OFFLINE'}, queue {len(st.queue)}")


def _evses(ctx: Context, args: list[str]) -> list[int]:
    if args:
        evse = _evse(ctx, args[0])
        return [evse]
    return list(ctx.evse_ids)


class Refused(Exception):
    """A command refused with one line for the engineer."""


def _evse(ctx: Context, word: str) -> int:
    try:
        evse = int(word)
    except ValueError:
        raise Refused(f"{word!r} is not a connector number "
                      f"({', '.join(map(str, ctx.evse_ids))})") from None
    if evse not in ctx.evse_ids:
        raise Refused(f"no connector {evse} (there are {', '.join(map(str, ctx.evse_ids))})")
    return evse


def errors(ctx: Context, args: list[str]) -> str:
    ctx.errors.refresh()
    lines = ["active:"]
    for evse_id in ctx.evse_ids:
        for code in ctx.controller.status(evse_id).faults:
            entry = spec(code)
            lines.append(f"  EVSE {evse_id}: {code} ({entry.severity.value}, clears "
                         f"{entry.clearing.value}, OCPP {entry.ocpp_error_code})")
    if len(lines) == 1:
        lines.append("  none")
    lines.append("history (newest last):")
    for e in list(ctx.errors.entries)[-50:]:
        cleared = f"cleared {e.cleared_at:%Y-%m-%d %H:%M:%S}" if e.cleared_at else "ACTIVE"
        lines.append(f"  {e.raised_at:%Y-%m-%d %H:%M:%S}Z EVSE {e.evse_id}: {e.code} "
                     f"- {cleared}")
    if not ctx.errors.entries:
        lines.append("  none since start")
    return "\n".join(lines)


def log(ctx: Context, args: list[str]) -> str:
    count, part, level = 20, None, logging.NOTSET
    for arg in args:
        if arg.isdigit():
            count = max(1, min(int(arg), 500))
        elif arg.startswith("part="):
            part = arg[5:]
        elif arg.startswith("level="):
            if arg[6:] not in LEVELS:
                raise Refused(f"level must be one of {', '.join(LEVELS)}")
            level = LEVELS[arg[6:]]
        else:
            raise Refused(f"unknown argument {arg!r} (log [N] [part=PART] [level=LEVEL])")
    if part == "security":
        events = ctx.charger.security.recent(count)
        return "\n".join(f"{e.at:%H:%M:%S} {e.kind}{' (critical)' if e.critical else ''}: "
                         f"{e.tech_info}" for e in events) or "no security events"
    lines = ctx.log.tail(count, part, level)
    return "\n".join(line.render() for line in lines) or "nothing logged (with that filter)"


def ocpp(ctx: Context, args: list[str]) -> str:
    st = ctx.station
    if st is None:
        return "OCPP is not configured (no [ocpp] section)"
    lines = [f"CSMS {st.settings.csms_url}  security profile {st.settings.security_profile}",
             f"connection: {'online (boot accepted)' if st.online.is_set() else 'OFFLINE'}"]
    if st.offline_since is not None and not st.online.is_set():
        lines.append(f"  offline for {st.clock.now() - st.offline_since:.0f} s")
    lines.append(f"queue depth: {len(st.queue)} messages; {st.delivered} transaction "
                 "events delivered")
    for evse_id in ctx.evse_ids:
        tx = st.tx.transaction_id(evse_id)
        lines.append(f"EVSE {evse_id}: transaction {tx or DASH}")
    lines.append("last messages:")
    traffic = ctx.traffic.tail(10)
    lines += [f"  {line.at:%H:%M:%S} {line.text[:150]}" for line in traffic] or ["  none"]
    return "\n".join(lines)


def can(ctx: Context, args: list[str]) -> str:
    power = ctx.charger.power
    cfg = ctx.charger.config.power_stage
    lines = [f"bus {cfg.can_interface}:{cfg.can_channel} {cfg.bitrate} bit/s, driver "
             f"{cfg.driver}",
             f"frames sent {getattr(power, 'frames_sent', DASH)}, bad frames "
             f"{getattr(power, 'bad_frames', DASH)}, rejected {getattr(power, 'rejected', DASH)}"]
    modules: dict[int, Any] = getattr(power, "modules", {})
    lost = []
    lines.append("module  state    output  on    V        A       temp  status")
    for address, m in sorted(modules.items()):
        state = "faulty" if m.faulty else ("ok" if m.healthy else "LOST")
        if not m.healthy:
            lost.append(f"{address:#04x}")
        temp = getattr(m, "temperature_c", None)
        lines.append(f"{address:#06x}  {state:<7}  {m.group if m.group else DASH!s:<6}  "
                     f"{'yes' if m.on else 'no':<4}  {m.voltage_v:7.1f}  {m.current_a:6.1f}  "
                     f"{_fmt(temp, 'C', 0):>5}  {m.status!r}")
    lines.append(f"lost modules: {', '.join(lost) or 'none'}")
    return "\n".join(lines)


def board(ctx: Context, args: list[str]) -> str:
    io = ctx.charger.io
    version = getattr(io, "firmware_version", None)
    lines = [f"IO board link {'up' if io.link_up else 'DOWN'}, firmware "
             f"{'.'.join(map(str, version)) if version else DASH}"]
    stats = getattr(io, "stats", None)
    if stats is not None:
        lines.append("link: " + ", ".join(f"{k} {v}" for k, v in asdict(stats).items()))
    rtt = list(getattr(io, "ack_rtt_s", ()))
    if rtt:
        lines.append(f"ack round trip: median {statistics.median(rtt) * 1000:.1f} ms, "
                     f"max {max(rtt) * 1000:.1f} ms ({len(rtt)} samples)")
    for evse_id in _evses(ctx, args):
        inp = io.inputs(evse_id)
        s = ctx.controller.connectors[evse_id].session
        lines.append(f"EVSE {evse_id}: pilot {inp.pilot}, plug "
                     f"{'in' if inp.plugged else 'out'}, lock "
                     f"{'locked' if inp.lock_locked else 'open'} (commanded "
                     f"{'locked' if s.lock_commanded else 'open'}), contactors "
                     f"{'CLOSED' if inp.contactors_closed else 'open'} (commanded "
                     f"{'closed' if s.contactors_commanded else 'open'})")
        lines.append(f"  e-stop {'PRESSED' if inp.emergency_stop else 'released'}, "
                     f"isolation {'FAULT' if inp.isolation_fault else 'ok'}, connector "
                     f"{inp.temperature_c:.1f} C")
    return "\n".join(lines)


def version(ctx: Context, args: list[str]) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        software = package_version("chargebay")
    except PackageNotFoundError:
        software = "unknown"
    ident = ctx.charger.config.identity
    io_version = getattr(ctx.charger.io, "firmware_version", None)
    return "\n".join([f"chargebay {software} (station firmware {ident.firmware_version})",
                      f"IO board firmware {'.'.join(map(str, io_version)) if io_version else DASH}",
                      f"{ident.vendor} {ident.model} serial {ident.serial}"])
