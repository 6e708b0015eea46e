"""Capture golden EXI byte strings from an independent implementation (run by hand).

Josev's EXIficient-based codec (Java, via py4j) encodes documents generated from our grammar
tables; the bytes and the document Josev decodes them back to are written to goldens.json.
tests/test_exi_golden.py then checks our codec against them without Java. Run in the interop
venv (see README "EXI goldens"):

    python3 -m venv .venv-interop && .venv-interop/bin/pip install iso15118==0.31.2 aiofile
    .venv-interop/bin/python tests/exi_golden/make_goldens.py

Josev's JSON differs from our document model in spelling only: attributes without "@",
simple content as "value", hexBinary as upper-case hex, base64Binary as base64.
"""

from __future__ import annotations

import base64
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent))

from hal.v2g import exi  # noqa: E402
from hal.v2g.exi.codec import AT, CH, SE, Schema  # noqa: E402
from sim import exi_samples as samples  # noqa: E402

OUT = HERE / "goldens.json"
SEEDS = (1, 2, 3)
AVOID = frozenset({"Signature"})  # xmldsig content: not part of the DC flows (see report)


def _children(s: Schema, gi: int) -> dict[str, tuple[int, object]]:
    """name -> (kind, child grammar or datatype)"""
    out: dict[str, tuple[int, object]] = {}
    for st in s.grammars[gi].states:
        for kind, name, arg, *_rest in st.prods:
            if kind in (SE, AT, CH):
                out.setdefault(name, (kind, arg))
    return out


def to_josev(s: Schema, gi: int, value: object) -> object:
    g = s.grammars[gi]
    if g.simple is not None:
        return _leaf(g.simple, value)
    assert isinstance(value, dict)
    kids = _children(s, gi)
    out = {}
    for k, v in value.items():
        kind, arg = kids[k]
        key = k[1:] if k.startswith("@") else "value" if k == "$" else k
        if kind == SE:
            conv = [to_josev(s, arg, i) for i in v] if isinstance(v, list) else to_josev(
                s, arg, v)
        else:
            conv = _leaf(arg, v)
        out[key] = conv
    return out


def _leaf(dt: tuple, v: object) -> object:
    if isinstance(v, bytes):
        return v.hex().upper() if dt[3] == "hex" else base64.b64encode(v).decode()
    return v


def from_josev(s: Schema, gi: int, value: object) -> object:
    g = s.grammars[gi]
    if g.simple is not None:
        return _unleaf(g.simple, value)
    assert isinstance(value, dict), value
    kids = _children(s, gi)
    out = {}
    for k, v in value.items():
        name = k if k in kids else "@" + k if "@" + k in kids else "$"
        kind, arg = kids[name]
        if kind == SE:
            many = g.children[name][1]
            items = v if isinstance(v, list) else [v]
            conv = [from_josev(s, arg, i) for i in items]
            out[name] = conv if many else conv[0]
        else:
            out[name] = _unleaf(arg, v)
    return out


def _unleaf(dt: tuple, v: object) -> object:
    if dt[0] == 4 and isinstance(v, str):  # BIN
        return bytes.fromhex(v) if dt[3] == "hex" else base64.b64decode(v)
    return v


def _root_gi(s: Schema, root: str) -> int:
    return s.root_index[root][1]


def to_plain(v: object) -> object:
    """JSON-safe form of a document (bytes as {"hex": ...})."""
    if isinstance(v, bytes):
        return {"hex": v.hex()}
    if isinstance(v, dict):
        return {k: to_plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_plain(x) for x in v]
    return v


def main() -> None:
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec

    jar = ExificientEXICodec()
    goldens = []
    missing = []
    for name in exi.SCHEMAS:
        s = samples.schema(name)
        ns = s.namespace
        for root, body in samples.message_types(name):
            message = body or root
            got = 0
            variants: list[tuple[str, samples.Chooser, random.Random]] = [
                ("full", samples.full, random.Random(0)),
                ("minimal", samples.minimal, random.Random(0))]
            for seed in SEEDS:
                rnd = random.Random(seed)
                variants.append((f"random{seed}", samples.randomly(rnd), rnd))
            for variant, chooser, rnd in variants:
                doc = samples.document(name, root, body, chooser, rnd, AVOID)
                gi = _root_gi(s, root)
                text = json.dumps({root: to_josev(s, gi, doc[root])})
                try:
                    data = bytes(jar.encode(text, ns))
                    back = json.loads(jar.decode(data, ns))
                except Exception as e:  # the Java side says why in its message
                    print(f"{name} {message} {variant}: Josev refused: {str(e)[:120]}")
                    continue
                theirs = {root: from_josev(s, gi, back[root])}
                entry = {"schema": name, "message": message, "variant": variant,
                         "hex": data.hex(), "document": to_plain(theirs)}
                try:
                    exi.encode(name, theirs)
                except exi.ExiError as e:
                    # Josev's JAXB layer fills an absent optional number with 0, even where
                    # the schema's range forbids it; EXIficient then sends the value untyped
                    # (a second-level event). Kept as a stream our codec must refuse.
                    entry["refused"] = str(e)
                    goldens.append(entry)
                    continue
                goldens.append(entry)
                got += 1
            if not got:
                missing.append(f"{name} {message}")
    OUT.write_text(json.dumps({"source": "iso15118==0.31.2 EXIficient codec (EXICodec.jar)",
                               "missing": missing, "goldens": goldens}, indent=1) + "\n")
    print(f"{len(goldens)} goldens, missing: {missing}")


if __name__ == "__main__":
    main()
