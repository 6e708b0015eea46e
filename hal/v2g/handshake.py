"""supportedAppProtocol: which protocol this session speaks (ISO 15118-2 clause 8.2,
DIN SPEC 70121 clause 9.1; the same schema urn:iso:15118:2:2010:AppProtocol for -20).

The EV lists up to 20 protocols with its own priorities; we pick by OUR configured
priority among those it offers (the standard leaves the choice to the SECC), matching
the namespace and the major version. A lower or higher minor version is accepted with
OK_SuccessfulNegotiationWithMinorDeviation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Protocol(enum.Enum):
    DIN = "din"
    ISO2 = "iso2"
    ISO20_DC = "iso20_dc"


@dataclass(frozen=True, slots=True)
class ProtocolId:
    namespace: str
    major: int
    minor: int


# Namespaces and versions of the message sets we implement (the schemas' own URNs).
PROTOCOL_IDS = {
    Protocol.DIN: ProtocolId("urn:din:70121:2012:MsgDef", 2, 0),
    Protocol.ISO2: ProtocolId("urn:iso:15118:2:2013:MsgDef", 2, 0),
    Protocol.ISO20_DC: ProtocolId("urn:iso:std:iso:15118:-20:DC", 1, 0),
}

OK = "OK_SuccessfulNegotiation"
OK_MINOR = "OK_SuccessfulNegotiationWithMinorDeviation"
FAILED = "Failed_NoNegotiation"


@dataclass(frozen=True, slots=True)
class Negotiation:
    protocol: Protocol | None
    schema_id: int | None
    response: dict[str, Any]


class HandshakeError(ValueError):
    """Not a supportedAppProtocolReq we can read."""


def negotiate(document: dict[str, Any], priority: tuple[Protocol, ...]) -> Negotiation:
    """Our answer to the EV's supportedAppProtocolReq document."""
    try:
        offered = document["supportedAppProtocolReq"]["AppProtocol"]
        entries = [(str(e["ProtocolNamespace"]), int(e["VersionNumberMajor"]),
                    int(e["VersionNumberMinor"]), int(e["SchemaID"]), int(e["Priority"]))
                   for e in offered]
    except (KeyError, TypeError, ValueError) as exc:
        raise HandshakeError(f"not a supportedAppProtocolReq: {exc!r}") from None
    for protocol in priority:
        want = PROTOCOL_IDS[protocol]
        matches = [e for e in entries if e[0] == want.namespace and e[1] == want.major]
        if not matches:
            continue
        # Several entries of one namespace: the EV's own preferred one (lowest Priority).
        ns, major, minor, schema_id, _ = min(matches, key=lambda e: e[4])
        code = OK if minor == want.minor else OK_MINOR
        return Negotiation(protocol, schema_id, {"supportedAppProtocolRes": {
            "ResponseCode": code, "SchemaID": schema_id}})
    return Negotiation(None, None, {"supportedAppProtocolRes": {"ResponseCode": FAILED}})


def request(protocols: tuple[Protocol, ...]) -> dict[str, Any]:
    """The EV's side (the simulated truck): offer ``protocols`` in this order."""
    return {"supportedAppProtocolReq": {"AppProtocol": [
        {"ProtocolNamespace": PROTOCOL_IDS[p].namespace,
         "VersionNumberMajor": PROTOCOL_IDS[p].major,
         "VersionNumberMinor": PROTOCOL_IDS[p].minor,
         "SchemaID": i + 1, "Priority": i + 1} for i, p in enumerate(protocols)]}}
