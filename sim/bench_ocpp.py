"""OCPP figures for ``make bench``.

- ocpp_queue_drain_s: wall time for the real station to deliver 10,000 queued
  TransactionEvents to the local CSMS on 127.0.0.1 after it connects (each one a CALL
  and its CALLRESULT, in order, one at a time as OCPP-J requires), counted from the
  BootNotification being accepted to the queue being empty.
- ocpp_msgs_per_s: those messages per second.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from firmware import config as cfg
from firmware.clock import Clock
from firmware.ocpp import settings as ocpp_settings
from firmware.ocpp.v201.station import Station
from sim.csms import LocalCsms
from sim.world import SimWorld

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "sim.toml"
EVENTS = 10_000


def _event(seq: int) -> dict[str, Any]:
    return {"eventType": "Updated", "timestamp": "2026-11-22T08:00:00.000Z",
            "triggerReason": "MeterValuePeriodic", "seqNo": seq, "offline": True,
            "transactionInfo": {"transactionId": "bench-1", "chargingState": "Charging"},
            "meterValue": [{"timestamp": "2026-11-22T08:00:00.000Z", "sampledValue": [
                {"value": 1000.0 + seq, "measurand": "Energy.Active.Import.Register",
                 "context": "Sample.Periodic", "unitOfMeasure": {"unit": "Wh"}}]}]}


async def _drain(events: int) -> dict[str, float]:
    config = cfg.load(CONFIG)
    section = {k: v for k, v in config.extra["ocpp"].items() if k != "local_csms"}
    with tempfile.TemporaryDirectory() as tmp:
        settings = replace(ocpp_settings.parse(section), state_dir=tmp)
        world = SimWorld(config, Clock(1.0))
        await world.start()
        csms = LocalCsms(world.clock)
        await csms.up()
        station = Station(world.controller, replace(settings, csms_url=csms.url), world.clock,
                          ping_interval=None)
        for seq in range(events):  # what a long offline period left behind
            station.queue.append("TransactionEvent", _event(seq))
        await station.start()
        while not station.online.is_set():
            await asyncio.sleep(0.001)
        started = time.perf_counter()
        while len(station.queue):
            await asyncio.sleep(0.005)
        drain_s = time.perf_counter() - started
        delivered = len(csms.messages("TransactionEvent"))
        await station.stop()
        await csms.down()
        await world.close()
    return {"ocpp_queue_drain_s": round(drain_s, 2),
            "ocpp_msgs_per_s": round(delivered / drain_s, 1), "ocpp_delivered": delivered}


def measure(events: int = EVENTS) -> dict[str, float]:
    return asyncio.run(_drain(events))


if __name__ == "__main__":
    print(measure())
