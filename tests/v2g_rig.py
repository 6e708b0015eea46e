"""A stand-in codec for the wire tests while a protocol's EXI grammar is not there yet:
documents as JSON (bytes tagged), so the SECC, the shell and the truck's EVCC run on the
real sockets with the real framing. Never used by the product (the driver uses
hal.v2g.exi); tests that need real EXI use that."""

from __future__ import annotations

import json
from typing import Any


def _tag(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    if isinstance(value, dict):
        return {k: _tag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tag(v) for v in value]
    return value


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return bytes.fromhex(value["__bytes__"])
        return {k: _untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag(v) for v in value]
    return value


class JsonCodec:
    def __init__(self) -> None:
        self.encoded: list[str] = []  # schema of every message encoded, in order

    def encode(self, schema: str, document: dict[str, Any]) -> bytes:
        self.encoded.append(schema)
        return json.dumps([schema, _tag(document)]).encode()

    def decode(self, schema: str, data: bytes) -> dict[str, Any]:
        try:
            got_schema, doc = json.loads(data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a JSON document: {exc}") from None
        if got_schema != schema:
            raise ValueError(f"document of schema {got_schema}, decoded as {schema}")
        return _untag(doc)  # type: ignore[no-any-return]
