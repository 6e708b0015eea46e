"""In-process IO board: a stand-in for the safety MCU until the serial board lands.

It keeps the board's hard rules (so the controller is tested against them) and offers the
world side: the truck sets the pilot resistor state, scenarios inject faults. Everything
is immediate: there is no wire here, which is why this is a stand-in and not a simulator
at the wire level (the pty-connected MicroPython board replaces it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hal.io_board import ConnectorInputs


@dataclass
class _Bay:
    vehicle_state: str = "A"  # what the vehicle's resistors present: A, B, C
    pwm_duty: float = 100.0
    drive_f: bool = False
    contactors_cmd: bool = False
    contactors: bool = False
    lock_cmd: bool = False
    lock: bool = False
    estop: bool = False
    isolation_fault: bool = False
    welded: bool = False
    lock_jammed: bool = False
    pilot_short: bool = False  # CP shorted to PE: state E
    temperature_c: float = 35.0
    refused_closes: int = 0


@dataclass
class InProcessIoBoard:
    connectors: tuple[int, ...]
    bays: dict[int, _Bay] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bays = {c: _Bay() for c in self.connectors}

    # --- controller side (IoBoard contract) ---------------------------------------------

    async def start(self, now: float) -> None:
        return None

    async def close(self) -> None:
        for bay in self.bays.values():
            bay.contactors_cmd = False
            bay.drive_f = True
            self._apply(bay)

    def set_pilot(self, connector: int, duty_percent: float, not_available: bool) -> None:
        bay = self.bays[connector]
        bay.pwm_duty, bay.drive_f = duty_percent, not_available

    def set_contactors(self, connector: int, closed: bool) -> None:
        bay = self.bays[connector]
        bay.contactors_cmd = closed
        self._apply(bay)

    def set_lock(self, connector: int, locked: bool) -> None:
        bay = self.bays[connector]
        bay.lock_cmd = locked
        self._apply(bay)

    def poll(self, now: float) -> None:
        for bay in self.bays.values():
            self._apply(bay)

    def inputs(self, connector: int) -> ConnectorInputs:
        bay = self.bays[connector]
        return ConnectorInputs(self.pilot_state(connector), bay.contactors, bay.lock,
                               bay.estop, bay.isolation_fault, bay.temperature_c,
                               plugged=bay.vehicle_state != "A")

    def take_faults(self) -> list[str]:
        return []

    # --- the board's own rules ----------------------------------------------------------

    def _apply(self, bay: _Bay) -> None:
        if not bay.lock_jammed:
            bay.lock = bay.lock_cmd
        allowed = bay.contactors_cmd and bay.lock and not bay.estop and not bay.isolation_fault
        if allowed:
            bay.contactors = True
        elif not bay.welded:
            if bay.contactors_cmd and not bay.contactors:
                bay.refused_closes += 1
            bay.contactors = False

    def pilot_state(self, connector: int) -> str:
        bay = self.bays[connector]
        if bay.pilot_short:
            return "E"
        if bay.drive_f:
            return "F"
        return bay.vehicle_state

    # --- world side: the truck and the scenario -----------------------------------------

    def port(self, connector: int) -> _PilotPort:
        return _PilotPort(self, connector)

    def set_vehicle_state(self, connector: int, state: str) -> None:
        self.bays[connector].vehicle_state = state

    def inject(self, connector: int, fault: str, active: bool = True) -> None:
        bay = self.bays[connector]
        match fault:
            case "estop":
                for b in self.bays.values():  # one mushroom button per cabinet
                    b.estop = active
                    self._apply(b)
            case "isolation":
                bay.isolation_fault = active
            case "welded":
                bay.welded = active
            case "lock_jam":
                bay.lock_jammed = active
            case "pilot_short":
                bay.pilot_short = active
            case _:
                raise ValueError(f"the in-process IO board cannot inject {fault!r}")
        self._apply(bay)


@dataclass
class _PilotPort:
    board: InProcessIoBoard
    connector: int

    def set_pilot(self, state: str) -> None:
        self.board.set_vehicle_state(self.connector, state)

    def duty_percent(self) -> float:
        return self.board.bays[self.connector].pwm_duty
