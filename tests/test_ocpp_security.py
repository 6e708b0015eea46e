"""Security profiles 1-3 (OCPP 2.0.1 Part 2, A00): basic auth, TLS with the CSMS
certificate checked against our CA, and TLS with a client certificate. A CA, server and
client certificates are made here for 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import replace
from pathlib import Path

import looptime
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ocpp_rig import CONFIG

from firmware import config as cfg
from firmware.clock import Clock
from firmware.ocpp.settings import OcppSettings
from firmware.ocpp.v201.station import Station
from sim.csms import LocalCsms
from sim.world import SimWorld


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
          issuer_key: ec.EllipticCurvePrivateKey, ca: bool, usage: x509.ObjectIdentifier | None
          ) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def make_pki(d: Path) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("chargebay test CA", ca_key, _name("chargebay test CA"), ca_key, True, None)
    _write(d / "ca", ca, ca_key)
    for name, usage in (("csms", ExtendedKeyUsageOID.SERVER_AUTH),
                        ("station", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(d / name, _cert(name, key, ca.subject, ca_key, False, usage), key)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert("someone else", other_key, _name("someone else"), other_key, True, None)
    _write(d / "other-ca", other, other_key)


def _connect(settings: OcppSettings, csms: LocalCsms, seconds: float = 30.0) -> bool:
    """Whether the station gets its BootNotification accepted within ``seconds``."""
    config = cfg.load(CONFIG)

    async def main() -> bool:
        world = SimWorld(config, Clock(1.0, virtual=True))
        await world.start()
        csms.clock = world.clock
        await csms.up()
        station = Station(world.controller, replace(settings, csms_url=csms.url),
                          world.clock, ping_interval=None)
        await station.start()
        try:
            end = world.clock.now() + seconds
            while not station.online.is_set() and world.clock.now() < end:
                await world.clock.sleep(0.2)
            return station.online.is_set()
        finally:
            await station.stop()
            await csms.down()
            await world.close()

    loop = looptime.new_event_loop(start=0.0, noop_cycles=1)
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def _server_tls(d: Path, client_certs: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # Part 2 A00: TLS 1.2 or higher
    ctx.load_cert_chain(d / "csms.pem", d / "csms.key")
    if client_certs:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(d / "ca.pem")
    return ctx


def test_profile_1_basic_auth(tmp_path: Path) -> None:
    base = OcppSettings(security_profile=1, state_dir=str(tmp_path / "s1"))
    csms = LocalCsms(Clock(), passwords={"CB-SIM-0001": "s3cret-s3cret-16"})
    assert _connect(replace(base, basic_auth_password="s3cret-s3cret-16"), csms)
    csms2 = LocalCsms(Clock(), passwords={"CB-SIM-0001": "s3cret-s3cret-16"})
    assert not _connect(replace(base, basic_auth_password="wrong-wrong-wrong",
                                state_dir=str(tmp_path / "s1b")), csms2, seconds=5)
    assert csms2.refused >= 1


def test_profile_2_tls_server_checked_against_our_ca(tmp_path: Path) -> None:
    make_pki(tmp_path)
    good = OcppSettings(security_profile=2, basic_auth_password="s3cret-s3cret-16",
                        ca_file=str(tmp_path / "ca.pem"), state_dir=str(tmp_path / "s2"))
    csms = LocalCsms(Clock(), ssl_context=_server_tls(tmp_path, False),
                     passwords={"CB-SIM-0001": "s3cret-s3cret-16"})
    assert _connect(good, csms)
    # A CSMS whose certificate our CA did not sign is refused (no boot).
    wrong_ca = replace(good, ca_file=str(tmp_path / "other-ca.pem"),
                       state_dir=str(tmp_path / "s2b"))
    csms2 = LocalCsms(Clock(), ssl_context=_server_tls(tmp_path, False))
    assert not _connect(wrong_ca, csms2, seconds=5)
    assert not csms2.received


def test_profile_3_client_certificate(tmp_path: Path) -> None:
    make_pki(tmp_path)
    settings = OcppSettings(security_profile=3, ca_file=str(tmp_path / "ca.pem"),
                            client_cert=str(tmp_path / "station.pem"),
                            client_key=str(tmp_path / "station.key"),
                            state_dir=str(tmp_path / "s3"))
    csms = LocalCsms(Clock(), ssl_context=_server_tls(tmp_path, True))
    assert _connect(settings, csms)
    # Without a client certificate the CSMS refuses the TLS handshake.
    no_cert = replace(settings, client_cert=None, client_key=None,
                      state_dir=str(tmp_path / "s3b"))
    csms2 = LocalCsms(Clock(), ssl_context=_server_tls(tmp_path, True))
    assert not _connect(no_cert, csms2, seconds=5)



