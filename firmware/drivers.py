"""The driver registry: for each hardware role, the drivers there are, by the name the
config file uses (as python-can picks ``interface="socketcan"`` or ``"virtual"``).

A factory takes the validated config and the clock and returns a driver that has not
touched the hardware yet; the driver opens its device in ``start``. A factory or a
``start`` that finds the device missing raises ``HardwareMissing`` naming the device and
the config key, which ``chargebay run`` prints as one line.

Roles that later issues fill (bay screen, card reader, payment terminal, DC meter) have
their place in ``ROLES`` with no driver yet; the composition root leaves their slot empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import can

from firmware import iso15118
from firmware.config import ChargerConfig, ConfigError
from hal.card_reader import CardReader
from hal.card_reader_serial import SerialCardReader
from hal.clock import Clock
from hal.io_board import IoBoard
from hal.io_board_serial import SerialIoBoard, SerialLike
from hal.payment import PaymentTerminal
from hal.payment_zvt import ZvtTerminal
from hal.power_stage import PowerStage
from hal.power_stage_can import InfyPowerStage
from hal.vehicle_link import VehicleLinks
from hal.vehicle_link_virtual import VirtualVehicleLinks


class HardwareMissing(RuntimeError):
    """A configured device is not there (no such CAN interface, no serial device)."""

    def __init__(self, key: str, device: str, reason: str) -> None:
        super().__init__(f"{device}: {reason} (config key '{key}')")
        self.key = key
        self.device = device
        self.reason = reason


@dataclass(frozen=True)
class Wires:
    """Ends of wires handed in from outside instead of opened by path: a simulator's
    pseudo-terminal with its byte accounting, a test's loopback port. Empty on a cabinet."""

    io_board_port: SerialLike | None = None


def _infypower(config: ChargerConfig, clock: Clock, wires: Wires) -> PowerStage:
    stage = config.power_stage
    try:
        bus = can.Bus(interface=stage.can_interface, channel=stage.can_channel,
                      bitrate=stage.bitrate)
    except (OSError, can.CanError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise HardwareMissing("power_stage.can_channel",
                              f"CAN interface {stage.can_channel}", reason) from None
    return InfyPowerStage(bus, stage.module_addresses, outputs=stage.outputs,
                          rating_w=stage.module_rating_kw * 1000,
                          min_voltage_v=stage.module_min_voltage_v,
                          max_voltage_v=stage.module_max_voltage_v,
                          max_current_a=stage.module_max_current_a)


def _serial_board(config: ChargerConfig, clock: Clock, wires: Wires) -> IoBoard:
    board = config.io_board
    port: str | SerialLike = wires.io_board_port or board.port
    return SerialIoBoard(tuple(c.evse_id for c in config.connectors), port, clock,
                         board.baudrate, board.heartbeat_timeout_ms)


def _virtual_links(config: ChargerConfig, clock: Clock, wires: Wires) -> VehicleLinks:
    return VirtualVehicleLinks(config.vehicle_link.channel,
                               tuple(c.evse_id for c in config.connectors))


def _zvt_terminal(config: ChargerConfig, clock: Clock, wires: Wires) -> PaymentTerminal:
    from firmware.bay import payment, tariff

    s = payment.parse(config.extra.get("payment"))
    return ZvtTerminal(s.host, s.port, clock, password=s.password,
                       currency=tariff.parse(config.extra.get("tariff")).currency.code,
                       ack_timeout_s=s.ack_timeout_s, timeout_s=s.timeout_s)


def _serial_card_reader(config: ChargerConfig, clock: Clock, wires: Wires) -> CardReader:
    from firmware.bay.compose import reader_section

    s = reader_section(config)
    return SerialCardReader(s.port, clock, s.baudrate, s.repeat_s)


def _web_screen(config: ChargerConfig, clock: Clock, wires: Wires) -> str:
    """The bay screen is a web page the bay's parts serve (firmware/bay/web.py); no
    device to open here."""
    return "web"


def _iso15118_links(config: ChargerConfig, clock: Clock, wires: Wires) -> VehicleLinks:
    return iso15118.build(config, clock, HardwareMissing)


Factory = Callable[[ChargerConfig, Clock, Wires], Any]

# role -> (config key of its driver name, {driver name: factory})
ROLES: dict[str, tuple[str, dict[str, Factory]]] = {
    "power_stage": ("power_stage.driver", {"infypower": _infypower}),
    "io_board": ("io_board.driver", {"serial": _serial_board}),
    # iso15118: DIN 70121, ISO 15118-2 and -20 DC on each connector's PLC modem
    # (firmware/iso15118.py); virtual: the in-process link a simulated truck connects to.
    "vehicle_link": ("vehicle_link.driver", {"virtual": _virtual_links,
                                             "iso15118": _iso15118_links}),
    "screen": ("screen.driver", {"web": _web_screen}),
    "card_reader": ("card_reader.driver", {"serial": _serial_card_reader}),
    "payment": ("payment.driver", {"zvt": _zvt_terminal}),
    "meter": ("meter.driver", {}),
    # (the field console has no driver choice: [console] device names a serial device or
    # "pty", hal/console_port.py; the composition root builds it)
}


# A section that names no driver gets this one (a [tariff] alone needs none).
DEFAULT_DRIVER = {"screen": "web", "payment": "zvt", "card_reader": "serial"}


def driver_name(config: ChargerConfig, role: str) -> str | None:
    if role == "power_stage":
        return config.power_stage.driver
    if role == "io_board":
        return config.io_board.driver
    if role == "vehicle_link":
        return config.vehicle_link.driver
    section = config.extra.get(role)
    if section is None:
        return None
    name = section.get("driver", DEFAULT_DRIVER.get(role))
    return name if isinstance(name, str) else ""


def check(config: ChargerConfig) -> None:
    """Every configured driver name exists (ConfigError naming the key otherwise)."""
    for role, (key, drivers) in ROLES.items():
        name = driver_name(config, role)
        if name is None:
            continue
        if name not in drivers:
            known = ", ".join(sorted(drivers)) or "none yet"
            raise ConfigError(key, f"no {role} driver {name!r} (known: {known})")
    if config.vehicle_link.driver == "iso15118":
        iso15118.section(config)


def build(role: str, config: ChargerConfig, clock: Clock, wires: Wires) -> Any:
    """The driver the config names for ``role`` (not started), or None if unconfigured."""
    key, drivers = ROLES[role]
    name = driver_name(config, role)
    if name is None:
        return None
    if name not in drivers:
        raise ConfigError(key, f"no {role} driver {name!r}")
    return drivers[name](config, clock, wires)
