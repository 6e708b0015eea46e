"""The value partitions of the EXI string table (EXI 1.0 §7.3.3), both directions.

A hand-worked stream whose every bit is derived from the spec (below), hits the decoder must
resolve or refuse, and round trips of documents made to repeat strings. The goldens from
EXIficient's default options (tests/test_exi_golden.py) check the same against an
independent implementation.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.v2g import exi


def _stream(*pieces: str) -> bytes:
    """Bits written as '0'/'1' strings (spaces ignored), zero-padded to whole bytes (§5.2)."""
    bits = "".join(pieces).replace(" ", "")
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def _octets(text: str) -> str:
    # §7.1.10: each character as an Unsigned Integer (§7.1.6): one octet below 128
    return "".join(f"{ord(c):08b}" for c in text)


def _app(ns: str, major: int, i: int) -> dict[str, Any]:
    return {"ProtocolNamespace": ns, "VersionNumberMajor": major, "VersionNumberMinor": 0,
            "SchemaID": i, "Priority": i}


def _app_bits(value: str, major: int, i: int) -> str:
    """One AppProtocol of supportedAppProtocolReq (ISO 15118-2 Annex: AppProtocolType, a
    sequence of five simple-typed elements), `value` the bits of its ProtocolNamespace.

    strict false (the default options): each element state also has second-level codes, so
    a state with k first-level productions has codes 0..k, ceil(log2(k+1)) bits (§6.2). Each
    state of AppProtocolType has one production: 1 bit, code 0. A simple-typed element is
    SE, CH (1 bit, 0), its value, EE (1 bit, 0)."""
    return " ".join([
        "0", "0", value, "0",                       # SE(ProtocolNamespace) CH value EE
        "0", "0", f"{major:08b}", "0",              # VersionNumberMajor: unsignedInt, §7.1.6
        "0", "0", "00000000", "0",                  # VersionNumberMinor 0
        "0", "0", f"{i:08b}", "0",                  # SchemaID: unsignedByte, 8-bit n-bit
        "0", "0", f"{i - 1:05b}", "0",              # Priority 1..20: 5-bit n-bit, offset 1
        "0"])                                       # EE of AppProtocol (its only production)


def _literal(text: str) -> str:
    # §7.3.3: not in the table: a String with its length incremented by two
    return f"{len(text) + 2:08b}" + _octets(text)


HEADER = "10000000"  # §5: distinguishing bits 10, no options, final, version 1: 0x80
ROOT = "00"  # DocContent: supportedAppProtocolReq, supportedAppProtocolRes, SE(*): 2 bits


def _req(*apps: tuple[str, int, int]) -> str:
    """supportedAppProtocolReq: its first state has SE(AppProtocol) only (1 bit); after one,
    SE(AppProtocol) 0 or EE 1 (2 bits); apps: (value bits, major, i)."""
    out = [HEADER, ROOT]
    for n, (value, major, i) in enumerate(apps):
        out.append("0" if n == 0 else "00")
        out.append(_app_bits(value, major, i))
    out.append("01")
    return " ".join(out)


DOC = {"supportedAppProtocolReq": {"AppProtocol": [_app("urn:a", 1, 1), _app("urn:a", 2, 2)]}}


def test_a_local_hit_worked_by_hand() -> None:
    # The second "urn:a" is in the local partition of ProtocolNamespace (one entry, id 0):
    # 0 as an Unsigned Integer (one octet), then the id in ceil(log2 1) = 0 bits.
    hit = _stream(_req((_literal("urn:a"), 1, 1), ("00000000", 2, 2)))
    literal = _stream(_req((_literal("urn:a"), 1, 1), (_literal("urn:a"), 2, 2)))
    assert exi.encode("SAP", DOC, value_hits=True) == hit
    assert exi.encode("SAP", DOC) == literal  # the default: every value a literal
    assert exi.decode("SAP", hit) == DOC
    assert exi.decode("SAP", literal) == DOC
    assert len(literal) - len(hit) == 5  # "urn:a" and its length: 6 octets, the hit 1


def test_a_global_hit_and_ids_of_more_entries() -> None:
    # Three values in the local partition: a hit's id takes ceil(log2 3) = 2 bits.
    apps = [_app("urn:a", 1, 1), _app("urn:b", 1, 2), _app("urn:c", 1, 3)]
    first = [(_literal("urn:a"), 1, 1), (_literal("urn:b"), 1, 2), (_literal("urn:c"), 1, 3)]
    local_c = _stream(_req(*first, ("00000000" "10", 2, 4)))
    doc = {"supportedAppProtocolReq": {"AppProtocol": [*apps, _app("urn:c", 2, 4)]}}
    assert exi.encode("SAP", doc, value_hits=True) == local_c
    assert exi.decode("SAP", local_c) == doc
    # A global hit (1, then the id among all values) is as valid for the decoder, though an
    # encoder prefers the local one (the same value, 6 of one and half a dozen).
    global_b = _stream(_req(*first, ("00000001" "01", 2, 4)))
    doc_b = {"supportedAppProtocolReq": {"AppProtocol": [*apps, _app("urn:b", 2, 4)]}}
    assert exi.decode("SAP", global_b) == doc_b


@pytest.mark.parametrize("hit", ["00000000" "11", "00000001" "11"], ids=["local", "global"])
def test_a_hit_past_the_partition_is_refused(hit: str) -> None:
    first = [(_literal("urn:a"), 1, 1), (_literal("urn:b"), 1, 2), (_literal("urn:c"), 1, 3)]
    with pytest.raises(exi.ExiError, match="hit 3, the partition has 3"):
        exi.decode("SAP", _stream(_req(*first, (hit, 2, 4))))


@pytest.mark.parametrize("hit", ["00000000", "00000001"], ids=["local", "global"])
def test_a_hit_into_an_empty_partition_is_refused(hit: str) -> None:
    with pytest.raises(exi.ExiError, match="partition is empty"):
        exi.decode("SAP", _stream(_req((hit, 1, 1))))


def test_an_empty_string_is_not_added_to_the_table() -> None:
    # "" is sent as a literal (length 0 + 2) and not added (as EXIficient does): the next
    # "urn:a" is a local hit with id 0 and 0 bits, not id 1 of two.
    doc = {"supportedAppProtocolReq": {"AppProtocol": [
        _app("urn:a", 1, 1), _app("", 1, 2), _app("", 2, 3), _app("urn:a", 2, 4)]}}
    hit = _stream(_req((_literal("urn:a"), 1, 1), (_literal(""), 1, 2), (_literal(""), 2, 3),
                       ("00000000", 2, 4)))
    assert exi.encode("SAP", doc, value_hits=True) == hit
    assert exi.decode("SAP", hit) == doc


def test_empty_content_as_a_second_level_end_element_is_read() -> None:
    # An XML-based encoder gives an empty element no CH: code 1 (escape to the second level)
    # then EE, the first of six second-level codes (3 bits, §8.5.4.4.1).
    doc = {"supportedAppProtocolReq": {"AppProtocol": [_app("", 1, 1)]}}
    rest = _app_bits("", 1, 1).split(" ", 4)[4]  # after SE, CH, (no value), EE
    bits = " ".join([HEADER, ROOT, "0", "0", "1 000", rest, "01"])  # SE, 1.0 = EE
    assert exi.decode("SAP", _stream(bits)) == doc
    with pytest.raises(exi.ExiError):  # another second-level event: refused as before
        exi.decode("SAP", _stream(" ".join([HEADER, ROOT, "0", "0", "1 001", rest, "01"])))


WORDS = st.sampled_from(["", "A", "urn:iso:15118:2:2013:MsgDef", "Connector", "x" * 100])


@settings(max_examples=60, deadline=None)
@given(namespaces=st.lists(WORDS, min_size=1, max_size=20))
def test_repeated_namespaces_round_trip(namespaces: list[str]) -> None:
    doc = {"supportedAppProtocolReq": {"AppProtocol": [
        _app(ns, 1, i + 1) for i, ns in enumerate(namespaces)]}}
    literal = exi.encode("SAP", doc)
    hits = exi.encode("SAP", doc, value_hits=True)
    assert exi.decode("SAP", literal) == doc
    assert exi.decode("SAP", hits) == doc
    repeats = len(namespaces) - len(set(namespaces)) - (namespaces.count("") > 1) * (
        namespaces.count("") - 1)  # a repeated "" stays a literal
    # A literal of L characters costs at least 8 + 8 L bits (its length, then each code
    # point, §7.1.10); a hit 8 bits (0 or 1) plus the index, at most 5 bits for 20 entries
    # (§7.3.3): each repeat saves at least 3 bits, the stream is padded to an octet.
    assert len(hits) <= -(-(8 * len(literal) - 3 * repeats) // 8)


NAMES = st.sampled_from(["Connector", "ControlMode", "Pricing", "A", ""])


@settings(max_examples=60, deadline=None)
@given(sets=st.lists(st.lists(st.tuples(NAMES, st.one_of(
    st.builds(lambda v: {"intValue": v}, st.integers(-2**31, 2**31 - 1)),
    st.builds(lambda v: {"finiteString": v}, NAMES))), min_size=1, max_size=8),
    min_size=1, max_size=4))
def test_repeated_parameter_names_and_values_round_trip(
        sets: list[list[tuple[str, dict[str, Any]]]]) -> None:
    # -20 ServiceDetailRes: the attribute Name and the element finiteString are two qnames,
    # so a value first seen under one is a global hit under the other.
    doc = {"ServiceDetailRes": {
        "Header": {"SessionID": bytes(8), "TimeStamp": 0}, "ResponseCode": "OK",
        "ServiceID": 2, "ServiceParameterList": {"ParameterSet": [
            {"ParameterSetID": i + 1, "Parameter": [{"@Name": n, **v} for n, v in params]}
            for i, params in enumerate(sets)]}}}
    for hits in (False, True):
        assert exi.decode("ISO20_CM", exi.encode("ISO20_CM", doc, value_hits=hits)) == doc
