"""EXI round trips: decode(encode(x)) == x for documents generated from each message's grammar.

Documents come from a random walk through the grammar tables (tests/exi_samples.py): every
optional child, list length and choice branch the schema allows is reachable, with values
across each type's whole range (both bounds included).
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
IDS = [f"{m[0]}-{m[2] or m[1]}" for m in MESSAGES]


@pytest.mark.parametrize("schema,root,body", MESSAGES, ids=IDS)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_random_documents_round_trip(schema: str, root: str, body: str | None,
                                     seed: int) -> None:
    rnd = random.Random(seed)
    doc = samples.document(schema, root, body, samples.randomly(rnd), rnd)
    data = exi.encode(schema, doc)
    assert data[0] == 0x80  # EXI header: no cookie, no options (as every body seen on the wire)
    assert exi.decode(schema, data) == doc
    hits = exi.encode(schema, doc, value_hits=True)  # repeated strings as string-table hits
    assert exi.decode(schema, hits) == doc
    assert len(hits) <= len(data)


@pytest.mark.parametrize("schema,root,body", MESSAGES, ids=IDS)
def test_fullest_and_smallest_documents_round_trip(schema: str, root: str,
                                                   body: str | None) -> None:
    for chooser in (samples.full, samples.minimal):
        doc = samples.document(schema, root, body, chooser, random.Random(7))
        assert exi.decode(schema, exi.encode(schema, doc)) == doc


def test_every_protocol_has_its_messages() -> None:
    names = {s: {b or r for _s, r, b in MESSAGES if _s == s} for s in exi.SCHEMAS}
    assert names["SAP"] == {"supportedAppProtocolReq", "supportedAppProtocolRes"}
    dc_flow_din = {"SessionSetup", "ServiceDiscovery", "ServicePaymentSelection",
                   "ContractAuthentication", "ChargeParameterDiscovery", "CableCheck",
                   "PreCharge", "PowerDelivery", "CurrentDemand", "WeldingDetection",
                   "SessionStop"}
    assert {m + d for m in dc_flow_din for d in ("Req", "Res")} <= names["DIN"]
    dc_flow_iso2 = dc_flow_din - {"ServicePaymentSelection", "ContractAuthentication"} | {
        "PaymentServiceSelection", "Authorization", "ServiceDetail", "MeteringReceipt"}
    assert {m + d for m in dc_flow_iso2 for d in ("Req", "Res")} <= names["ISO2"]
    cm = {"SessionSetup", "AuthorizationSetup", "Authorization", "ServiceDiscovery",
          "ServiceDetail", "ServiceSelection", "ScheduleExchange", "PowerDelivery",
          "SessionStop"}
    assert {m + d for m in cm for d in ("Req", "Res")} <= names["ISO20_CM"]
    dc = {"DC_ChargeParameterDiscovery", "DC_CableCheck", "DC_PreCharge", "DC_ChargeLoop",
          "DC_WeldingDetection"}
    assert {m + d for m in dc for d in ("Req", "Res")} <= names["ISO20_DC"]


def test_documents_are_plain_values_in_schema_order() -> None:
    doc = {"V2G_Message": {"Body": {"CurrentDemandReq": {
        "EVTargetVoltage": {"Value": 4000, "Unit": "V", "Multiplier": -1},
        "DC_EVStatus": {"EVRESSSOC": 55, "EVErrorCode": "NO_ERROR", "EVReady": True},
        "EVTargetCurrent": {"Multiplier": 0, "Unit": "A", "Value": 125},
        "ChargingComplete": False}}, "Header": {"SessionID": bytes(8)}}}
    back = exi.decode("ISO2", exi.encode("ISO2", doc))
    assert back == doc
    body = back["V2G_Message"]["Body"]["CurrentDemandReq"]
    assert list(body) == ["DC_EVStatus", "EVTargetCurrent", "ChargingComplete",
                          "EVTargetVoltage"]  # ISO 15118-2 CurrentDemandReqType order
    assert list(back["V2G_Message"]) == ["Header", "Body"]
