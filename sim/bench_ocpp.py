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
from pathlib import Path
from typing import Any

from firmware import config as cfg
from firmware.ocpp.queue import MessageQueue
from firmware.service import running
from hal.clock import Clock
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
    with tempfile.TemporaryDirectory() as tmp:
        queue = MessageQueue(Path(tmp) / "queue.db")
        for seq in range(events):  # what a long offline period left behind
            queue.append("TransactionEvent", _event(seq))
        queue.close()
        clock = Clock(1.0)
        csms = LocalCsms(clock)
        await csms.up()
        world = SimWorld(config, clock, csms_url=csms.url, state_dir=tmp)
        async with running(config, clock, world) as charger:
            station = charger.station
            while not station.online.is_set():
                await asyncio.sleep(0.001)
            started = time.perf_counter()
            while len(station.queue):
                await asyncio.sleep(0.005)
            drain_s = time.perf_counter() - started
        delivered = len(csms.messages("TransactionEvent"))
        await csms.down()
    return {"ocpp_queue_drain_s": round(drain_s, 2),
            "ocpp_msgs_per_s": round(delivered / drain_s, 1), "ocpp_delivered": delivered}


def measure(events: int = EVENTS) -> dict[str, float]:
    return asyncio.run(_drain(events))


if __name__ == "__main__":
    print(measure())
