"""Simulated InfyPower-protocol DC modules answering on a python-can bus.

Each ModuleSim obeys the frames the driver sends (on/off, setpoint, group) and answers
reads with what the plant model (plant.py) wrote into ``measured_*``. The bank also keeps
the modules' own supervision: a module that hears nothing for 10 s switches itself off.
Faults are injected per module: silence (lost), a status fault bit, thermal derating.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import can

from hal import infypower as ip

SUPERVISION_S = 10.0  # modules switch off ~10 s after their last message (facts file)


@dataclass
class ModuleSim:
    address: int
    rating_w: float
    min_voltage_v: float
    max_voltage_v: float
    max_current_a: float
    group: int | None = None
    on: bool = False
    voltage_setpoint_v: float = 0.0
    current_setpoint_a: float = 0.0
    measured_voltage_v: float = 0.0
    measured_current_a: float = 0.0
    derate: float = 1.0
    silent: bool = False
    status: ip.Status = ip.Status(0)
    last_message_at: float = 0.0
    temperature_c: int = 35

    @property
    def current_limit_a(self) -> float:
        """What the module actually lets through: setpoint, rating and derating."""
        if not self.on:
            return 0.0
        volts = max(self.measured_voltage_v, self.voltage_setpoint_v, self.min_voltage_v)
        return max(0.0, min(self.current_setpoint_a, self.max_current_a * self.derate,
                            self.rating_w * self.derate / volts))

    def capability(self) -> ip.ModuleCapability:
        return ip.ModuleCapability(self.max_voltage_v, self.min_voltage_v,
                                   self.max_current_a * self.derate, self.rating_w * self.derate)

    def status_reply(self) -> ip.ModuleStatus:
        bits = self.status | (ip.Status(0) if self.on else ip.Status.MODULE_OFF)
        if self.derate < 1.0:
            bits |= ip.Status.DERATING | ip.Status.OVER_TEMPERATURE
        return ip.ModuleStatus(self.group or 0, self.temperature_c, bits)


@dataclass
class ModuleBank:
    bus: can.BusABC
    addresses: tuple[int, ...]
    rating_w: float
    min_voltage_v: float
    max_voltage_v: float
    max_current_a: float
    modules: list[ModuleSim] = field(default_factory=list)
    frames_in: int = 0
    bad_frames: int = 0

    def __post_init__(self) -> None:
        self.modules = [ModuleSim(a, self.rating_w, self.min_voltage_v, self.max_voltage_v,
                                  self.max_current_a) for a in self.addresses]
        self._by_address = {m.address: m for m in self.modules}

    def module(self, address: int) -> ModuleSim:
        return self._by_address[address]

    # --- fault injection -------------------------------------------------------------------

    def fail(self, address: int) -> None:
        m = self.module(address)
        m.silent = True
        m.on = False  # a dead module delivers nothing either

    def recover(self, address: int) -> None:
        self.module(address).silent = False

    def set_fault(self, address: int, bit: str | None) -> None:  # bit: any name = fault
        m = self.module(address)
        m.status = ip.Status.MODULE_FAULT if bit else ip.Status(0)
        if bit:
            m.on = False

    def set_derating(self, address: int, fraction: float) -> None:
        self.module(address).derate = max(0.0, min(1.0, fraction))

    # --- the wire --------------------------------------------------------------------------

    def step(self, now: float, dt: float) -> None:
        while (msg := self.bus.recv(timeout=0)) is not None:
            self.frames_in += 1
            try:
                self._handle(msg, now)
            except ip.FrameError:
                self.bad_frames += 1
        for m in self.modules:
            if m.on and now - m.last_message_at > SUPERVISION_S:
                m.on = False  # CAN supervision of the module itself

    def _handle(self, msg: can.Message, now: float) -> None:
        header = ip.parse_id(msg.arbitration_id)
        if header.source != ip.CONTROLLER:
            return
        if header.device == ip.DEVICE_GROUP:  # destination is a group number
            targets = [m for m in self.modules if m.group == header.destination]
        elif header.destination == ip.BROADCAST:
            targets = self.modules
        elif header.destination in self._by_address:
            targets = [self._by_address[header.destination]]
        else:
            return
        payload = ip.decode_request(header.command, bytes(msg.data))
        cmd = ip.Cmd(header.command)
        for m in targets:
            if m.silent:
                continue
            m.last_message_at = now
            reply: ip.Payload = payload
            match payload:
                case ip.OnOff(on):
                    m.on = on and not (m.status & ip.FAULT_BITS)
                case ip.SetOutput(v, a):
                    m.voltage_setpoint_v = min(v, m.max_voltage_v)
                    m.current_setpoint_a = a
                case ip.SetGroup(group):
                    m.group = group or None
                case None if cmd is ip.Cmd.READ_OUTPUT:
                    reply = ip.Reading(m.measured_voltage_v, m.measured_current_a)
                case None if cmd is ip.Cmd.READ_STATUS:
                    reply = m.status_reply()
                case None if cmd is ip.Cmd.READ_CAPABILITY:
                    reply = m.capability()
            answer = ip.Header(header.command, ip.CONTROLLER, m.address)
            self.bus.send(can.Message(arbitration_id=ip.make_id(answer),
                                      data=ip.encode_reply(cmd, reply), is_extended_id=True))
