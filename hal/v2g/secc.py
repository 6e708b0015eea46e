"""The SECC as a pure machine: one TCP connection's protocol state.

Documents in (decoded by the shell with the schema ``schema_for`` names), steps out:
``Reply`` (a document the shell encodes and sends) or ``Ask`` (a VehicleLink request the
shell hands to the controller; its answer comes back through ``on_answer``). The machine
decides only what is the protocol's: which protocol (by our priority), session IDs,
message order, the response codes that follow from those, and the SECC's sequence timer.
Every charging decision is the core's: each request of the DC flow becomes an ``Ask``.

A request out of order, with a wrong SessionID, or malformed is answered with its
FAILED_* code where a response can be formed, and ends the connection (``close``): the
shell then reports ``LinkLost`` to the core, which ends the session safely (a FAILED
response code ends the communication session in DIN SPEC 70121 and ISO 15118-2/-20).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from hal import vehicle_link as vl
from hal.v2g import classic, handshake, iso20
from hal.v2g.handshake import Protocol as V2gProtocol
from hal.v2g.v2gtp import PayloadType

Doc = dict[str, Any]

# ISO 15118-2 Table 109 and DIN SPEC 70121 Table 75 (V2G_SECC_Sequence_Timeout): the SECC
# waits this long for the EV's next request, then ends the connection (-20: the same).
SEQUENCE_TIMEOUT_S = 60.0
# ISO 15118-2 Table 109 / DIN SPEC 70121 Table 75 (V2G_SECC_Msg_Performance_Time): the
# SECC's own answer deadlines; the shell counts answers later than these.
CURRENT_DEMAND_PERFORMANCE_S = 0.025
MSG_PERFORMANCE_S = 1.5


@dataclass(frozen=True, slots=True)
class SeccSettings:
    priority: tuple[V2gProtocol, ...] = (V2gProtocol.ISO20_DC, V2gProtocol.ISO2,
                                         V2gProtocol.DIN)
    evse_id: str = "ZZ00000"  # ISO-2 EVSEID (7-37 characters), DIN as bytes, -20 as string
    min_voltage_v: float = 150.0
    peak_current_ripple_a: float = 5.0
    sequence_timeout_s: float = SEQUENCE_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class Reply:
    payload_type: int
    schema: str
    document: Doc
    close: str | None = None  # the connection ends after this reply, for this reason


@dataclass(frozen=True, slots=True)
class Ask:
    request: vl.VehicleRequest


@dataclass(frozen=True, slots=True)
class Close:
    reason: str  # end without a reply (nothing we could answer)


Step = Reply | Ask | Close


class Adapter(Protocol):
    """One protocol's documents (classic.py for DIN and ISO-2, iso20.py for -20)."""

    name: str
    flow: dict[str, frozenset[str]]

    def schema_for(self, payload_type: int) -> str | None: ...
    def payload_type(self, req_name: str) -> int: ...
    def schema_of(self, req_name: str) -> str: ...
    def split(self, doc: Doc) -> tuple[bytes, str, Doc]: ...
    def to_vehicle(self, name: str, body: Doc) -> vl.VehicleRequest: ...
    def local_answer(self, name: str, body: Doc, ctx: Any) -> Doc | None: ...
    def respond(self, name: str, resp: vl.VehicleResponse, ctx: Any, code: str) -> Doc: ...
    def failed(self, name: str, code: str, ctx: Any) -> Doc: ...
    def context(self, session_id: bytes, settings: SeccSettings) -> Any: ...
    def flow_key(self, name: str, req: vl.VehicleRequest | Doc | None) -> str: ...
    def is_local(self, name: str, body: Doc) -> bool: ...


class ClassicAdapter:
    """DIN SPEC 70121 / ISO 15118-2: one schema, every message payload type 0x8001."""

    def __init__(self, dialect: classic.Dialect) -> None:
        self.d = dialect
        self.name = dialect.schema
        self.flow = dialect.flow

    def schema_for(self, payload_type: int) -> str | None:
        return self.d.schema if payload_type == PayloadType.EXI else None

    def payload_type(self, req_name: str) -> int:
        return PayloadType.EXI

    def schema_of(self, req_name: str) -> str:
        return self.d.schema

    def split(self, doc: Doc) -> tuple[bytes, str, Doc]:
        return classic.split(doc)

    def to_vehicle(self, name: str, body: Doc) -> vl.VehicleRequest:
        return classic.to_vehicle(self.d, name, body)

    def local_answer(self, name: str, body: Doc, ctx: Any) -> Doc | None:
        return classic.local_answer(self.d, name, body, ctx)

    def respond(self, name: str, resp: vl.VehicleResponse, ctx: Any, code: str) -> Doc:
        return classic.respond(self.d, name, resp, ctx, code)

    def failed(self, name: str, code: str, ctx: Any) -> Doc:
        return classic.failed(self.d, name, code, ctx)

    def context(self, session_id: bytes, settings: SeccSettings) -> Any:
        return classic.Context(session_id, settings.evse_id, settings.min_voltage_v,
                               peak_current_ripple_a=settings.peak_current_ripple_a)

    def flow_key(self, name: str, req: vl.VehicleRequest | Doc | None) -> str:
        return classic.flow_key(name, req)

    def is_local(self, name: str, body: Doc) -> bool:
        return name == "ServiceDetailReq"


def adapter(protocol: V2gProtocol) -> Adapter:
    if protocol is V2gProtocol.DIN:
        return ClassicAdapter(classic.DIN)
    if protocol is V2gProtocol.ISO2:
        return ClassicAdapter(classic.ISO2)
    return iso20.Iso20Adapter()


class Stage(enum.Enum):
    HANDSHAKE = "handshake"
    SESSION = "session"
    ENDED = "ended"


_CODE = {vl.ResponseCode.OK: "OK", vl.ResponseCode.FAILED: "FAILED",
         vl.ResponseCode.FAILED_SEQUENCE_ERROR: "FAILED_SequenceError"}


@dataclass
class SeccStats:
    requests: int = 0
    sequence_errors: int = 0
    unknown_sessions: int = 0
    malformed: int = 0
    trace: list[str] = field(default_factory=list)  # request names, in order (bounded)
    responses: list[tuple[str, str]] = field(default_factory=list)  # (request, code) sent


class Secc:
    """One connection. ``session_id`` is the 8 random bytes the shell drew for it."""

    TRACE_MAX = 512

    def __init__(self, settings: SeccSettings, session_id: bytes, now: float) -> None:
        self.settings = settings
        self.session_id = session_id
        self.stage = Stage.HANDSHAKE
        self.protocol: V2gProtocol | None = None
        self.adapter: Adapter | None = None
        self.ctx: Any = None
        self.last = ""  # flow key of the last request accepted
        self.pending: tuple[str, vl.VehicleRequest] | None = None
        self.session_open = False  # SessionSetup answered
        self.deadline = now + settings.sequence_timeout_s
        self.stats = SeccStats()

    # --- what the shell asks ----------------------------------------------------------

    def schema_for(self, payload_type: int) -> str | None:
        """The schema to decode a payload of this type with, None if not acceptable now."""
        if self.stage is Stage.HANDSHAKE:
            return "SAP" if payload_type == PayloadType.EXI else None
        if self.stage is Stage.SESSION and self.adapter is not None:
            return self.adapter.schema_for(payload_type)
        return None

    def timed_out(self, now: float) -> bool:
        return self.pending is None and now >= self.deadline

    # --- events -----------------------------------------------------------------------

    def on_undecodable(self, reason: str) -> Step:
        self.stats.malformed += 1
        self.stage = Stage.ENDED
        return Close(f"malformed message: {reason}")

    def on_document(self, doc: Doc, now: float, wall: float = 0.0) -> Step:
        """A decoded request; ``wall``: Unix time for -20's header TimeStamp."""
        self.stats.requests += 1
        if self.ctx is not None and hasattr(self.ctx, "timestamp"):
            self.ctx.timestamp = int(wall)
        if self.pending is not None:  # the shell reads the next only after answering
            self.stage = Stage.ENDED
            return Close("a request arrived before the last was answered")
        if self.stage is Stage.HANDSHAKE:
            return self._handshake(doc, now)
        if self.stage is not Stage.SESSION or self.adapter is None:
            return Close("message after the session ended")
        return self._request(self.adapter, doc, now)

    def on_answer(self, resp: vl.VehicleResponse, now: float) -> Reply:
        """The core's answer to the last ``Ask``, as the response document."""
        assert self.pending is not None and self.adapter is not None, "nothing was asked"
        name, req = self.pending
        self.pending = None
        a = self.adapter
        if isinstance(req, vl.SessionSetupReq) and resp.code is vl.ResponseCode.OK:
            code = "OK_NewSessionEstablished"  # we never resume a paused session
            self.session_open = True
        else:
            code = _CODE[resp.code]
        doc = a.respond(name, resp, self.ctx, code)
        self.deadline = now + self.settings.sequence_timeout_s
        close = None
        if resp.code is not vl.ResponseCode.OK:
            close = f"{name} answered {code}"
            if resp.code is vl.ResponseCode.FAILED_SEQUENCE_ERROR:
                self.stats.sequence_errors += 1
        elif isinstance(req, vl.SessionStopReq):
            close = "SessionStop"
        if close is not None:
            self.stage = Stage.ENDED
        self._sent(name, code)
        return Reply(a.payload_type(name), a.schema_of(name), doc, close)

    def _sent(self, name: str, code: str) -> None:
        if len(self.stats.responses) < self.TRACE_MAX:
            self.stats.responses.append((name, code))

    # --- inside ---------------------------------------------------------------------------

    def _handshake(self, doc: Doc, now: float) -> Step:
        try:
            result = handshake.negotiate(doc, self.settings.priority)
        except handshake.HandshakeError as exc:
            self.stage = Stage.ENDED
            self.stats.malformed += 1
            return Close(str(exc))
        self.deadline = now + self.settings.sequence_timeout_s
        if result.protocol is None:
            self.stage = Stage.ENDED
            return Reply(PayloadType.EXI, "SAP", result.response, "no common protocol")
        self.protocol = result.protocol
        self.adapter = adapter(result.protocol)
        self.ctx = self.adapter.context(self.session_id, self.settings)
        self.stage = Stage.SESSION
        return Reply(PayloadType.EXI, "SAP", result.response)

    def _fail(self, a: Adapter, name: str, code: str, reason: str) -> Reply:
        self.stage = Stage.ENDED
        self._sent(name, code)
        return Reply(a.payload_type(name), a.schema_of(name), a.failed(name, code, self.ctx),
                     reason)

    def _request(self, a: Adapter, doc: Doc, now: float) -> Step:
        try:
            session_id, name, body = a.split(doc)
        except ValueError as exc:
            return self.on_undecodable(str(exc))
        if len(self.stats.trace) < self.TRACE_MAX:
            self.stats.trace.append(name)
        known = any(name == k.split(":")[0] for k in a.flow)
        if not known:
            # Not a message of our subset (PnC, AC, ...): no response we could form.
            self.stage = Stage.ENDED
            return Close(f"{name} is not offered")
        if name == "SessionSetupReq":
            # The EV's SessionID is 0 for a new session (or an old one to resume, which we
            # do not offer): either way it gets our new ID with OK_NewSessionEstablished.
            pass
        elif session_id != self.session_id:
            self.stats.unknown_sessions += 1
            return self._fail(a, name, "FAILED_UnknownSession",
                              f"{name} with SessionID {session_id.hex()}")
        try:
            req = None if a.is_local(name, body) else a.to_vehicle(name, body)
        except ValueError as exc:
            self.stats.malformed += 1
            return self._fail(a, name, "FAILED", str(exc))
        key = a.flow_key(name, req) if req is not None else a.flow_key(name, body)
        if key not in a.flow.get(self.last, frozenset()):
            self.stats.sequence_errors += 1
            return self._fail(a, name, "FAILED_SequenceError",
                              f"{name} after {self.last or 'the handshake'}")
        self.last = key
        if req is None:
            local = a.local_answer(name, body, self.ctx)
            if local is None:
                return self._fail(a, name, "FAILED", f"{name}: no answer")
            self.deadline = now + self.settings.sequence_timeout_s
            self._sent(name, str(next(iter(local.values())).get("ResponseCode", "")))
            return Reply(a.payload_type(name), a.schema_of(name), local)
        self.pending = (name, req)
        return Ask(req)
