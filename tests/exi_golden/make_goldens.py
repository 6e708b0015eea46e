"""Capture golden EXI byte strings from an independent implementation (run by hand).

Josev's EXIficient-based codec (Java, via py4j) encodes documents generated from our grammar
tables; the bytes and the document Josev decodes them back to are written to goldens.json.
tests/test_exi_golden.py then checks our codec against them without Java. Run in the interop
venv (see README "EXI goldens"):

    python3 -m venv .venv-interop && .venv-interop/bin/pip install iso15118==0.31.2 aiofile
    .venv-interop/bin/python tests/exi_golden/make_goldens.py

Josev's JSON differs from our document model in spelling only: attributes without "@",
simple content as "value", hexBinary as upper-case hex, base64Binary as base64.

Value hits (EXI 1.0 §7.3.3): Josev configures EXIficient with valuePartitionCapacity and
valueMaxLength 0, so its streams never carry a string-table hit. For each golden the same
EXIficient core is also run with its default options (the ones the 0x80 header means, value
partitions unbounded): it decodes Josev's stream to XML and encodes that again, and its bytes
are kept as "hits_hex" (equal to "hex" where no string value repeats). Where they differ, the
stream is also given to Josev's options; that it fails there is recorded ("josev_reads_hits").
"""

from __future__ import annotations

import base64
import json
import random
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent))

from hal.v2g import exi  # noqa: E402
from hal.v2g.exi.codec import AT, CH, SE, Schema  # noqa: E402
from sim import exi_samples as samples  # noqa: E402

OUT = HERE / "goldens.json"
# EXIficient's generated grammars in Josev's jar, per schema
JAR_GRAMMARS = {"SAP": "CommonAppProtocol", "DIN": "DINSpec_70121", "ISO2": "ISO15118_2Grammar",
                "ISO20_CM": "ISO15118_20_V2G_CI_CommonMessages",
                "ISO20_DC": "ISO15118_20_V2G_CI_DC"}
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


class DefaultExificient:
    """EXIficient's core from Josev's jar (py4j), with its default options or Josev's."""

    def __init__(self, gateway: Any) -> None:
        self.jvm = gateway.jvm

    def factory(self, schema: str, josev_options: bool = False) -> Any:
        jvm = self.jvm
        f = jvm.com.siemens.ct.exi.core.helpers.DefaultEXIFactory.newInstance()
        f.setGrammars(getattr(jvm.com.siemens.ct.exi.main.generatedgrammar,
                              JAR_GRAMMARS[schema])())
        if josev_options:  # as Josev's AbstractEXICodec sets them
            f.setValueMaxLength(0)
            f.setValuePartitionCapacity(0)
        return f

    def to_xml(self, factory: Any, data: bytes) -> str:
        jvm = self.jvm
        reader = jvm.com.siemens.ct.exi.main.api.sax.EXISource(factory).getXMLReader()
        out = jvm.java.io.StringWriter()
        source = jvm.javax.xml.transform.sax.SAXSource(
            reader, jvm.org.xml.sax.InputSource(jvm.java.io.ByteArrayInputStream(data)))
        jvm.javax.xml.transform.TransformerFactory.newInstance().newTransformer().transform(
            source, jvm.javax.xml.transform.stream.StreamResult(out))
        return str(out.toString())

    def from_xml(self, factory: Any, xml: str) -> bytes:
        jvm = self.jvm
        result = jvm.com.siemens.ct.exi.main.api.sax.EXIResult(factory)
        buf = jvm.java.io.ByteArrayOutputStream()
        result.setOutputStream(buf)
        reader = jvm.org.xml.sax.helpers.XMLReaderFactory.createXMLReader()
        reader.setContentHandler(result.getHandler())
        reader.parse(jvm.org.xml.sax.InputSource(jvm.java.io.StringReader(xml)))
        return bytes(buf.toByteArray())


def with_hits(core: DefaultExificient, entry: dict[str, Any]) -> None:
    """Add EXIficient's default-options encoding (value hits) of one golden."""
    schema = entry["schema"]
    xml = core.to_xml(core.factory(schema), bytes.fromhex(entry["hex"]))
    hits = core.from_xml(core.factory(schema), xml)
    entry["hits_hex"] = hits.hex()
    if hits.hex() != entry["hex"]:
        try:
            core.to_xml(core.factory(schema, josev_options=True), hits)
            entry["josev_reads_hits"] = True
        except Exception:  # noqa: BLE001 - the Java side's NullPointerException ("lvs")
            entry["josev_reads_hits"] = False


def _parameter(name: str, **value: object) -> dict[str, object]:
    return {"@Name": name, **value}


# Documents made to repeat string values: local hits (same qname), global hits (a value
# first seen under another qname), empty attribute values (never added to the table). The
# "-empty" variants add elements with empty string content, which EXIficient (from XML: no
# characters) sends as a second-level EE and we as an empty CH: decoded both ways, our own
# bytes differ there (both valid).
def _app(ns: str, major: int, i: int) -> dict[str, object]:
    return {"ProtocolNamespace": ns, "VersionNumberMajor": major, "VersionNumberMinor": 0,
            "SchemaID": i, "Priority": i}


def _detail(empty: bool) -> dict[str, Any]:
    gap = "" if empty else "Empty"
    return {"ServiceDetailRes": {
        "Header": {"SessionID": bytes(range(8)), "TimeStamp": 1},
        "ResponseCode": "OK", "ServiceID": 2, "ServiceParameterList": {"ParameterSet": [
            {"ParameterSetID": 1, "Parameter": [
                _parameter("Connector", intValue=2), _parameter("ControlMode", intValue=1),
                _parameter("Note", finiteString="Connector"),
                _parameter("Empty", finiteString=gap), _parameter("", finiteString="Note")]},
            {"ParameterSetID": 2, "Parameter": [
                _parameter("Connector", intValue=2), _parameter("ControlMode", intValue=2),
                _parameter("Note", finiteString="Note"),
                _parameter("Empty", finiteString="ControlMode"),
                _parameter("", finiteString="Connector"), _parameter("", intValue=1),
                _parameter("Pricing", finiteString=gap)]}]}}}


REPEATS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("SAP", "supportedAppProtocolReq", "repeats", {"supportedAppProtocolReq": {"AppProtocol": [
        _app(ns, major, i + 1) for i, (ns, major) in enumerate(
            [("urn:a", 1), ("urn:a", 2), ("urn:b", 1), ("urn:c", 1), ("urn:b", 2),
             ("urn:a", 3), ("urn:c", 2), ("urn:d", 1), ("urn:d", 2)])]}}),
    ("SAP", "supportedAppProtocolReq", "repeats-empty", {"supportedAppProtocolReq": {
        "AppProtocol": [_app(ns, major, i + 1) for i, (ns, major) in enumerate(
            [("urn:a", 1), ("urn:a", 2), ("", 1), ("urn:b", 1), ("", 2), ("urn:a", 3)])]}}),
    ("ISO20_CM", "ServiceDetailRes", "repeats", _detail(empty=False)),
    ("ISO20_CM", "ServiceDetailRes", "repeats-empty", _detail(empty=True)),
]


def main() -> None:
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec

    jar = ExificientEXICodec()
    core = DefaultExificient(jar.gateway)
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
                with_hits(core, entry)
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
    for name, message, variant, doc in REPEATS:
        s = samples.schema(name)
        ((root, value),) = doc.items()
        text = json.dumps({root: to_josev(s, _root_gi(s, root), value)})
        data = bytes(jar.encode(text, s.namespace))
        theirs = {root: from_josev(s, _root_gi(s, root),
                                   json.loads(jar.decode(data, s.namespace))[root])}
        entry = {"schema": name, "message": message, "variant": variant, "hex": data.hex(),
                 "document": to_plain(theirs)}
        with_hits(core, entry)
        goldens.append(entry)
    OUT.write_text(json.dumps({"source": "iso15118==0.31.2 EXIficient codec (EXICodec.jar)",
                               "missing": missing, "goldens": goldens}, indent=1) + "\n")
    print(f"{len(goldens)} goldens, missing: {missing}")


if __name__ == "__main__":
    main()
