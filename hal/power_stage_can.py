"""PowerStage driver for InfyPower-protocol modules over python-can (see infypower.py).

Non-blocking by design: ``poll`` drains what arrived with ``recv(timeout=0)`` and sends
the due requests; ``set_output`` writes setpoint frames at once (the fast path from a
vehicle CurrentDemand to the bus). Modules are addressed one by one because the current
is split evenly over the modules of an output and each module limits its own share.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import can

from hal import infypower as ip
from hal.power_stage import (
    TEST_CURRENT_LIMIT_A,
    Capability,
    Mode,
    OutputTelemetry,
    PowerStageFault,
)

log = logging.getLogger("chargebay.power_stage")

SETPOINT_REFRESH_S = 5.0  # guard against a lost frame; the 1 Hz reads keep modules alive
CAPABILITY_REFRESH_S = 10.0
STATUS_INTERVAL_S = 2.0  # faults also show as silence or odd readings in between
SETPOINT_DEADBAND_A = 0.1
SETPOINT_DEADBAND_V = 0.1
# A module that reported a fault stays out of the pool (and off) until its status has been
# clean this long: one that flaps fault/ok must not rejoin on every good frame.
FAULT_HOLDOFF_S = 10.0
# Readings beyond what the configured module can do are not measurements but noise or a
# lying module: dropped and counted. The margins are the slack of a real module's
# regulation and metering (approx.), far below what a bad frame claims.
READING_MARGIN = 1.1
STRAY_CURRENT_A = 1.0  # a module out of the pool reading more than this is told off again


@dataclass
class _Module:
    address: int
    capability: ip.ModuleCapability
    healthy: bool = False
    faulty: bool = False
    last_seen: float = -1e9
    asked: int = 0  # reads sent since its last answer (silence needs unanswered asks)
    polled_at: float = -1e9
    status_at: float = -1e9
    capability_at: float = -1e9
    group: int | None = None
    on: bool | None = None
    sent_v: float = -1.0
    sent_a: float = -1.0
    sent_at: float = -1e9
    voltage_v: float = 0.0
    current_a: float = 0.0
    status: ip.Status = ip.Status(0)
    clean_since: float | None = None  # after a fault: when its status first read clean


@dataclass
class _Output:
    mode: Mode = Mode.OFF
    voltage_v: float = 0.0
    current_a: float = 0.0
    wanted: int = 0
    had_modules: bool = False
    held_v: float = 0.0  # the last voltage a module of this output measured


class InfyPowerStage:
    def __init__(self, bus: can.BusABC, addresses: tuple[int, ...], *, outputs: tuple[int, ...],
                 rating_w: float, min_voltage_v: float, max_voltage_v: float,
                 max_current_a: float, module_timeout_s: float = 3.0,
                 poll_interval_s: float = 1.0) -> None:
        self.bus = bus
        self.outputs = outputs
        self.fallback = ip.ModuleCapability(max_voltage_v, min_voltage_v, max_current_a, rating_w)
        self.modules = {a: _Module(a, self.fallback) for a in addresses}
        self._outputs = {o: _Output() for o in outputs}
        self.module_timeout_s = module_timeout_s
        self.poll_interval_s = poll_interval_s
        self._faults: list[PowerStageFault] = []
        self.frames_sent = 0
        self._refreshed_at = -1e9
        self._next_due = -1e9
        self.bad_frames = 0
        self.rejected = 0
        self.implausible = 0  # readings and capabilities outside physics or the config
        self.bus_errors = 0  # the CAN interface raising on receive or send
        self._bus_down = False

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, now: float) -> None:
        for m in self.modules.values():
            self._send(m.address, ip.Cmd.ON_OFF, ip.OnOff(False))
            m.on = False
            self._send(m.address, ip.Cmd.READ_CAPABILITY)
            m.capability_at = now

    async def close(self) -> None:
        """Every module off, then the bus released (the driver owns the bus it was given)."""
        for m in self.modules.values():
            self._send(m.address, ip.Cmd.ON_OFF, ip.OnOff(False))
            self._send(m.address, ip.Cmd.SET_OUTPUT, ip.SetOutput(0.0, 0.0))
        self.bus.shutdown()

    # --- commands --------------------------------------------------------------------------

    def assign(self, output: int, modules: int) -> None:
        out = self._outputs[output]
        out.wanted = modules
        members = self._members(output)
        changed = False
        for m in members[modules:]:  # give back the surplus, switched off first
            self._release(m)
            changed = True
        if len(members) < modules:
            free = [m for m in self.modules.values() if m.healthy and m.group is None]
            for m in free[:modules - len(members)]:
                m.group = output
                self._send(m.address, ip.Cmd.SET_GROUP, ip.SetGroup(output))
                m.sent_at = -1e9  # force a fresh setpoint
                changed = True
        if changed:
            out.had_modules = out.had_modules or modules > 0
            self._apply(output, None)

    @property
    def link_up(self) -> bool:
        return not self._bus_down and self.available_modules() > 0

    def available_modules(self) -> int:
        return sum(1 for m in self.modules.values() if m.healthy)

    def set_output(self, output: int, mode: Mode, voltage_v: float, current_a: float,
                   now: float) -> None:
        out = self._outputs[output]
        if mode in (Mode.CABLE_CHECK, Mode.PRECHARGE):
            current_a = min(current_a, TEST_CURRENT_LIMIT_A)  # IEC 61851-23 / ISO 15118-2
        if mode is Mode.OFF:
            voltage_v, current_a = 0.0, 0.0
        out.mode, out.voltage_v, out.current_a = mode, voltage_v, max(current_a, 0.0)
        self._apply(output, now)

    def _apply(self, output: int, now: float | None) -> None:
        out = self._outputs[output]
        members = self._members(output)
        if not members:
            return
        on = out.mode is not Mode.OFF
        share = out.current_a / len(members)
        for m in members:
            amps = min(share, self._module_limit_a(m, out.voltage_v)) if on else 0.0
            if m.on != on:
                self._send(m.address, ip.Cmd.ON_OFF, ip.OnOff(on))
                m.on = on
            stale = now is None or now - m.sent_at >= SETPOINT_REFRESH_S
            # (a zero always goes out: the deadband must not leave 0.1 A standing)
            if stale or abs(amps - m.sent_a) > SETPOINT_DEADBAND_A or (amps == 0.0) != (
                    m.sent_a == 0.0) or abs(
                    out.voltage_v - m.sent_v) > SETPOINT_DEADBAND_V:
                self._send(m.address, ip.Cmd.SET_OUTPUT, ip.SetOutput(out.voltage_v, amps))
                m.sent_v, m.sent_a = out.voltage_v, amps
                m.sent_at = now if now is not None else m.last_seen

    def _module_limit_a(self, m: _Module, voltage_v: float) -> float:
        cap = m.capability
        return min(cap.max_current_a, cap.rated_power_w / max(voltage_v, cap.min_voltage_v))

    def _release(self, m: _Module) -> None:
        if m.on is not False:
            self._send(m.address, ip.Cmd.ON_OFF, ip.OnOff(False))
        self._send(m.address, ip.Cmd.SET_OUTPUT, ip.SetOutput(0.0, 0.0))
        self._send(m.address, ip.Cmd.SET_GROUP, ip.SetGroup(0))
        m.on, m.group, m.sent_a, m.sent_v = False, None, 0.0, 0.0

    def _members(self, output: int) -> list[_Module]:
        return [m for m in self.modules.values() if m.group == output and m.healthy]

    # --- reading ---------------------------------------------------------------------------

    def poll(self, now: float) -> None:
        self._drain(now)
        if now - self._refreshed_at >= 1.0:  # keep-alive refresh; sends only what is stale
            self._refreshed_at = now
            for output in self._outputs:
                self._apply(output, now)
        if now >= self._next_due:
            self._poll_modules(now)

    def _drain(self, now: float) -> None:
        """Read what arrived. An interface that goes down (``ip link set can0 down``,
        bus-off) raises here: that is counted and reported as the whole stage's
        ``comm_lost`` once, never passed up; the modules' own silence timeout follows."""
        for _ in range(10_000):  # a flood is read over several ticks, not forever
            try:
                msg = self.bus.recv(timeout=0)
            except (can.CanError, OSError, ValueError) as exc:
                self.bus_errors += 1
                if not self._bus_down:
                    self._bus_down = True
                    log.warning("CAN receive failed: %s", exc)
                    self._faults.append(PowerStageFault(None, "comm_lost",
                                                        f"CAN interface: {exc}"))
                return
            if msg is None:
                break
            self._bus_down = False
            self._receive(msg, now)

    def _poll_modules(self, now: float) -> None:
        grouped: set[int] = set()
        next_due = now + self.poll_interval_s
        for m in self.modules.values():
            if now - m.polled_at >= self.poll_interval_s:
                m.polled_at = now
                m.asked += 1
                if m.group is not None and m.healthy:
                    grouped.add(m.group)  # one group read answers for all its modules
                else:
                    self._send(m.address, ip.Cmd.READ_OUTPUT)
                if now - m.status_at >= STATUS_INTERVAL_S:
                    m.status_at = now
                    self._send(m.address, ip.Cmd.READ_STATUS)
            if now - m.capability_at >= CAPABILITY_REFRESH_S:
                m.capability_at = now
                self._send(m.address, ip.Cmd.READ_CAPABILITY)
            # Silent = asked at least twice and no answer for the timeout: a host that
            # was itself held up (a stalled loop asks nothing) does not blame the modules.
            if m.healthy and m.asked >= 2 and now - m.last_seen > self.module_timeout_s:
                self._lose(m, "module_lost", f"module {m.address:#04x} silent "
                           f"for {now - m.last_seen:.1f} s")
            next_due = min(next_due, m.polled_at + self.poll_interval_s,
                           m.capability_at + CAPABILITY_REFRESH_S)
            if m.healthy:
                next_due = min(next_due, m.last_seen + self.module_timeout_s + 1e-6)
        self._next_due = next_due
        for group in grouped:
            self._send(group, ip.Cmd.READ_OUTPUT, device=ip.DEVICE_GROUP)
        for output, out in self._outputs.items():
            if out.wanted and out.had_modules and not self._members(output):
                if self.available_modules() == 0:
                    self._faults.append(PowerStageFault(output, "comm_lost",
                                                        "no module of the output answers"))
                    out.had_modules = False

    def _lose(self, m: _Module, code: str, detail: str) -> None:
        """Out of the pool, switched off FIRST: a module that misbehaves while delivering
        current must not keep delivering it unaccounted (its output's telemetry and the
        allocation no longer count it)."""
        output = m.group
        self._send(m.address, ip.Cmd.ON_OFF, ip.OnOff(False))
        self._send(m.address, ip.Cmd.SET_OUTPUT, ip.SetOutput(0.0, 0.0))
        self._send(m.address, ip.Cmd.SET_GROUP, ip.SetGroup(0))
        m.healthy = False
        m.group, m.on, m.sent_a, m.sent_v = None, False, 0.0, 0.0
        log.warning("%s", detail)
        self._faults.append(PowerStageFault(output, code, detail))

    def _receive(self, msg: can.Message, now: float) -> None:
        try:
            header = ip.parse_id(msg.arbitration_id)
            if header.destination != ip.CONTROLLER:
                return
            m = self.modules.get(header.source)
            if m is None:
                self.bad_frames += 1
                return
            if header.error:
                self.rejected += 1
                return
            payload = ip.decode_reply(header.command, bytes(msg.data))
        except ip.FrameError:
            self.bad_frames += 1
            return
        m.last_seen, m.asked = now, 0
        match payload:
            case ip.Reading(v, a):
                if not self._plausible_reading(v, a):
                    self.implausible += 1
                    return
                m.voltage_v, m.current_a = v, a
                if m.group is None and abs(a) > STRAY_CURRENT_A:
                    self._send(m.address, ip.Cmd.ON_OFF, ip.OnOff(False))  # still on: off
            case ip.ModuleStatus(_, _, bits):
                self._on_status(m, bits, now)
            case ip.ModuleCapability():
                cap = self._bounded(payload)
                if cap is None:
                    self.implausible += 1
                    return
                m.capability = cap
        if not m.healthy and not m.faulty:
            m.healthy = True  # (re)joins the pool, unassigned
            m.group, m.on = None, None

    def _plausible_reading(self, volts: float, amps: float) -> bool:
        """Finite, and within what the configured module can physically do (a module
        cannot sink current: a little negative is metering offset, -1e30 is not)."""
        cfg = self.fallback
        return (math.isfinite(volts) and math.isfinite(amps)
                and -0.05 * cfg.max_voltage_v <= volts <= cfg.max_voltage_v * READING_MARGIN
                and -0.05 * cfg.max_current_a <= amps <= cfg.max_current_a * READING_MARGIN)

    def _bounded(self, claimed: ip.ModuleCapability) -> ip.ModuleCapability | None:
        """A module's capability is believed only as far as the configured hardware
        goes: a module claiming 6553 A / 65535 V is given the configured rating at most
        (less if it says less: derating). A claim with no usable window is dropped."""
        cfg = self.fallback
        cap = ip.ModuleCapability(min(claimed.max_voltage_v, cfg.max_voltage_v),
                                  max(claimed.min_voltage_v, cfg.min_voltage_v),
                                  min(claimed.max_current_a, cfg.max_current_a),
                                  min(claimed.rated_power_w, cfg.rated_power_w))
        if cap.max_voltage_v <= cap.min_voltage_v or cap.max_current_a <= 0.0 \
                or cap.rated_power_w <= 0.0:
            return None
        return cap

    def _on_status(self, m: _Module, bits: ip.Status, now: float) -> None:
        became_derated = bool(bits & ip.Status.DERATING) and not m.status & ip.Status.DERATING
        m.status = bits
        if bits & ip.FAULT_BITS:
            m.clean_since = None
            if not m.faulty:
                m.faulty = True
                if m.healthy:
                    self._lose(m, "module_fault", f"module {m.address:#04x} status {bits!r}")
        elif m.faulty:
            # Back only after FAULT_HOLDOFF_S of clean status (it stays off meanwhile).
            if m.clean_since is None:
                m.clean_since = now
            elif now - m.clean_since >= FAULT_HOLDOFF_S:
                m.faulty, m.clean_since = False, None
        if became_derated:
            m.capability_at = -1e9  # ask for the reduced capability on the next poll
            self._next_due = -1e9

    def telemetry(self, output: int) -> OutputTelemetry:
        """With no module of the output left to measure (all lost, the bus down), the
        voltage is the last one measured, never 0: an unmeasured output is not a safe
        one (the < 60 V gates, e.g. before unlocking, wait for modules to measure it)."""
        members = [m for m in self.modules.values() if m.group == output]
        out = self._outputs[output]
        if members:
            out.held_v = max(m.voltage_v for m in members)
        volts = out.held_v
        amps = sum(m.current_a for m in members)
        seen = max((m.last_seen for m in members), default=0.0)
        return OutputTelemetry(output, volts, amps, seen)

    def capability(self, output: int) -> Capability:
        members = self._members(output)
        if not members:
            return Capability(0.0, 0.0, 0.0, 0.0, 0)
        return Capability(min(m.capability.max_voltage_v for m in members),
                          max(m.capability.min_voltage_v for m in members),
                          sum(m.capability.max_current_a for m in members),
                          sum(m.capability.rated_power_w for m in members), len(members))

    def module_capability(self) -> Capability:
        c = self.fallback
        return Capability(c.max_voltage_v, c.min_voltage_v, c.max_current_a, c.rated_power_w, 1)

    def take_faults(self) -> list[PowerStageFault]:
        faults, self._faults = self._faults, []
        return faults

    def _send(self, address: int, cmd: ip.Cmd, payload: ip.Payload = None,
              device: int = ip.DEVICE_SINGLE) -> None:
        header = ip.Header(cmd, address, ip.CONTROLLER, device)
        msg = can.Message(arbitration_id=ip.make_id(header),
                          data=ip.encode_request(cmd, payload), is_extended_id=True)
        try:
            self.bus.send(msg)
            self.frames_sent += 1
        except (can.CanError, OSError, ValueError) as exc:
            # bus-off, TX queue full, interface down: the module times out by itself
            self.bus_errors += 1
            if not self._bus_down:
                log.warning("CAN send failed: %s", exc)
