"""Bad input to the EXI codec: always ExiError, never another exception, never a hang.

The SECC decodes whatever arrives on TCP port 15118 and the truck simulator whatever the
SECC sends; the encoder gets documents the core built. Every failure must be an ExiError
that says where.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.v2g import exi
from sim import exi_samples as samples

MESSAGES = [(schema, root, body) for schema in exi.SCHEMAS
            for root, body in samples.message_types(schema)]


def _valid(schema: str, root: str, body: str | None, seed: int) -> bytes:
    rnd = random.Random(seed)
    return exi.encode(schema, samples.document(schema, root, body, samples.randomly(rnd), rnd))


def _decodes_or_refuses(schema: str, data: bytes) -> None:
    try:
        doc = exi.decode(schema, data)
    except exi.ExiError:
        return
    # What decodes is a valid document: it encodes again and means the same.
    assert exi.decode(schema, exi.encode(schema, doc)) == doc


@pytest.mark.parametrize("schema", exi.SCHEMAS)
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes(schema: str, data: bytes) -> None:
    _decodes_or_refuses(schema, data)
    _decodes_or_refuses(schema, b"\x80" + data)  # past the header, into the grammar


@pytest.mark.parametrize("schema,root,body", MESSAGES[::3])
def test_every_truncation_is_refused(schema: str, root: str, body: str | None) -> None:
    data = _valid(schema, root, body, 11)
    for n in range(len(data)):
        with pytest.raises(exi.ExiError):
            exi.decode(schema, data[:n])


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32), which=st.integers(0, len(MESSAGES) - 1),
       flips=st.lists(st.integers(0, 10**6), min_size=1, max_size=4))
def test_bit_flips(seed: int, which: int, flips: list[int]) -> None:
    schema, root, body = MESSAGES[which]
    data = bytearray(_valid(schema, root, body, seed))
    for f in flips:
        data[f // 8 % len(data)] ^= 1 << (f % 8)
    _decodes_or_refuses(schema, bytes(data))


def test_trailing_bytes_are_refused() -> None:
    data = _valid("ISO2", "V2G_Message", "CurrentDemandReq", 3)
    with pytest.raises(exi.ExiError, match="after the end"):
        exi.decode("ISO2", data + b"\x00")


@pytest.mark.parametrize("header", [b"", b"\x00", b"\x81", b"\xa0", b"\xc0", b"$EXI\x80"])
def test_wrong_header(header: bytes) -> None:
    # EXI 1.0 §5: 0x80 is distinguishing bits 10, no options, final version 1; ISO 15118
    # sends neither the cookie nor options.
    body = _valid("SAP", "supportedAppProtocolRes", None, 1)[1:]
    with pytest.raises(exi.ExiError, match="header"):
        exi.decode("SAP", header + body)


def test_huge_length_prefix_is_refused_at_once() -> None:
    # supportedAppProtocolReq/AppProtocol/ProtocolNamespace announcing 2**63 characters
    w = exi.encode("SAP", {"supportedAppProtocolReq": {"AppProtocol": [
        {"ProtocolNamespace": "", "VersionNumberMajor": 2, "VersionNumberMinor": 0,
         "SchemaID": 1, "Priority": 1}]}})
    # the empty string is the octet 0x02 (length + 2) right after the fixed event codes
    bits = "".join(f"{b:08b}" for b in w)
    cut = bits.index("00000010", 8)
    long_len = "".join(("1" if i < 8 else "0") + f"{(2**63 >> (7 * i)) & 0x7F:07b}"
                       for i in range(10))[:-8] + "0" + f"{(2**63 >> 63) & 0x7F:07b}"
    tampered = bits[:cut] + long_len + bits[cut + 8:]
    tampered += "0" * (-len(tampered) % 8)
    data = int(tampered, 2).to_bytes(len(tampered) // 8, "big")
    with pytest.raises(exi.ExiError):
        exi.decode("SAP", data)


def test_unknown_schema_and_wrong_input_types() -> None:
    with pytest.raises(exi.ExiError, match="unknown schema"):
        exi.decode("ISO3", b"\x80")
    with pytest.raises(exi.ExiError):
        exi.decode("SAP", "80")  # type: ignore[arg-type]
    with pytest.raises(exi.ExiError):
        exi.encode("SAP", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(exi.ExiError):
        exi.encode("SAP", {"a": 1, "b": 2})


def _sap_req(**over: object) -> dict:
    proto = {"ProtocolNamespace": "urn:din:70121:2012:MsgDef", "VersionNumberMajor": 2,
             "VersionNumberMinor": 0, "SchemaID": 1, "Priority": 1}
    proto.update(over)
    return {"supportedAppProtocolReq": {"AppProtocol": [proto]}}


def test_priority_range_from_the_schema() -> None:
    # AppProtocol priorityType: 1..20 (ISO 15118-2 §8.2, V2G_CI_AppProtocol.xsd)
    for ok in (1, 20):
        assert exi.decode("SAP", exi.encode("SAP", _sap_req(Priority=ok))) == _sap_req(
            Priority=ok)
    for bad in (0, 21):
        with pytest.raises(exi.ExiError, match="Priority"):
            exi.encode("SAP", _sap_req(Priority=bad))


def test_at_most_20_app_protocols() -> None:
    # supportedAppProtocolReq: AppProtocol maxOccurs 20 (V2G_CI_AppProtocol.xsd)
    proto = _sap_req()["supportedAppProtocolReq"]["AppProtocol"][0]
    doc = {"supportedAppProtocolReq": {"AppProtocol": [proto] * 20}}
    assert exi.decode("SAP", exi.encode("SAP", doc)) == doc
    with pytest.raises(exi.ExiError, match="AppProtocol"):
        exi.encode("SAP", {"supportedAppProtocolReq": {"AppProtocol": [proto] * 21}})


@pytest.mark.parametrize("doc,match", [
    (_sap_req(Extra=1), "no child 'Extra'"),
    ({"supportedAppProtocolReq": {"AppProtocol": [{"Priority": 1}]}}, "ProtocolNamespace"),
    (_sap_req(Priority=True), "int expected"),
    (_sap_req(SchemaID="1"), "int expected"),
    (_sap_req(ProtocolNamespace=b"urn"), "str expected"),
    (_sap_req(ProtocolNamespace="u" * 101), "length 101"),  # protocolNamespaceType max 100
    ({"supportedAppProtocolReq": {"AppProtocol": _sap_req()["supportedAppProtocolReq"][
        "AppProtocol"][0]}}, "list expected"),
    ({"supportedAppProtocolReq": {"AppProtocol": []}}, "list expected"),
    ({"supportedAppProtocolRes": {"ResponseCode": "OK"}}, "not one of"),
    ({"supportedAppProtocolRes": None}, "dict expected"),
    ({"nosuch": {}}, "no global element"),
])
def test_encoder_refuses_what_the_schema_does_not_allow(doc: dict, match: str) -> None:
    with pytest.raises(exi.ExiError, match=match):
        exi.encode("SAP", doc)


def test_errors_say_where() -> None:
    doc = {"V2G_Message": {"Header": {"SessionID": bytes(9)},  # sessionIDType: 8 bytes max
                           "Body": {"SessionStopReq": {"ChargingSession": "Terminate"}}}}
    with pytest.raises(exi.ExiError, match="V2G_Message/Header/SessionID/binary: length 9"):
        exi.encode("ISO2", doc)
    data = _valid("ISO2", "V2G_Message", "CurrentDemandReq", 5)
    with pytest.raises(exi.ExiError, match=r"V2G_Message/.*bit"):
        exi.decode("ISO2", data[: len(data) // 2])
