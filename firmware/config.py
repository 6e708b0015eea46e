"""The charger's configuration: one TOML file, validated into frozen dataclasses.

A bad file never half-loads: the first problem raises ``ConfigError`` naming the key
(``connector[1].cable_max_current_a``) and the reason. Sections owned by other parts
(ocpp, simulator, and those later features add: tariff, console, screen, ...) are kept
raw here and checked by their owner; ``firmware.charger.check`` runs every check, driver
names included, so ``chargebay check-config`` names a bad key before anything starts.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONNECTOR_TYPES = ("CCS2", "MCS")
CAN_INTERFACES = ("socketcan", "virtual")
# Sections whose owner parses them (the OCPP station, the simulator) or that later
# features will own; kept as raw tables here.
OWNED_SECTIONS = ("ocpp", "simulator", "tariff", "console", "screen", "meter", "payment",
                  "card_reader", "iso15118")


class ConfigError(ValueError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"config key '{key}': {reason}")
        self.key = key
        self.reason = reason


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


class _Table:
    """Reads typed keys out of one TOML table, naming the full key on every error."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(path, "must be a table")
        self.data: dict[str, Any] = data
        self.path = path
        self.used: set[str] = set()

    def _key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, kind: type, default: Any = ..., check: Callable[[Any], str | None]
            | None = None) -> Any:
        self.used.add(name)
        key = self._key(name)
        if name not in self.data:
            if default is ...:
                raise ConfigError(key, "is required")
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(key, f"must be {kind.__name__}, got {type(value).__name__}")
        if check is not None and (problem := check(value)) is not None:
            raise ConfigError(key, problem)
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(self._key(unknown[0]), "unknown key (misspelt?)")


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _nonempty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _identity(t: _Table) -> Identity:
    ident = Identity(
        charge_point_id=t.get("id", str, check=_nonempty),
        vendor=t.get("vendor", str, check=_nonempty),
        model=t.get("model", str, check=_nonempty),
        serial=t.get("serial", str, check=_nonempty),
        firmware_version=t.get("firmware_version", str, "0.1.0"),
    )
    t.finish()
    return ident


def _connector(t: _Table) -> ConnectorConfig:
    conn = ConnectorConfig(
        evse_id=t.get("evse_id", int, check=_positive),
        connector_type=t.get("type", str, check=_one_of(CONNECTOR_TYPES)),
        cable_max_current_a=t.get("cable_max_current_a", float, check=_positive),
        cable_max_voltage_v=t.get("cable_max_voltage_v", float, check=_positive),
        output=t.get("output", int, check=_positive),
    )
    t.finish()
    return conn


def _power_stage(t: _Table) -> PowerStageConfig:
    # One bus holds at most 63 modules: the InfyPower address field is 0..62 (0x3F is
    # the broadcast address).
    count = t.get("module_count", int, check=lambda v: None if 0 < v <= 0x3F
                  else "must be 1..63 (module addresses are 0..62)")
    outputs_raw = t.get("outputs", list, check=lambda v: None if v else "must not be empty")
    if not all(isinstance(o, int) and o > 0 for o in outputs_raw):
        raise ConfigError(t._key("outputs"), "must be a list of positive integers")
    addresses_raw = t.get("module_addresses", list, list(range(count)))
    if len(addresses_raw) != count or not all(
            isinstance(a, int) and 0 <= a < 0x3F for a in addresses_raw):
        raise ConfigError(t._key("module_addresses"),
                          f"must list {count} distinct addresses 0..62")
    if len(set(addresses_raw)) != count:
        raise ConfigError(t._key("module_addresses"), "addresses must be distinct")
    min_v = t.get("module_min_voltage_v", float, 150.0, _positive)
    max_v = t.get("module_max_voltage_v", float, 1000.0, _positive)
    if max_v <= min_v:
        raise ConfigError(t._key("module_max_voltage_v"), "must exceed module_min_voltage_v")
    stage = PowerStageConfig(
        driver=t.get("driver", str, check=_nonempty),  # checked against the registry
        can_interface=t.get("can_interface", str, check=_one_of(CAN_INTERFACES)),
        can_channel=t.get("can_channel", str, check=_nonempty),
        bitrate=t.get("bitrate", int, 125000, _positive),
        module_count=count,
        module_rating_kw=t.get("module_rating_kw", float, check=_positive),
        module_min_voltage_v=min_v,
        module_max_voltage_v=max_v,
        module_max_current_a=t.get("module_max_current_a", float, check=_positive),
        outputs=tuple(outputs_raw),
        module_addresses=tuple(addresses_raw),
    )
    t.finish()
    return stage


def _io_board(t: _Table) -> IoBoardConfig:
    board = IoBoardConfig(
        driver=t.get("driver", str, check=_nonempty),  # checked against the registry
        port=t.get("port", str, ""),
        baudrate=t.get("baudrate", int, 115200, _positive),
        heartbeat_timeout_ms=t.get("heartbeat_timeout_ms", int, 500, _positive),
    )
    if board.driver == "serial" and not board.port:
        raise ConfigError(t._key("port"), "is required when driver = 'serial'")
    t.finish()
    return board


def _control(t: _Table) -> ControlConfig:
    control = ControlConfig(
        loop_hz=t.get("loop_hz", float, 10.0, _positive),
        ramp_a_per_s=t.get("ramp_a_per_s", float, 25.0, _positive),
        cable_check_settle_s=t.get("cable_check_settle_s", float, 2.0, _positive),
    )
    t.finish()
    return control


def parse(data: dict[str, Any]) -> ChargerConfig:
    top = _Table(data, "")
    identity = _identity(_Table(top.get("charger", dict), "charger"))
    raw_connectors = top.get("connector", list, check=lambda v: None if v else "needs one")
    connectors = tuple(_connector(_Table(c, f"connector[{i}]"))
                       for i, c in enumerate(raw_connectors))
    stage = _power_stage(_Table(top.get("power_stage", dict), "power_stage"))
    seen: set[int] = set()
    for i, conn in enumerate(connectors):
        if conn.evse_id in seen:
            raise ConfigError(f"connector[{i}].evse_id", f"{conn.evse_id} is used twice")
        seen.add(conn.evse_id)
        if conn.output not in stage.outputs:
            raise ConfigError(f"connector[{i}].output",
                              f"{conn.output} is not in power_stage.outputs {stage.outputs}")
    io_board = _io_board(_Table(top.get("io_board", dict), "io_board"))
    link_table = _Table(top.get("vehicle_link", dict), "vehicle_link")
    link = VehicleLinkConfig(driver=link_table.get("driver", str, check=_nonempty),
                             channel=link_table.get("channel", str, "vehicle", _nonempty))
    link_table.finish()
    control = _control(_Table(top.get("control", dict, {}), "control"))
    extra = {name: top.get(name, dict) for name in OWNED_SECTIONS if name in data}
    top.finish()
    return ChargerConfig(identity, connectors, stage, io_board, link, control, extra)


def load(path: str | Path) -> ChargerConfig:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError("(file)", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(syntax)", f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8 text (toml.io, v1.0.0 "Spec")
        raise ConfigError("(syntax)", f"{path} is not UTF-8 text (byte {exc.start})") from None
    return parse(data)
