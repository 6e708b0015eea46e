"""ISO 15118 / DIN SPEC 70121 on the wire: the charger's side (SECC).

- ``v2gtp``: the V2G transfer protocol header (ISO 15118-2 clause 7.8.3, -20 payload types);
- ``sdp``: SECC discovery on UDP 15118 (ISO 15118-2 clause 7.10.1);
- ``tls``: the server's TLS context from config;
- ``handshake``: supportedAppProtocol, the protocol chosen by our priority;
- ``classic`` (DIN, ISO-2), ``iso20``, ``iso20_ev``: documents <-> VehicleLink dataclasses;
- ``secc``: the pure SECC machine (sessions, sequence checks, response codes, timers);
- ``server``: the thin asyncio shell, the ``iso15118`` vehicle-link driver;
- ``slac`` (pure matcher), ``slac_messages``, ``slac_port`` (raw AF_PACKET socket),
  ``slac_link`` (per connector, started by the pilot, gates the SECC): ISO 15118-3;
- ``exi``: the EXI codec (its own part, see docs).
"""
