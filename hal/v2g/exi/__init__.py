"""Schema-informed EXI codec for the supportedAppProtocol handshake, DIN SPEC 70121,
ISO 15118-2 and ISO 15118-20 (CommonMessages, DC).

Interface (agreed in the project notes, EXI-API): `encode(schema, document) -> bytes`,
`decode(schema, data) -> dict`, `ExiError`, `SCHEMAS`. Documents are plain values: a dict of
child name -> value per complex element, lists for children with maxOccurs > 1, "@Name" for
attributes, "$" for simple content, int / bool / str / bytes for simple values.

Approach: a generator script kept in the repo (`generate.py`, `make exi-tables`) derives the
EXI grammars from the XSD files (shipped in the `iso15118` wheel; ISO text, not committed)
into the data modules `tables_*.py`; `codec.py` interprets them. Why a generator: the
grammars (event codes per state, thousands of states with the bounded repetitions) cannot
be written or reviewed by hand, and regenerating is one command. Why an interpreter over
tables, not generated code: one small reviewed loop instead of thousands of generated lines;
measured (`make bench`, sim/bench_exi.py) at roughly 60-95 us per CurrentDemand pair (decode
request + encode response) on this loaded 2-core machine. Pure: no I/O, nothing mutated
after import. Options as ISO 15118 / DIN 70121 use them (checked against EXIficient's bytes):
see codec.py.
"""

from __future__ import annotations

from typing import Any

from hal.v2g.exi import tables_din, tables_iso2, tables_iso20_cm, tables_iso20_dc, tables_sap
from hal.v2g.exi.bits import ExiError
from hal.v2g.exi.codec import Decoder, Encoder, Schema

__all__ = ["ExiError", "SCHEMAS", "encode", "decode", "namespace"]

SCHEMAS = ("SAP", "DIN", "ISO2", "ISO20_CM", "ISO20_DC")

_SCHEMAS: dict[str, Schema] = {
    "SAP": Schema(tables_sap),
    "DIN": Schema(tables_din),
    "ISO2": Schema(tables_iso2),
    "ISO20_CM": Schema(tables_iso20_cm),
    "ISO20_DC": Schema(tables_iso20_dc),
}


def _schema(schema: str) -> Schema:
    s = _SCHEMAS.get(schema) if isinstance(schema, str) else None
    if s is None:
        raise ExiError(f"unknown schema {schema!r}, one of {SCHEMAS}")
    return s


def namespace(schema: str) -> str:
    """The XML namespace of the schema's messages (as named in supportedAppProtocol)."""
    return _schema(schema).namespace


def encode(schema: str, document: dict[str, Any], *, value_hits: bool = False) -> bytes:
    """The EXI stream (header and body) of one document; ExiError if the schema forbids it.

    value_hits: send a repeated string value as a string-table hit (EXI 1.0 §7.3.3), as a
    conforming encoder may. Off by default: the ISO 15118 codecs in the field (Josev's
    EXIficient, EVerest's libcbv2g) cannot read a hit, and every decoder reads literals."""
    try:
        return Encoder(_schema(schema), value_hits).document(document)
    except RecursionError:
        raise ExiError("document nested too deep") from None


def decode(schema: str, data: bytes) -> dict[str, Any]:
    """The document of one EXI stream; ExiError for anything malformed or unsupported."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ExiError(f"bytes expected, got {type(data).__name__}")
    try:
        return Decoder(_schema(schema), bytes(data)).document()
    except RecursionError:
        raise ExiError("stream nested too deep") from None
