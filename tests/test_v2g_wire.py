"""The SECC on real sockets (::1): V2GTP and SDP bytes, TLS, bad bytes, and whole
sessions of the simulated truck through the real SECC, the real EXI codec and our core,
for DIN, ISO-2 and -20, both bays at once, several in a row."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from firmware import config as cfg
from hal import vehicle_link as vl
from hal.clock import Clock
from hal.v2g import exi, sdp, v2gtp
from hal.v2g.handshake import Protocol
from hal.v2g.secc import SeccSettings
from hal.v2g.server import Endpoint, Iso15118Server
from hal.v2g.tls import TlsSettings, server_context
from sim import scenario as sc
from sim.evcc import WireChannel
from sim.runner import run

CONFIG = cfg.load(Path(__file__).parent.parent / "examples" / "sim.toml")
EV = vl.EvParameters(900.0, 500.0, 400_000.0, 600_000.0, 20.0)
FLOW: list[vl.VehicleRequest] = [
    vl.SessionSetupReq("AABBCCDDEEFF"), vl.ServiceDiscoveryReq(),
    vl.PaymentServiceSelectionReq(), vl.AuthorizationReq(), vl.ChargeParameterDiscoveryReq(EV),
    vl.CableCheckReq(20.0), vl.PreChargeReq(500.0, 2.0), vl.PowerDeliveryReq(True),
    vl.CurrentDemandReq(500.0, 100.0, 20.0, 900.0, 500.0, 400_000.0),
    vl.PowerDeliveryReq(False), vl.WeldingDetectionReq(), vl.SessionStopReq()]


def wire_config(protocols: list[str], ours: list[str] | None = None) -> cfg.ChargerConfig:
    extra = {**CONFIG.extra, "simulator": {**CONFIG.extra["simulator"],
                                           "vehicle_link": "wire",
                                           "truck_protocols": protocols}}
    if ours is not None:
        extra["iso15118"] = {"protocols": ours}
    return replace(CONFIG, extra=extra)


def sessions_of(world: Any) -> list[tuple[int, str]]:
    return list(world.charger.vehicle_links.sessions)


# --- V2GTP and SDP bytes --------------------------------------------------------------------

def test_sdp_request_as_seen_on_the_wire_is_read() -> None:
    request = sdp.parse_request(bytes.fromhex("01fe9000000000021000"))
    assert request == sdp.SdpRequest(sdp.SECURITY_NONE, sdp.TRANSPORT_TCP)


def test_sdp_response_layout() -> None:
    address = socket.inet_pton(socket.AF_INET6, "fe80::1")
    data = sdp.SdpResponse(address, 0xC350, sdp.SECURITY_NONE).pack()
    # header: version, inverse, 0x9001, length 20; then address, port, security, transport
    assert data[:8] == bytes.fromhex("01fe900100000014")
    assert data[8:24] == address and data[24:] == bytes.fromhex("c3501000")


@pytest.mark.parametrize("bad", [
    bytes.fromhex("02fd9000000000021000"),  # version 2
    bytes.fromhex("01fe1234000000021000"),  # unknown payload type
    bytes.fromhex("01fe9000000000031000"),  # length says 3, 2 bytes follow
    bytes.fromhex("01fe90"),  # short
])
def test_bad_v2gtp_headers_are_refused(bad: bytes) -> None:
    with pytest.raises(v2gtp.FramingError):
        sdp.parse_request(bad)


def test_a_huge_length_field_is_refused_before_reading() -> None:
    with pytest.raises(v2gtp.FramingError, match="over the limit"):
        v2gtp.parse_header(struct.pack(">BBHI", 1, 0xFE, 0x8001, 2**31))


def test_tcp_port_comes_from_the_dynamic_range() -> None:
    # ISO 15118-2 7.10.1: 49152-65535.
    from firmware.iso15118 import _free_port
    assert all(49152 <= _free_port("::1") <= 65535 for _ in range(20))


# --- one connection on ::1, with a scripted core ----------------------------------------------

async def _serve(endpoint: Endpoint, answer: Any = None) -> tuple[Iso15118Server, list[str]]:
    server = Iso15118Server((endpoint,), SeccSettings(), Clock(), exi)
    seen: list[str] = []

    async def core(link: vl.VehicleLink) -> None:
        while True:
            req = await link.receive()
            seen.append(type(req).__name__)
            if isinstance(req, vl.LinkLost):
                seen.append(req.reason)
                return
            link.answer(answer(req) if answer else vl.VehicleResponse(
                request=type(req).__name__, present_voltage_v=400.0))

    await server.start(lambda c, link: asyncio.ensure_future(core(link)))
    return server, seen


def _run(main: Any) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(main(), 20.0))
    finally:
        loop.close()


def _ca_and_secc_cert(tmp: Path) -> tuple[Path, Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("V2G Root")).issuer_name(name("V2G Root"))
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(name("SECC CB-0001"))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (tmp / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp / "secc.pem").write_bytes(leaf.public_bytes(pem))
    (tmp / "secc.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return tmp / "ca.pem", tmp / "secc.pem", tmp / "secc.key"


@pytest.mark.parametrize("protocol", list(Protocol))
def test_whole_flow_over_tls_with_a_certificate_from_config(tmp_path: Path,
                                                            protocol: Protocol) -> None:
    ca, cert, key = _ca_and_secc_cert(tmp_path)
    server_tls = server_context(TlsSettings(str(cert), str(key)))
    client_tls = ssl.create_default_context(cafile=str(ca))
    client_tls.check_hostname = False  # the SDP answer is an address, not a name

    async def main() -> tuple[list[str], bool, list[str]]:
        server, seen = await _serve(Endpoint(1, "lo", 0, 0, "::1", server_tls))
        ev = WireChannel(exi, ("::1", server.sdp_servers[1].port, 0), (protocol,),
                         tls=client_tls)
        codes = [(await ev.request(req, 2.0)).code.value for req in FLOW]
        await asyncio.sleep(0.05)
        await server.close()
        return codes, ev.secured, seen

    codes, secured, seen = _run(main)
    assert secured and codes == ["OK"] * len(FLOW)
    assert seen[-2:] == ["LinkLost", "SessionStop"]


def test_tls_required_is_offered_even_to_an_ev_asking_for_none(tmp_path: Path) -> None:
    _, cert, key = _ca_and_secc_cert(tmp_path)
    ctx = server_context(TlsSettings(str(cert), str(key)))

    async def main() -> str:
        server, _ = await _serve(Endpoint(1, "lo", 0, 0, "::1", ctx, tls_required=True))
        ev = WireChannel(exi, ("::1", server.sdp_servers[1].port, 0), (Protocol.ISO20_DC,))
        try:
            await ev.request(FLOW[0], 2.0)
        except Exception as exc:  # noqa: BLE001 - the EV gives up, as it should
            return str(exc)
        finally:
            await server.close()
        return "charged without TLS"

    assert "requires TLS" in _run(main)


def test_bad_bytes_end_the_link_and_the_next_ev_is_served() -> None:
    async def main() -> tuple[list[str], list[str]]:
        server, seen = await _serve(Endpoint(1, "lo", 0, 0, "::1"))
        addr, port, _ = server.bound[1]
        for garbage in (b"\x01\xfe\x80\x01\x00\x00\x00\x04\xde\xad\xbe\xef",  # not EXI
                        b"\x07\x07\x07\x07\x07\x07\x07\x07",  # not V2GTP
                        b"\x01\xfe\x80\x01\x7f\xff\xff\xff"):  # 2 GB promised
            reader, writer = await asyncio.open_connection(addr, port)
            writer.write(garbage)
            assert await reader.read() == b""  # closed by the SECC, nothing answered
            writer.close()
        ev = WireChannel(exi, ("::1", server.sdp_servers[1].port, 0), (Protocol.ISO2,))
        codes = [(await ev.request(req, 2.0)).code.value for req in FLOW]
        await asyncio.sleep(0.05)
        await server.close()
        return codes, seen

    codes, seen = _run(main)
    assert codes == ["OK"] * len(FLOW)
    lost = [seen[i + 1] for i, s in enumerate(seen) if s == "LinkLost"]
    assert len(lost) == 4 and "malformed" in lost[0] and "V2GTP" in lost[1] \
        and "over the limit" in lost[2] and lost[3] == "SessionStop"


# --- the simulated hub on the wire: scenarios through the real SECC ---------------------------

TARGET = """
plug 1 etgx soc=74 target=76
authorize 1 rfid 04A1B2C3D4E5F6
wait 1 Finished timeout=10m
unplug 1
wait 1 Available timeout=1m
"""


@pytest.mark.parametrize("protocol", ["din", "iso2", "iso20_dc"])
def test_a_session_on_the_wire_charges_to_target(protocol: str) -> None:
    outcome = run(wire_config([protocol]), sc.parse(TARGET), None, at_end=sessions_of)
    report = outcome.report()
    assert "error" not in report, report.get("error")
    assert report["safety_violations"] == 0
    (session,) = report["sessions"]
    assert session["stop_reason"] == "StoppedByEV" and session["end_soc"] >= 76.0
    assert session["energy_kwh"] > 5.0
    assert outcome.at_end == [(1, protocol)]


def test_negotiation_on_the_wire_picks_our_priority() -> None:
    outcome = run(wire_config(["din", "iso2", "iso20_dc"], ours=["iso2", "iso20_dc", "din"]),
                  sc.parse(TARGET), None, at_end=sessions_of)
    assert outcome.at_end == [(1, "iso2")]


BOTH_BAYS_IN_A_ROW = "\n".join(
    f"""plug 1 eactros600 soc={20 + i}
plug 2 fh-electric soc={30 + i}
authorize 1 rfid 04A1B2C3D4E5F6
authorize 2 app APP-7781
wait 1 Charging timeout=2m
wait 2 Charging timeout=2m
sleep 30s
stop 1
stop 2
wait 1 Finished timeout=1m
wait 2 Finished timeout=1m
unplug 1
unplug 2
wait 1 Available timeout=1m
wait 2 Available timeout=1m""" for i in range(3))


def test_both_bays_on_the_wire_three_sessions_in_a_row() -> None:
    outcome = run(wire_config(["iso20_dc", "iso2", "din"]), sc.parse(BOTH_BAYS_IN_A_ROW), None,
                  at_end=sessions_of)
    report = outcome.report()
    assert "error" not in report, report.get("error")
    assert report["safety_violations"] == 0
    sessions = report["sessions"]
    assert len(sessions) == 6
    assert all(s["stop_reason"] == "Local" and s["energy_kwh"] > 0.5 for s in sessions)
    assert sorted(outcome.at_end) == [(1, "iso20_dc")] * 3 + [(2, "iso20_dc")] * 3


def test_a_missing_modem_interface_is_one_hardware_missing_naming_its_key() -> None:
    from firmware import drivers

    config = replace(CONFIG, vehicle_link=replace(CONFIG.vehicle_link, driver="iso15118"),
                     extra={**CONFIG.extra, "iso15118": {"connector": [
                         {"evse_id": 1, "interface": "plc1"}, {"evse_id": 2, "interface": "lo",
                                                               "address": "::1"}]}})
    links = drivers.build("vehicle_link", config, Clock(), drivers.Wires())

    async def main() -> None:
        await links.start(lambda c, link: None)

    with pytest.raises(drivers.HardwareMissing) as err:
        _run(main)
    assert err.value.key == "iso15118.connector[0].interface"
    assert "plc1" in str(err.value)


@pytest.mark.parametrize("mode", ["scheduled", "dynamic"])
def test_iso20_control_mode_the_truck_chose_charges_to_target(
        mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The truck on the wire chooses its -20 control mode from the two parameter sets we
    # offer; our core answers each DC_ChargeLoopReq in that mode.
    from hal.v2g import iso20

    seen: list[str] = []
    respond = iso20.respond

    def recording(name: str, resp: vl.VehicleResponse, ctx: Any, code: str) -> Any:
        doc = respond(name, resp, ctx, code)
        if name == "DC_ChargeLoopReq":
            seen.extend(k for k in doc["DC_ChargeLoopRes"] if k.endswith("_DC_CLResControlMode"))
        return doc

    monkeypatch.setattr(iso20, "respond", recording)
    config = wire_config(["iso20_dc"])
    config = replace(config, extra={**config.extra, "simulator": {
        **config.extra["simulator"], "truck_control_mode": mode}})
    outcome = run(config, sc.parse(TARGET), None, at_end=sessions_of)
    report = outcome.report()
    assert "error" not in report, report.get("error")
    (session,) = report["sessions"]
    assert session["stop_reason"] == "StoppedByEV" and session["end_soc"] >= 76.0
    assert session["energy_kwh"] > 5.0
    assert len(seen) > 10 and set(seen) == {f"{mode.capitalize()}_DC_CLResControlMode"}
