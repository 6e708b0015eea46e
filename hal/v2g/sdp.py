"""SECC Discovery Protocol (ISO 15118-2 clause 7.10.1; DIN SPEC 70121 clause 8.7.2).

The EV multicasts an SDP request to [ff02::1]:15118 (hop limit 1) from an ephemeral port;
the SECC answers by unicast to that source: its link-local IPv6 address, the TCP port,
whether TLS is used, and the transport (TCP). The pure part (``answer``) decides; the
``SdpServer`` shell is one UDP socket per connector interface.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from hal.v2g import v2gtp

SDP_PORT = 15118  # ISO 15118-2 Table 15 (V2G_UDP_SDP_SERVER)
SECURITY_TLS = 0x00
SECURITY_NONE = 0x10
TRANSPORT_TCP = 0x00
TRANSPORT_UDP = 0x10
# ISO 15118-2 clause 7.10.1: the SECC's TCP port comes from the dynamic range.
TCP_PORT_MIN, TCP_PORT_MAX = 49152, 65535


@dataclass(frozen=True, slots=True)
class SdpRequest:
    security: int
    transport: int


@dataclass(frozen=True, slots=True)
class SdpResponse:
    address: bytes  # 16 bytes, the SECC's IPv6 address
    port: int
    security: int
    transport: int = TRANSPORT_TCP

    def pack(self) -> bytes:
        body = self.address + struct.pack(">HBB", self.port, self.security, self.transport)
        return v2gtp.pack(v2gtp.PayloadType.SDP_RESPONSE, body)


def parse_request(datagram: bytes) -> SdpRequest:
    header, payload = v2gtp.parse(datagram)
    if header.payload_type != v2gtp.PayloadType.SDP_REQUEST:
        raise v2gtp.FramingError(f"payload type {header.payload_type:#06x} is not an SDP request")
    if len(payload) != 2:
        raise v2gtp.FramingError(f"SDP request of {len(payload)} bytes, expected 2")
    security, transport = payload
    if security not in (SECURITY_TLS, SECURITY_NONE) or transport not in (TRANSPORT_TCP,
                                                                          TRANSPORT_UDP):
        raise v2gtp.FramingError(f"SDP request with security {security:#04x}, "
                                 f"transport {transport:#04x}")
    return SdpRequest(security, transport)


def parse_response(datagram: bytes) -> SdpResponse:
    header, payload = v2gtp.parse(datagram)
    if header.payload_type != v2gtp.PayloadType.SDP_RESPONSE or len(payload) != 20:
        raise v2gtp.FramingError("not an SDP response of 20 bytes")
    port, security, transport = struct.unpack(">HBB", payload[16:])
    return SdpResponse(payload[:16], port, security, transport)


def answer(request: SdpRequest, address: bytes, port: int, tls: bool,
           tls_required: bool) -> SdpResponse | None:
    """Our answer, or None for a request we do not serve (UDP transport: not for DC).

    The security byte says what we offer: an EV asking for TLS gets TLS if we have a
    certificate; an EV asking for none gets none unless our config requires TLS
    (ISO 15118-20 for real vehicles), in which case it gets TLS and may give up."""
    if request.transport != TRANSPORT_TCP:
        return None
    use_tls = tls and (request.security == SECURITY_TLS or tls_required)
    return SdpResponse(address, port, SECURITY_TLS if use_tls else SECURITY_NONE)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: SdpServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.server.received(data, addr)


class SdpServer:
    """One connector's SDP responder, bound to its interface (SO_BINDTODEVICE where the
    interface is named, so several connectors answer only on their own cable)."""

    def __init__(self, interface: str, address: str, scope_id: int,
                 respond: Callable[[SdpRequest], SdpResponse | None]) -> None:
        self.interface = interface
        self.address = address
        self.scope_id = scope_id
        self.respond = respond
        self.requests = 0
        self.bad_datagrams = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self, port: int = SDP_PORT) -> None:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.interface and self.interface != "lo":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE,
                                self.interface.encode())
            if self.scope_id:
                # Join ff02::1 explicitly on this interface (all-nodes is joined by the
                # kernel already; joining again is harmless and makes intent explicit).
                mreq = socket.inet_pton(socket.AF_INET6, "ff02::1") + struct.pack(
                    "@I", self.scope_id)
                try:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
                except OSError:
                    pass
            sock.bind(("::", port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self._transport = transport

    @property
    def port(self) -> int:
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    def received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        try:
            request = parse_request(data)
        except v2gtp.FramingError:
            self.bad_datagrams += 1  # not ours to answer (ISO 15118-2 7.8.3: ignore)
            return
        self.requests += 1
        response = self.respond(request)
        if response is not None and self._transport is not None:
            self._transport.sendto(response.pack(), addr)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
