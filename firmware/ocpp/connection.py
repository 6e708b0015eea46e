"""The websocket connection to the CSMS, for any OCPP-J version: URL, security profiles,
and the reconnect loop with its back-off.

Security profiles (OCPP 2.0.1 Part 2 A00.FR.2xx-4xx; the 1.6 Security Whitepaper has
the same three): 1 basic auth over ws://, 2 basic auth over TLS with the CSMS's
certificate checked against ``ca_file``, 3 TLS with a client certificate. The version
names itself only through the websocket subprotocol (``ocpp2.0.1``, ``ocpp1.6``).

    loop = ConnectionLoop(settings, station_id, "ocpp2.0.1", clock, backoff, serve,
                          ping_interval=30.0)
    await loop.run()      # forever; cancel the task that runs it to stop

``serve(connection)`` runs one connection until it ends and returns True when the next
connection should be tried at once (a Reset), False to wait ``backoff(0)`` first.
"""

from __future__ import annotations

import logging
import random
import ssl
from base64 import b64encode
from collections.abc import Awaitable, Callable
from typing import Any

import websockets

from firmware.ocpp.settings import OcppSettings
from hal.clock import Clock

log = logging.getLogger("chargebay.ocpp")

# The largest frame taken from the CSMS; a larger one closes the connection (1009) before
# it is buffered. Four times the largest BytesPerMessage the station announces (65000),
# room for a certificate chain; with websockets' receive queue of 16 frames the CSMS can
# make the station hold at most 4 MiB.
MAX_FRAME_BYTES = 256 * 1024
RECEIVE_QUEUE_FRAMES = 16

Serve = Callable[[Any], Awaitable[bool]]
Backoff = Callable[[int], float]


def csms_url(settings: OcppSettings, station_id: str) -> str:
    """OCPP-J: the charging station's identity is the last path segment."""
    return settings.csms_url.rstrip("/") + "/" + station_id


def connect_kwargs(settings: OcppSettings, station_id: str, subprotocol: str,
                   ping_interval: float | None) -> dict[str, Any]:
    kw: dict[str, Any] = {"subprotocols": [subprotocol], "open_timeout": 10,
                          "ping_interval": ping_interval, "max_size": MAX_FRAME_BYTES,
                          "max_queue": RECEIVE_QUEUE_FRAMES}
    if settings.security_profile in (1, 2) and settings.basic_auth_password:
        secret = b64encode(f"{station_id}:{settings.basic_auth_password}".encode()).decode()
        kw["additional_headers"] = {"Authorization": f"Basic {secret}"}
    if settings.security_profile >= 2:
        context = ssl.create_default_context(cafile=settings.ca_file)
        if settings.security_profile == 3 and settings.client_cert:
            context.load_cert_chain(settings.client_cert, settings.client_key)
        kw["ssl"] = context
    return kw


def retry_backoff(attempt: int, minimum: int, spread: int, repeat: int) -> float:
    """2.0.1 RetryBackOffWaitMinimum / RandomRange / RepeatTimes: the wait doubles up to
    RepeatTimes, plus a random part so a whole hub does not reconnect at one instant."""
    return float(minimum * 2 ** min(attempt, repeat) + random.uniform(0, spread))


class ConnectionLoop:
    def __init__(self, settings: OcppSettings, station_id: str, subprotocol: str,
                 clock: Clock, backoff: Backoff, serve: Serve,
                 ping_interval: float | None = 30.0,
                 on_connect_error: Callable[[BaseException], None] | None = None) -> None:
        self.settings = settings
        self.station_id = station_id
        self.subprotocol = subprotocol
        self.clock = clock
        self.backoff = backoff
        self.serve = serve
        self.ping_interval = ping_interval
        self.on_connect_error = on_connect_error  # the version's security events

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                connection = await self.clock.hold(websockets.connect(
                    csms_url(self.settings, self.station_id),
                    **connect_kwargs(self.settings, self.station_id, self.subprotocol,
                                     self.ping_interval)))
            except (OSError, websockets.InvalidHandshake, TimeoutError) as exc:
                if self.on_connect_error is not None:
                    self.on_connect_error(exc)
                wait = self.backoff(attempt)
                log.info("CSMS not reachable (%s); retry in %.0f s", exc, wait)
                attempt += 1
                await self.clock.sleep(wait)
                continue
            attempt = 0
            try:
                again_now = await self.serve(connection)
            finally:
                await connection.close()
            if not again_now:
                await self.clock.sleep(self.backoff(0))
