"""The charger's configuration: one TOML file, validated into frozen dataclasses.

Every section of the charger's own is a ``firmware.schema.Section`` (pydantic, strict and
closed): each key has a type, a unit in its name and a range from the hardware or the
standard it serves. A bad file never half-loads: the first problem raises ``ConfigError``
naming the key (``connector[1].cable_max_current_a``) and the reason. Sections owned by
other parts (OWNED_SECTIONS: ocpp, simulator, tariff, console, screen, ...) are kept raw
here and checked by their owner; ``firmware.charger.check`` runs every check, driver
names included, so ``chargebay check-config`` names a bad key before anything starts.

The loader never crashes and never hangs: only a regular file of sane size is read (a
FIFO or a device would block), a UTF-8 byte-order mark is accepted, and nesting too deep
for the parser is a ``ConfigError`` like any other.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from firmware.schema import ConfigError, Section, parse_section

__all__ = ["ConfigError", "ChargerConfig", "load", "parse"]

CONNECTOR_TYPES = ("CCS2", "MCS")
CAN_INTERFACES = ("socketcan", "virtual")
# Sections whose owner parses them (the OCPP station, the simulator) or that later
# features will own; kept as raw tables here.
OWNED_SECTIONS = ("ocpp", "simulator", "tariff", "console", "screen", "meter", "payment",
                  "card_reader", "iso15118")
MAX_FILE_BYTES = 1 << 20  # a config file is a few kB; a bigger one is not a config file

# Cable ratings by connector (charging-facts.md): CCS2 DC to 500 A / 1000 V
# (IEC 62196-3); MCS to 3000 A / 1250 V (IEC 63379, SAE J3271). The lowest voltage is
# the modules' usual floor, 150 V (approx.): no CCS or MCS vehicle charges below it.
CABLE_MAX_A = {"CCS2": 500.0, "MCS": 3000.0}
CABLE_MAX_V = {"CCS2": 1000.0, "MCS": 1250.0}
CABLE_MIN_V = 150.0
# The IO board's limits for the host heartbeat timeout (hal/mcu/board.py refuses a HELLO
# outside them): 1 s at most, well inside the host-held deadlines it stands in for (5 s
# emergency shutdown on PE loss, IEC 61851-23; 6 s power off on PWM loss, IEC 61851-1);
# at least two of the host's 100 ms heartbeats.
HEARTBEAT_MIN_MS, HEARTBEAT_MAX_MS = 200, 1000
UART_BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1000000)
CAN_BITRATES = (125000, 250000, 500000, 1000000)  # ISO 11898-2 classic CAN rates in use

# OCPP 2.0.1 identifierString (Part 2, 2.1 primitive datatypes) without ':' (the id is
# the HTTP Basic user-id, RFC 7617 forbids ':' in it), at most 48 characters
# (SecurityCtrlr.Identity is string[48]); the id goes into the CSMS URL and file paths.
IDENTITY_PATTERN = r"[A-Za-z0-9*\-_=+|@][A-Za-z0-9*\-_=+|@.]{0,47}"
NAME_PATTERN = r"\S(.*\S)?"  # no leading or trailing white space, no empty name
WIRE_NAME_PATTERN = r"[A-Za-z0-9_.\-]+"  # a CAN channel, a link name: no spaces, no '/'


def _matching(pattern: str, says: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value, re.S):
            raise ValueError(says)
        return value
    return check


_NAME_SAYS = "must not be empty nor start or end with white space"
_name = AfterValidator(_matching(NAME_PATTERN, _NAME_SAYS))
Name20 = Annotated[str, Field(min_length=1, max_length=20), _name]
Name25 = Annotated[str, Field(min_length=1, max_length=25), _name]
Name40 = Annotated[str, Field(min_length=1, max_length=40), _name]
Name50 = Annotated[str, Field(min_length=1, max_length=50), _name]
Identity48 = Annotated[str, Field(min_length=1, max_length=48), AfterValidator(_matching(
    IDENTITY_PATTERN, "1..48 characters of A-Z a-z 0-9 * - _ = + | @ . (OCPP "
    "identifierString; no ':', it is the Basic-auth user id), not starting with '.'"))]
WireName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_matching(
    WIRE_NAME_PATTERN, "only letters, digits, '_', '.', '-'"))]


# --- the sections, as the file spells them ---------------------------------------------

class _Charger(Section):
    id: Identity48
    # BootNotificationRequest.chargingStation field sizes (OCPP 2.0.1 Part 2, 2.1)
    vendor: Name50
    model: Name20
    serial: Name25
    firmware_version: Name50 = "0.1.0"


class _Connector(Section):
    evse_id: Annotated[int, Field(ge=1, le=255)]  # one byte in the IO board's frames
    type: Literal["CCS2", "MCS"]
    cable_max_current_a: Annotated[float, Field(gt=0, le=3000)]
    cable_max_voltage_v: Annotated[float, Field(ge=CABLE_MIN_V, le=1250)]
    output: Annotated[int, Field(ge=1, le=255)]

    @model_validator(mode="after")
    def _rated_for_its_type(self) -> _Connector:
        if self.cable_max_current_a > CABLE_MAX_A[self.type]:
            raise ValueError(f"cable_max_current_a: {self.cable_max_current_a:g} A is above "
                             f"what a {self.type} cable is rated for "
                             f"({CABLE_MAX_A[self.type]:g} A)")
        if self.cable_max_voltage_v > CABLE_MAX_V[self.type]:
            raise ValueError(f"cable_max_voltage_v: {self.cable_max_voltage_v:g} V is above "
                             f"what a {self.type} cable is rated for "
                             f"({CABLE_MAX_V[self.type]:g} V)")
        return self


class _PowerStage(Section):
    driver: Name40  # checked against the registry
    can_interface: Literal["socketcan", "virtual"]
    can_channel: WireName
    bitrate: Literal[125000, 250000, 500000, 1000000] = 125000
    # One bus holds at most 63 modules: the InfyPower address field is 0..62 (0x3F is
    # the broadcast address).
    module_count: Annotated[int, Field(ge=1, le=63)]
    module_rating_kw: Annotated[float, Field(gt=0, le=100)]  # typical 30-40 kW (approx.)
    module_min_voltage_v: Annotated[float, Field(ge=50, le=1250)] = 150.0
    module_max_voltage_v: Annotated[float, Field(ge=50, le=1250)] = 1000.0  # MCS 1250 V
    module_max_current_a: Annotated[float, Field(gt=0, le=500)]
    outputs: Annotated[list[Annotated[int, Field(ge=1, le=255)]],
                       Field(min_length=1, max_length=63)]
    module_addresses: list[Annotated[int, Field(ge=0, le=62)]] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> _PowerStage:
        if len(set(self.outputs)) != len(self.outputs):
            raise ValueError("outputs: each output once (distinct numbers)")
        if self.module_max_voltage_v <= self.module_min_voltage_v:
            raise ValueError("module_max_voltage_v: must exceed module_min_voltage_v")
        if self.module_addresses is not None:
            if len(self.module_addresses) != self.module_count:
                raise ValueError(f"module_addresses: must list {self.module_count} "
                                 "addresses 0..62 (module_count)")
            if len(set(self.module_addresses)) != self.module_count:
                raise ValueError("module_addresses: addresses must be distinct")
        return self


class _IoBoard(Section):
    driver: Name40
    port: Annotated[str, Field(max_length=255)] = ""
    baudrate: Literal[UART_BAUDS] = 115200  # type: ignore[valid-type]
    heartbeat_timeout_ms: Annotated[int, Field(ge=HEARTBEAT_MIN_MS,
                                               le=HEARTBEAT_MAX_MS)] = 500

    @model_validator(mode="after")
    def _port_for_serial(self) -> _IoBoard:
        if self.driver == "serial" and not self.port:
            raise ValueError("port: is required when driver = 'serial'")
        return self


class _VehicleLink(Section):
    driver: Name40
    channel: WireName = "vehicle"


class _Control(Section):
    # 5..100 Hz: slower and the IO board's heartbeat (sent from the tick) comes late;
    # faster buys nothing (telemetry is 1 Hz, the fast path does not wait for a tick).
    loop_hz: Annotated[float, Field(ge=5, le=100)] = 10.0
    # 25 A/s is the common default slew (charging-facts.md); up to 500 A/s, a full CCS
    # cable's current in one second (approx.).
    ramp_a_per_s: Annotated[float, Field(gt=0, le=500)] = 25.0
    # IMD self test + measurement (approx.); the whole CableCheck phase must stay below
    # 25 s (some EVs give up at 30 s; charging-facts.md).
    cable_check_settle_s: Annotated[float, Field(gt=0, le=20)] = 2.0


class _File(Section):
    """The charger's own sections; OWNED_SECTIONS are split off before (raw tables)."""

    charger: dict[str, Any]
    connector: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=64)]
    power_stage: dict[str, Any]
    io_board: dict[str, Any]
    vehicle_link: dict[str, Any]
    control: dict[str, Any] = {}


# --- what the rest of the product reads --------------------------------------------------

@dataclass(frozen=True, slots=True)
class Identity:
    charge_point_id: str
    vendor: str
    model: str
    serial: str
    firmware_version: str = "0.1.0"


@dataclass(frozen=True, slots=True)
class ConnectorConfig:
    evse_id: int
    connector_type: str
    cable_max_current_a: float
    cable_max_voltage_v: float
    output: int


@dataclass(frozen=True, slots=True)
class PowerStageConfig:
    driver: str
    can_interface: str
    can_channel: str
    bitrate: int
    module_count: int
    module_rating_kw: float
    module_min_voltage_v: float
    module_max_voltage_v: float
    module_max_current_a: float
    outputs: tuple[int, ...]
    module_addresses: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class IoBoardConfig:
    driver: str
    port: str
    baudrate: int
    heartbeat_timeout_ms: int


@dataclass(frozen=True, slots=True)
class VehicleLinkConfig:
    driver: str
    channel: str  # the virtual driver's name prefix (a vehicle connects to CHANNEL/EVSE)


@dataclass(frozen=True, slots=True)
class ControlConfig:
    loop_hz: float = 10.0
    ramp_a_per_s: float = 25.0  # common default slew (charging-facts.md), configurable
    cable_check_settle_s: float = 2.0  # IMD self test + measurement (approx.)


@dataclass(frozen=True, slots=True)
class ChargerConfig:
    identity: Identity
    connectors: tuple[ConnectorConfig, ...]
    power_stage: PowerStageConfig
    io_board: IoBoardConfig
    vehicle_link: VehicleLinkConfig
    control: ControlConfig
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)


def parse(data: dict[str, Any]) -> ChargerConfig:
    if not isinstance(data, dict):
        raise ConfigError("(file)", "must be a table")
    extra: dict[str, dict[str, Any]] = {}
    for name in OWNED_SECTIONS:
        if name in data:
            if not isinstance(data[name], dict):
                raise ConfigError(name, "must be a table")
            extra[name] = data[name]
    top = parse_section(_File, {k: v for k, v in data.items() if k not in extra}, "")
    c = parse_section(_Charger, top.charger, "charger")
    identity = Identity(c.id, c.vendor, c.model, c.serial, c.firmware_version)
    raw = [parse_section(_Connector, t, f"connector[{i}]")
           for i, t in enumerate(top.connector)]
    ps = parse_section(_PowerStage, top.power_stage, "power_stage")
    stage = PowerStageConfig(
        ps.driver, ps.can_interface, ps.can_channel, ps.bitrate, ps.module_count,
        ps.module_rating_kw, ps.module_min_voltage_v, ps.module_max_voltage_v,
        ps.module_max_current_a, tuple(ps.outputs),
        tuple(ps.module_addresses if ps.module_addresses is not None
              else range(ps.module_count)))
    connectors: list[ConnectorConfig] = []
    for i, conn in enumerate(raw):
        if conn.evse_id in {c.evse_id for c in connectors}:
            raise ConfigError(f"connector[{i}].evse_id", f"{conn.evse_id} is used twice")
        if conn.output not in stage.outputs:
            raise ConfigError(f"connector[{i}].output",
                              f"{conn.output} is not in power_stage.outputs {stage.outputs}")
        if conn.output in {c.output for c in connectors}:
            raise ConfigError(f"connector[{i}].output",
                              f"output {conn.output} already feeds another connector")
        connectors.append(ConnectorConfig(conn.evse_id, conn.type, conn.cable_max_current_a,
                                          conn.cable_max_voltage_v, conn.output))
    b = parse_section(_IoBoard, top.io_board, "io_board")
    board = IoBoardConfig(b.driver, b.port, b.baudrate, b.heartbeat_timeout_ms)
    v = parse_section(_VehicleLink, top.vehicle_link, "vehicle_link")
    k = parse_section(_Control, top.control, "control")
    control = ControlConfig(k.loop_hz, k.ramp_a_per_s, k.cable_check_settle_s)
    period_ms = 1000.0 / control.loop_hz
    if period_ms > board.heartbeat_timeout_ms / 2:  # the heartbeat goes out from the tick
        raise ConfigError("control.loop_hz", f"a tick every {period_ms:g} ms cannot keep "
                          f"the IO board's {board.heartbeat_timeout_ms} ms heartbeat "
                          "(io_board.heartbeat_timeout_ms); at least twice per timeout")
    return ChargerConfig(identity, tuple(connectors), stage, board,
                         VehicleLinkConfig(v.driver, v.channel), control, extra)


def load(path: str | Path) -> ChargerConfig:
    return parse(read_toml(path))


def read_toml(path: str | Path) -> dict[str, Any]:
    """The file's TOML as a table; every way it can be unreadable is a ConfigError."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not wait; checked regular after.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError("(file)", f"cannot read {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("(file)", f"{path} is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise ConfigError("(file)", f"{path} is {info.st_size} bytes; a config file "
                              f"is at most {MAX_FILE_BYTES}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError("(file)", f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if raw.startswith(b"\xef\xbb\xbf"):  # a byte-order mark some editors write
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")  # TOML is UTF-8 text (toml.io, v1.0.0 "Spec")
    except UnicodeDecodeError as exc:
        raise ConfigError("(syntax)", f"{path} is not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(syntax)", f"{path} is not valid TOML: {exc}") from None
    except (RecursionError, MemoryError):
        raise ConfigError("(syntax)", f"{path} nests tables or arrays too deeply") from None
