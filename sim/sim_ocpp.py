"""OCPP in a simulated run: the station on the simulated controller, and the local CSMS
(sim/csms) unless ``--csms URL`` names an external one.

The local CSMS accepts the tokens listed in ``[ocpp.local_csms] tokens`` of the config
(``"TOKEN"`` or ``"TOKEN:GROUP"``); the scenario's ``authorize N rfid TOKEN`` presents the
card at the bay (Authorize to the CSMS), ``authorize N app TOKEN`` makes the CSMS send
RequestStartTransaction, ``csms down`` / ``csms up`` cut and restore the CSMS.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from firmware.config import ChargerConfig
from firmware.ocpp import settings as ocpp_settings
from firmware.ocpp.v201.station import Station
from sim.csms import LocalCsms, Token
from sim.world import SimWorld


class SimOcpp:
    def __init__(self, world: SimWorld, config: ChargerConfig,
                 say: Callable[[str], None] | None, csms_url: str | None) -> None:
        section = dict(config.extra["ocpp"])
        local = section.pop("local_csms", {})
        self.settings = ocpp_settings.parse(section)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if "state_dir" not in section:  # a fresh station for every simulated run
            self._tmp = tempfile.TemporaryDirectory(prefix="chargebay-ocpp-")
            self.settings = replace(self.settings, state_dir=self._tmp.name)
        self.world = world
        self.say = say
        self.csms: LocalCsms | None = None
        if csms_url is None:
            tokens = {}
            for entry in local.get("tokens", []):
                token, _, group = str(entry).partition(":")
                tokens[token] = Token("Accepted", group or None)
            self.csms = LocalCsms(world.clock, tokens)
        else:
            self.settings = replace(self.settings, csms_url=csms_url)
        self.station: Station | None = None
        self._remote_ids = 0

    async def start(self) -> None:
        if self.csms is not None:
            await self.csms.up()
            self.settings = replace(self.settings, csms_url=self.csms.url)
        clock = self.world.clock
        self.station = Station(self.world.controller, self.settings, clock, say=self.say,
                               ping_interval=None if clock.virtual else 30.0)
        await self.station.start()
        await self._until(lambda: self.station is not None and self.station.online.is_set(),
                          60.0)

    async def stop(self) -> None:
        if self.station is not None:
            await self.station.stop()
        if self.csms is not None:
            await self.csms.down()
        if self._tmp is not None:
            self._tmp.cleanup()

    async def _until(self, done: Callable[[], bool], seconds: float) -> bool:
        clock = self.world.clock
        end = clock.now() + seconds
        while not done():
            if clock.now() >= end:
                return False
            await clock.sleep(0.1)
        return True

    async def authorize(self, evse_id: int, source: str, token: str) -> None:
        assert self.station is not None
        if source == "app" and self.csms is not None:
            self._remote_ids += 1
            session = self.station.station_id
            result = await self.csms.send(session, "RequestStartTransaction", {
                "idToken": {"idToken": token, "type": "Central"},
                "remoteStartId": self._remote_ids, "evseId": evse_id})
            if self.say:
                self.say(f"CSMS: RequestStartTransaction {token} -> {result.get('status')}")
            return
        decision = await self.station.authorization.present_card(evse_id, token)
        if self.say:
            self.say(f"bay {evse_id} card reader: {decision.message}")

    async def csms_switch(self, up: bool) -> None:
        if self.csms is None:
            return
        if up:
            await self.csms.up()
        else:
            await self.csms.down()
        if self.say:
            self.say(f"CSMS {'back' if up else 'down'}")

    async def settle(self) -> None:
        """Give the queue a chance to drain before the report (if the CSMS is up)."""
        station = self.station
        if station is None or (self.csms is not None and self.csms._server is None):
            return
        await self._until(lambda: station.online.is_set() and len(station.queue) == 0, 120.0)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.station is not None:
            out["queued"] = len(self.station.queue)
            out["bad_frames"] = self.station.link.bad_frames if self.station.link else 0
        if self.csms is not None:
            events = self.csms.messages("TransactionEvent")
            out["transaction_events"] = len(events)
            out["event_types"] = {t: sum(e["eventType"] == t for e in events)
                                  for t in ("Started", "Updated", "Ended")}
            out["status_notifications"] = len(self.csms.messages("StatusNotification"))
        return out
