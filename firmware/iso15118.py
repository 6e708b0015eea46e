"""The ``[iso15118]`` config section and the ``iso15118`` vehicle-link driver built from it.

    [vehicle_link]
    driver = "iso15118"

    [iso15118]
    protocols = ["iso20_dc", "iso2", "din"]    # our priority in supportedAppProtocol
    evse_id = "DE*CBY*E0001"                   # ISO 15118-2 EVSEID (7 to 37 characters)
    tls = "off"                                # off | offer | required (-20 with real EVs)
    certificate = "/etc/chargebay/secc.pem"    # PEM: SECC certificate + chain (tls != off)
    private_key = "/etc/chargebay/secc.key"
    ev_roots = ""                              # PEM: V2G roots for EV certificates (optional)

    [[iso15118.connector]]                     # one per connector: its PLC modem's interface
    evse_id = 1
    interface = "plc1"
    modem_interface = "plc1"                   # SLAC on this modem (usually = interface)
    tcp_port = 0                               # 0: any free port of 49152-65535

``sdp_port`` and ``address`` exist for the simulator on loopback (``::1``, no multicast).
Without ``modem_interface`` no SLAC runs on that connector (loopback demos, a modem whose
own firmware matches): SDP and TCP are served at once.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from pydantic import Field, field_validator

from firmware.config import ChargerConfig, ConfigError
from firmware.schema import Section, parse_section
from hal.clock import Clock
from hal.v2g import exi, sdp
from hal.v2g.handshake import Protocol
from hal.v2g.secc import SeccSettings
from hal.v2g.server import AddressMissing, Codec, Endpoint, Iso15118Server, OnLink, link_local
from hal.v2g.slac_link import SlacLinks
from hal.v2g.slac_port import PortError
from hal.v2g.tls import TlsConfigError, TlsSettings, server_context

ProtocolName = Literal["din", "iso2", "iso20_dc"]


class ConnectorLink(Section):
    evse_id: int = Field(ge=1, le=64)
    interface: str = Field(min_length=1, max_length=15)  # IFNAMSIZ - 1 (Linux)
    # ISO 15118-2 clause 7.10.1: the SECC's TCP port is from the dynamic range; 0 = any.
    tcp_port: int = Field(default=0, ge=0, le=sdp.TCP_PORT_MAX)
    sdp_port: int = Field(default=sdp.SDP_PORT, ge=0, le=65535)  # 15118 on a cable
    address: str = ""  # "" = the interface's link-local address
    # The HomePlug Green PHY modem's interface for SLAC (ISO 15118-3); "" = no SLAC.
    modem_interface: str = Field(default="", max_length=15)  # IFNAMSIZ - 1 (Linux)
    # Where CM_SET_KEY goes: the modem's local management address (QCA700x's default;
    # other makers have their own), so the key never leaves for the powerline.
    modem_address: str = "00:b0:52:00:00:01"

    @field_validator("modem_address")
    @classmethod
    def _mac(cls, text: str) -> str:
        parts = text.split(":")
        if len(parts) != 6 or not all(len(x) == 2 and all(c in "0123456789abcdefABCDEF"
                                                         for c in x) for x in parts):
            raise ValueError(f"{text!r} is not a MAC address (six hex octets, e.g. "
                             "00:b0:52:00:00:01)")
        return text.lower()

    @field_validator("modem_interface")
    @classmethod
    def _interface_name(cls, name: str) -> str:
        # Linux interface names: no "/", no whitespace, not "." or ".." (dev_valid_name).
        if name and (name in (".", "..") or any(c == "/" or c.isspace() for c in name)):
            raise ValueError(f"{name!r} is not a network interface name")
        if name == "lo":
            raise ValueError("loopback has no PLC modem (leave modem_interface out)")
        return name

    @field_validator("tcp_port")
    @classmethod
    def _dynamic(cls, port: int) -> int:
        if port and port < sdp.TCP_PORT_MIN:
            raise ValueError(f"must be 0 or in {sdp.TCP_PORT_MIN}-{sdp.TCP_PORT_MAX} "
                             "(ISO 15118-2 7.10.1)")
        return port


class Iso15118Section(Section):
    protocols: list[ProtocolName] = Field(default=["iso20_dc", "iso2", "din"],
                                                min_length=1, max_length=3)
    # ISO 15118-2 evseIDType: a string of 7 to 37 characters.
    evse_id: str = Field(default="ZZ00000", min_length=7, max_length=37)
    tls: Literal["off", "offer", "required"] = "off"
    certificate: str = ""
    private_key: str = ""
    ev_roots: str = ""
    min_voltage_v: float = Field(default=150.0, ge=0, le=1500)  # IEC 61851-23 DC range
    connector: list[ConnectorLink] = Field(min_length=1)

    @field_validator("protocols")
    @classmethod
    def _unique(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("lists a protocol twice")
        return names


def section(config: ChargerConfig) -> Iso15118Section:
    data = config.extra.get("iso15118")
    if data is None:
        raise ConfigError("iso15118", "is required with vehicle_link.driver = \"iso15118\"")
    parsed = parse_section(Iso15118Section, data, "iso15118")
    known = {c.evse_id for c in config.connectors}
    for i, c in enumerate(parsed.connector):
        if c.evse_id not in known:
            raise ConfigError(f"iso15118.connector[{i}].evse_id",
                              f"{c.evse_id} is not a [[connector]] evse_id")
    modems = [c.modem_interface for c in parsed.connector if c.modem_interface]
    for i, c in enumerate(parsed.connector):
        if c.modem_interface and modems.count(c.modem_interface) > 1:
            raise ConfigError(f"iso15118.connector[{i}].modem_interface",
                              f"{c.modem_interface} is named twice: one modem per connector "
                              "(ISO 15118-3: each cable matches its own EV)")
    if parsed.tls != "off" and not (parsed.certificate and parsed.private_key):
        raise ConfigError("iso15118.certificate", f"tls = \"{parsed.tls}\" needs certificate "
                          "and private_key")
    return parsed


def build(config: ChargerConfig, clock: Clock,
          missing: type[Exception]) -> Iso15118Server:
    """The driver (not started). ``missing(key, device, reason)``: the HardwareMissing of
    firmware/drivers.py, raised for an interface that is not there."""
    s = section(config)
    tls = None
    if s.tls != "off":
        try:
            tls = server_context(TlsSettings(s.certificate, s.private_key, s.ev_roots))
        except TlsConfigError as exc:
            raise ConfigError(f"iso15118.{exc.key}", exc.reason) from None
    endpoints = tuple(Endpoint(c.evse_id, c.interface, c.tcp_port, c.sdp_port, c.address,
                               tls, s.tls == "required") for c in s.connector)
    settings = SeccSettings(priority=tuple(Protocol(p) for p in s.protocols),
                            evse_id=s.evse_id, min_voltage_v=s.min_voltage_v)
    modems = {c.evse_id: (i, c.modem_interface, bytes.fromhex(c.modem_address.replace(":", "")))
              for i, c in enumerate(s.connector) if c.modem_interface}
    return Iso15118Links(endpoints, settings, clock, exi, missing, modems)


class Iso15118Links(Iso15118Server):
    """The server, with a missing interface reported as the registry's HardwareMissing,
    and SLAC on each connector that names its modem (hal/v2g/slac_link.py)."""

    def __init__(self, endpoints: tuple[Endpoint, ...], settings: SeccSettings, clock: Clock,
                 codec: Codec, missing: type[Exception],
                 modems: dict[int, tuple[int, str, bytes]] | None = None) -> None:
        """``modems``: connector -> (its index in [[iso15118.connector]], modem
        interface, modem management address)."""
        super().__init__(endpoints, settings, clock, codec)
        self._missing = missing
        modems = modems or {}
        self._modem_keys = {c: (i, name) for c, (i, name, _) in modems.items()}
        self.slac = SlacLinks({c: name for c, (_, name, _) in modems.items()}, clock,
                              modem_macs={c: mac for c, (_, _, mac) in modems.items()})
        self.admit = self.slac.admit

    def follow_pilot(self, evse_id: int, state: str, duty_percent: float, now: float) -> None:
        self.slac.follow_pilot(evse_id, state, duty_percent)

    @property
    def on_data_link(self) -> Callable[[int, bool], None]:
        return self.slac.on_data_link

    @on_data_link.setter
    def on_data_link(self, tell: Callable[[int, bool], None]) -> None:
        self.slac.on_data_link = tell

    def _open_modems(self, on_link: OnLink) -> None:
        try:
            self.slac.open(on_link)
        except PortError as exc:
            i = next(i for i, name in self._modem_keys.values() if name == exc.interface)
            raise self._missing(f"iso15118.connector[{i}].modem_interface",
                                f"PLC modem interface {exc.interface}", exc.reason) from None

    async def close(self) -> None:
        self.slac.close()
        await super().close()

    async def start(self, on_link: OnLink) -> None:
        self._open_modems(on_link)  # first: a modem that is not there stops the start
        try:
            await self._start_links(on_link)
        except BaseException:
            self.slac.close()
            raise

    async def _start_links(self, on_link: OnLink) -> None:
        for i, ep in enumerate(self.endpoints):
            if not ep.address:
                try:
                    link_local(ep.interface)
                except AddressMissing as exc:
                    raise self._missing(f"iso15118.connector[{i}].interface",
                                        f"network interface {ep.interface}", str(exc)) from None
        self.endpoints = tuple(replace(ep, tcp_port=ep.tcp_port or _free_port(ep.address))
                               for ep in self.endpoints)
        await super().start(on_link)


def _free_port(address: str) -> int:
    address = address or "::"
    """A TCP port of the dynamic range (ISO 15118-2 7.10.1) that is free now; the kernel's
    own choice (port 0) may fall below 49152."""
    for _ in range(64):
        port = sdp.TCP_PORT_MIN + int.from_bytes(os.urandom(2)) % (
            sdp.TCP_PORT_MAX - sdp.TCP_PORT_MIN + 1)
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("::", port))
            except OSError:
                continue
        return port
    return 0
