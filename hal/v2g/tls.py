"""The SECC's TLS context, from the certificate files named in the config.

ISO 15118-2 clause 7.7.3.2 (TLS 1.2, the SECC authenticates with its certificate; the EV
need not present one), ISO 15118-20 clause 7.7.3 (TLS 1.3, mandatory). DIN SPEC 70121
has no TLS. ``tls_required`` is the -20 rule for real vehicles: we then only offer TLS in
SDP. Certificates are files (PEM): the SECC leaf with its chain, its key, and optionally
the V2G root CAs to check an EV certificate with (mutual TLS in -20).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass


class TlsConfigError(ValueError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TlsSettings:
    certificate: str  # PEM: the SECC certificate followed by its sub-CA chain
    private_key: str  # PEM
    ev_roots: str = ""  # PEM: V2G roots to verify an EV's certificate (optional)
    min_version: str = "1.2"  # "1.2" (ISO 15118-2 clause 7.7.3.2) or "1.3" (-20 only)


def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """A server context; raises TlsConfigError naming the setting that is wrong."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = (ssl.TLSVersion.TLSv1_3 if settings.min_version == "1.3"
                           else ssl.TLSVersion.TLSv1_2)
    try:
        ctx.load_cert_chain(settings.certificate, settings.private_key)
    except FileNotFoundError as exc:
        raise TlsConfigError("certificate", f"cannot read {exc.filename}") from None
    except ssl.SSLError as exc:
        raise TlsConfigError("certificate", f"certificate and key do not load: {exc.reason}"
                             ) from None
    if settings.ev_roots:
        try:
            ctx.load_verify_locations(settings.ev_roots)
        except (FileNotFoundError, ssl.SSLError) as exc:
            raise TlsConfigError("ev_roots", f"cannot load: {exc}") from None
        ctx.verify_mode = ssl.CERT_OPTIONAL
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
