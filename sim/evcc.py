"""The simulated truck's EVCC on the wire: SDP, TCP, supportedAppProtocol, then each
VehicleLink request as a DIN / ISO-2 / -20 document, EXI-encoded with the product's
codec, to the real SECC (hal/v2g/server.py).

``WireChannel`` offers the truck the same two calls as the in-process channel
(``request(req, timeout_s)``, ``close(reason)``) and raises the same errors
(``VehicleTimeout``, ``LinkClosed``), so sim/truck.py plays one session on either wire.
It connects on the first request (the EV starts talking once it sees 5 % PWM).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from dataclasses import replace
from typing import Any

from hal import vehicle_link as vl
from hal.v2g import classic, exi, handshake, iso20, iso20_ev, sdp, v2gtp
from hal.v2g.handshake import Protocol
from hal.v2g.server import Codec
from hal.v2g.v2gtp import PayloadType
from hal.vehicle_link_virtual import ChannelStats, LinkClosed, VehicleTimeout

SDP_RETRIES = 50  # approx.: an EV keeps asking about this long (50 x 250 ms)
SDP_TIMEOUT_S = 0.25


class WireChannel:
    def __init__(self, codec: Codec, sdp_target: tuple[str, int, int],
                 protocols: tuple[Protocol, ...] = (Protocol.DIN,), evccid: bytes = b"",
                 name: str = "", tls: ssl.SSLContext | None = None,
                 control_mode: str = "Scheduled") -> None:
        self.codec = codec
        self.sdp_target = sdp_target  # (address, port, scope id): ff02::1 on a cable
        self.protocols = protocols
        self.evccid = evccid or bytes(6)
        self.name = name
        self.tls = tls  # set: ask for TLS in SDP and speak it (the SECC's answer decides)
        self.stats = ChannelStats()
        self.protocol: Protocol | None = None
        self.session_id = bytes(1)
        self.soc = 0.0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._closed = False
        self._close_reason = ""
        self._lock = asyncio.Lock()
        self.secured = False
        self.choice = iso20_ev.Choice(prefer=control_mode)  # -20: the mode this truck wants

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        if self._writer is not None:
            self._writer.close()

    async def request(self, req: vl.VehicleRequest, timeout_s: float) -> vl.VehicleResponse:
        if isinstance(req, vl.LinkLost):
            raise TypeError("LinkLost is not a wire message; use close()")
        if self._closed:
            raise LinkClosed(self._close_reason)
        self.stats.requests += 1
        self.stats.trace.append(type(req).__name__)
        try:
            return await asyncio.wait_for(self._exchange(req), timeout_s)
        except TimeoutError:
            self.stats.timeouts += 1
            self.close("EV timeout")  # the EV ends the session on a timeout
            raise VehicleTimeout(
                f"{type(req).__name__} not answered within {timeout_s * 1000:.0f} ms") from None
        except (ConnectionError, asyncio.IncompleteReadError, OSError, ValueError) as exc:
            reason = self._close_reason or f"{type(exc).__name__}: {exc}"
            self.close(reason)
            raise LinkClosed(reason) from None

    # --- inside ---------------------------------------------------------------------------

    async def _exchange(self, req: vl.VehicleRequest) -> vl.VehicleResponse:
        async with self._lock:
            if self._writer is None:
                await self._connect()
            if isinstance(req, vl.SessionSetupReq) and req.evccid:
                try:
                    self.evccid = bytes.fromhex(req.evccid)[:6]
                except ValueError:
                    pass
            if isinstance(req, (vl.CableCheckReq,)):
                self.soc = req.soc_percent
            elif isinstance(req, vl.CurrentDemandReq):
                self.soc = req.soc_percent
            elif isinstance(req, vl.ChargeParameterDiscoveryReq):
                self.soc = req.ev.soc_percent
            assert self.protocol is not None
            if self.protocol is Protocol.ISO20_DC:
                return await self._exchange20(req)
            d = classic.DIN if self.protocol is Protocol.DIN else classic.ISO2
            doc = classic.ev_request(d, req, self.session_id, self.evccid, self.soc)
            _, name, _ = classic.split(doc)
            answer = await self._round_trip(PayloadType.EXI, d.schema, doc, d.schema)
            session_id, raw, resp = classic.ev_response(d, name, answer, type(req).__name__)
            if isinstance(req, vl.SessionSetupReq):
                self.session_id = session_id
            self.stats.answered += 1
            return resp

    async def _exchange20(self, req: vl.VehicleRequest) -> vl.VehicleResponse:
        resp: vl.VehicleResponse | None = None
        for doc in iso20_ev.requests(req, self.session_id, self.evccid, self.soc, self.choice):
            name = next(iter(doc))
            schema = iso20.schema_of(name)
            ptype = PayloadType.ISO20_DC if schema == iso20.DC else PayloadType.ISO20_COMMON
            answer = await self._round_trip(ptype, schema, doc, schema)
            session_id, resp = iso20_ev.response(name, answer, type(req).__name__, self.choice)
            if name == "SessionSetupReq":
                self.session_id = session_id
            if resp.code is not vl.ResponseCode.OK:
                break
        self.stats.answered += 1
        if resp is None:  # no -20 message for this request (PaymentServiceSelection)
            return vl.VehicleResponse(request=type(req).__name__)
        return resp

    async def _round_trip(self, ptype: int, schema: str, doc: dict[str, Any],
                          answer_schema: str) -> dict[str, Any]:
        assert self._reader is not None and self._writer is not None
        self._writer.write(v2gtp.pack(ptype, self.codec.encode(schema, doc)))
        head = await self._reader.readexactly(v2gtp.HEADER_LEN)
        header = v2gtp.parse_header(head)
        payload = await self._reader.readexactly(header.length)
        return self.codec.decode(answer_schema, payload)

    async def _discover(self) -> tuple[str, int, int]:
        """SDP: ask until the SECC answers with its address and port."""
        loop = asyncio.get_running_loop()
        addr, port, scope = self.sdp_target
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            if scope:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF,
                                struct.pack("@I", scope))
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            security = sdp.SECURITY_TLS if self.tls is not None else sdp.SECURITY_NONE
            request = v2gtp.pack(PayloadType.SDP_REQUEST, bytes([security, sdp.TRANSPORT_TCP]))
            for _ in range(SDP_RETRIES):
                await loop.sock_sendto(sock, request, (addr, port, 0, scope))
                try:
                    data = await asyncio.wait_for(loop.sock_recv(sock, 64), SDP_TIMEOUT_S)
                except TimeoutError:
                    continue
                answer = sdp.parse_response(data)
                self.secured = answer.security == sdp.SECURITY_TLS
                return socket.inet_ntop(socket.AF_INET6, answer.address), answer.port, scope
        finally:
            sock.close()
        raise ConnectionError("no SDP response")

    async def _connect(self) -> None:
        addr, port, scope = await self._discover()
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (addr, port, 0, scope))
        except OSError:
            sock.close()
            raise
        tls = self.tls if self.secured else None
        if self.secured and tls is None:
            sock.close()
            raise ConnectionError("the SECC requires TLS")
        self._reader, self._writer = await asyncio.open_connection(
            sock=sock, ssl=tls, server_hostname="" if tls is not None else None)
        answer = await self._round_trip(PayloadType.EXI, "SAP",
                                        handshake.request(self.protocols), "SAP")
        res = answer["supportedAppProtocolRes"]
        if not str(res["ResponseCode"]).startswith("OK"):
            raise ConnectionError(f"no common protocol: {res['ResponseCode']}")
        self.protocol = self.protocols[int(res["SchemaID"]) - 1]
        self.session_id = bytes(8) if self.protocol is Protocol.ISO20_DC else bytes(1)


# --- the simulated world's wire (sim/world.py, [simulator] vehicle_link = "wire") -----------

def on_loopback(config: Any) -> Any:
    """The config with the iso15118 driver on ::1 for every connector not already given
    an interface (SDP and TCP on ports the kernel picks: loopback has no multicast, the
    truck asks by unicast)."""
    section = {"protocols": ["iso20_dc", "iso2", "din"], **config.extra.get("iso15118", {})}
    given = list(section.get("connector", []))  # e.g. tests/interop.py: one on a veth
    taken = {c.get("evse_id") for c in given}
    section["connector"] = given + [
        {"evse_id": c.evse_id, "interface": "lo", "address": "::1", "sdp_port": 0}
        for c in config.connectors if c.evse_id not in taken]
    return replace(config, vehicle_link=replace(config.vehicle_link, driver="iso15118"),
                   extra={**config.extra, "iso15118": section})


def channel(world: Any, evse_id: int) -> WireChannel:
    """A truck's EVCC for connector ``evse_id``: asks the charger's SDP port on ::1."""
    server = world.charger.vehicle_links
    port = server.sdp_servers[evse_id].port
    protocols = tuple(Protocol(p) for p in world.section.get("truck_protocols",
                                                           ["iso20_dc", "iso2", "din"]))
    mode = world.section.get("truck_control_mode", "scheduled").capitalize()
    return WireChannel(exi, ("::1", port, 0), protocols, name=f"{world.channel}/{evse_id}",
                       control_mode=mode)
