"""The ``iso15118`` vehicle-link driver: the thin asyncio shell around the SECC machine.

Per connector: an SDP responder on UDP 15118 of the connector's interface, and a TCP
server bound to that interface's link-local address (with its scope id). Per accepted
connection: a ``Secc`` machine, and a ``WireLink`` handed to the controller as its
VehicleLink. The shell only moves bytes: V2GTP header, EXI decode with the schema the
machine names, the machine's step, EXI encode, one write (TCP_NODELAY). The answer to a
charging request is written inside ``answer`` itself, so nothing else runs between the
core's decision and the bytes leaving.

The codec is passed in (``Codec``: ``encode(schema, doc)`` / ``decode(schema, data)``);
the driver uses ``hal.v2g.exi``. SLAC (hal/v2g/slac_link.py) runs before this on a real
cable and decides ``admit``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hal import vehicle_link as vl
from hal.clock import Clock
from hal.v2g import sdp, v2gtp
from hal.v2g.secc import (
    CURRENT_DEMAND_PERFORMANCE_S,
    MSG_PERFORMANCE_S,
    Ask,
    Close,
    Reply,
    Secc,
    SeccSettings,
    SeccStats,
)

OnLink = Callable[[int, vl.VehicleLink], None]


class Codec(Protocol):
    def encode(self, schema: str, document: dict[str, Any]) -> bytes: ...
    def decode(self, schema: str, data: bytes) -> dict[str, Any]: ...


class AddressMissing(OSError):
    pass


def link_local(interface: str) -> tuple[str, int]:
    """(link-local IPv6 address, scope id) of ``interface``; ("::1", 0) for ``lo``."""
    if interface == "lo":
        return "::1", 0
    try:
        index = socket.if_nametoindex(interface)
    except OSError:
        raise AddressMissing(f"no network interface {interface}") from None
    try:
        with open("/proc/net/if_inet6") as fh:
            for line in fh:
                hexaddr, idx, _, scope, _, name = line.split()[:6]
                if name == interface and int(scope, 16) == 0x20:  # link scope
                    addr = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(hexaddr))
                    return addr, index
    except OSError as exc:
        raise AddressMissing(f"cannot read IPv6 addresses: {exc.strerror}") from None
    raise AddressMissing(f"interface {interface} has no link-local IPv6 address")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One connector's wire: its interface (one PLC modem per connector), TCP port."""

    connector: int
    interface: str
    tcp_port: int = 0  # 0: any free port of the dynamic range
    sdp_port: int = sdp.SDP_PORT
    address: str = ""  # "" = the interface's link-local address
    tls: ssl.SSLContext | None = None
    tls_required: bool = False


@dataclass
class LinkStats:
    answered: int = 0
    late: int = 0  # answers past the SECC's performance time (ISO 15118-2 Table 109)
    # (request, seconds from its last byte read to the response written), for make bench
    answer_times_s: list[tuple[str, float]] = field(default_factory=list)


class WireLink:
    """The controller's VehicleLink for one TCP connection."""

    def __init__(self, shell: _Connection) -> None:
        self._shell = shell
        self._queue: asyncio.Queue[vl.VehicleRequest] = asyncio.Queue()
        self._lost = False

    async def receive(self) -> vl.VehicleRequest:
        return await self._queue.get()

    def answer(self, response: vl.VehicleResponse) -> None:
        self._shell.answered(response)

    def put(self, req: vl.VehicleRequest) -> None:
        if not self._lost:
            self._queue.put_nowait(req)

    def lost(self, reason: str) -> None:
        if not self._lost:
            self._lost = True
            self._queue.put_nowait(vl.LinkLost(reason))


class _Connection:
    def __init__(self, server: Iso15118Server, endpoint: Endpoint,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.endpoint = endpoint
        self.reader = reader
        self.writer = writer
        self.secc = Secc(server.settings, os.urandom(8), server.clock.now())
        self.link = WireLink(self)
        self._answered = asyncio.Event()
        self._asked_at = 0.0
        self._close: str | None = None

    async def run(self) -> None:
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.on_link(self.endpoint.connector, self.link)
        reason = "connection closed by the EV"
        try:
            reason = await self._loop()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError) as exc:
            reason = f"connection lost: {type(exc).__name__}"
        except v2gtp.FramingError as exc:
            reason = f"bad V2GTP header: {exc}"
        finally:
            if self.secc.protocol is not None:
                self.server.sessions.append((self.endpoint.connector, self.secc.protocol.value))
            if len(self.server.records) < 1000:
                self.server.records.append(self.secc.stats)
            self.link.lost(reason)
            self.server.ended(self, reason)
            self.writer.close()

    async def _loop(self) -> str:
        clock, codec = self.server.clock, self.server.codec
        while True:
            wait = self.secc.deadline - clock.now()
            try:
                head = await clock.wait_for(self.reader.readexactly(v2gtp.HEADER_LEN),
                                            max(wait, 0.0))
            except TimeoutError:
                return "sequence timeout: no request from the EV"
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    return "connection closed by the EV"
                raise
            header = v2gtp.parse_header(head)
            payload = await self.reader.readexactly(header.length)
            self._asked_at = time.perf_counter()  # the request's last byte is in
            now = clock.now()
            schema = self.secc.schema_for(header.payload_type)
            if schema is None:
                return f"payload type {header.payload_type:#06x} not expected now"
            try:
                doc = codec.decode(schema, payload)
            except ValueError as exc:  # ExiError is a ValueError
                step = self.secc.on_undecodable(str(exc))
            else:
                step = self.secc.on_document(doc, now, time.time())
            if isinstance(step, Close):
                return step.reason
            if isinstance(step, Reply):
                self._send(step)
                if step.close is not None:
                    await self.writer.drain()
                    return step.close
                continue
            assert isinstance(step, Ask)
            self._answered.clear()
            self.link.put(step.request)
            await self._answered.wait()
            if self._close is not None:
                await self.writer.drain()
                return self._close

    def answered(self, response: vl.VehicleResponse) -> None:
        """The core's answer: encode and write now (the fast path), then read on."""
        if self.secc.pending is None:
            return  # the answer to LinkLost, or a duplicate: nothing to send
        reply = self.secc.on_answer(response, self.server.clock.now())
        self._send(reply)
        stats = self.server.stats
        spent = time.perf_counter() - self._asked_at
        stats.answered += 1
        if len(stats.answer_times_s) < 100_000:
            stats.answer_times_s.append((response.request, spent))
        # ISO 15118-2 Table 109 / DIN SPEC 70121 Table 75: V2G_SECC_Msg_Performance_Time.
        limit = (CURRENT_DEMAND_PERFORMANCE_S if response.request == "CurrentDemandReq"
                 else MSG_PERFORMANCE_S)
        if spent > limit:
            stats.late += 1
        self._close = reply.close
        self._answered.set()

    def _send(self, reply: Reply) -> None:
        payload = self.server.codec.encode(reply.schema, reply.document)
        self.writer.write(v2gtp.pack(reply.payload_type, payload))  # one write per message


class Iso15118Server:
    """The driver: implements VehicleLinks over SDP + TCP for every connector."""

    def __init__(self, endpoints: tuple[Endpoint, ...], settings: SeccSettings,
                 clock: Clock, codec: Codec) -> None:
        self.endpoints = endpoints
        self.settings = settings
        self.clock = clock
        self.codec = codec
        self.stats = LinkStats()
        self.on_link: OnLink = lambda c, link: None
        self.bound: dict[int, tuple[str, int, int]] = {}  # connector -> (addr, port, scope)
        self.sdp_servers: dict[int, sdp.SdpServer] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.ended_reasons: list[str] = []
        self.sessions: list[tuple[int, str]] = []  # (connector, protocol) per handshake
        self.records: list[SeccStats] = []  # each ended connection's machine statistics
        # Asked when an EV's SDP request or TCP connection arrives on a connector: SLAC
        # (hal/v2g/slac_link.py) admits only a matched EV; no modem: always admitted.
        self.admit: Callable[[int], bool] = lambda connector: True
        self.refused = 0  # SDP requests / connections refused by ``admit``

    async def start(self, on_link: OnLink) -> None:
        self.on_link = on_link
        try:
            for ep in self.endpoints:
                await self._start_endpoint(ep)
        except OSError:
            await self.close()
            raise

    async def _start_endpoint(self, ep: Endpoint) -> None:
        address, scope = (ep.address, 0) if ep.address else link_local(ep.interface)
        if ep.address and ep.interface != "lo" and address.lower().startswith("fe80"):
            scope = socket.if_nametoindex(ep.interface)
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, ep.tcp_port, 0, scope))
            sock.listen(4)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        port = sock.getsockname()[1]

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if not self.admit(ep.connector):
                self.refused += 1
                writer.close()
                return
            conn = _Connection(self, ep, reader, writer)
            self._connections.add(conn)
            await conn.run()

        server = await asyncio.start_server(accepted, sock=sock, ssl=ep.tls)
        self._servers.append(server)
        self.bound[ep.connector] = (address, port, scope)
        packed = socket.inet_pton(socket.AF_INET6, address)

        def respond(request: sdp.SdpRequest) -> sdp.SdpResponse | None:
            if not self.admit(ep.connector):
                self.refused += 1
                return None
            return sdp.answer(request, packed, port, ep.tls is not None, ep.tls_required)

        responder = sdp.SdpServer(ep.interface, address, scope, respond)
        await responder.start(ep.sdp_port)
        self.sdp_servers[ep.connector] = responder

    def ended(self, conn: _Connection, reason: str) -> None:
        self._connections.discard(conn)
        if len(self.ended_reasons) < 1000:
            self.ended_reasons.append(reason)

    async def close(self) -> None:
        for responder in self.sdp_servers.values():
            responder.close()
        self.sdp_servers.clear()
        for server in self._servers:
            server.close()
        for conn in list(self._connections):
            conn.writer.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
