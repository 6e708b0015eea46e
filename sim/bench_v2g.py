"""``make bench``, the vehicle link on the wire: the simulated trucks' EVCCs speak EXI over
TCP on ::1 to the real SECC (driver iso15118), both bays charging, real time (speed 1),
one run per protocol (DIN, ISO-2, -20 DC in scheduled and in dynamic control mode).

- v2g_answer_ms[protocol]: at the SECC, from the last byte of a CurrentDemandReq /
  DC_ChargeLoopReq read off the socket to its response written to the socket (decode,
  the machine, the core with its CAN setpoint frames on the bus, encode, one write),
  p50 / p99 / max. Target p99 <= 5 ms (the standards allow 25 ms).
- v2g_round_trip_ms[protocol]: at the EV, request written -> response read and decoded.
- v2g_rss_mb[protocol]: peak resident memory of that protocol's run, in a process of
  its own (the service built in-process, the simulated world and the trucks on the
  wire). The service as operators run it: sim/bench_service.py. Target <= 80 MB.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from firmware import config as cfg
from firmware.core.transitions import Phase
from firmware.service import running
from hal.clock import Clock
from hal.vehicle_link import CurrentDemandReq, VehicleRequest, VehicleResponse
from sim.bench_service import isolated, own_peak_mb
from sim.world import SimWorld

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "sim.toml"
# figure name -> (protocol, the -20 control mode the trucks choose)
RUNS = {"din": ("din", "scheduled"), "iso2": ("iso2", "scheduled"),
        "iso20_dc": ("iso20_dc", "scheduled"), "iso20_dc_dynamic": ("iso20_dc", "dynamic")}


def _wire(config: cfg.ChargerConfig, protocol: str, mode: str) -> cfg.ChargerConfig:
    sim = {**config.extra["simulator"], "vehicle_link": "wire", "truck_protocols": [protocol],
           "truck_control_mode": mode}
    return replace(config, extra={**config.extra, "simulator": sim,
                                  "iso15118": {"protocols": [protocol]}})


async def _one(config: cfg.ChargerConfig, seconds: float) -> dict[str, Any]:
    clock = Clock(1.0)
    world = SimWorld(config, clock)
    round_trips: list[float] = []
    async with running(config, clock, world) as charger:
        await world.until_online()
        for evse, preset in ((1, "eactros600"), (2, "scania-bev")):
            truck = world.plug(evse, preset, 30.0)
            await world.authorize(evse, "rfid", "04A1B2C3D4E5F6")
            ask = truck.channel.request

            async def timed(req: VehicleRequest, timeout_s: float,
                            _ask: Any = ask) -> VehicleResponse:
                start = time.perf_counter()
                resp: VehicleResponse = await _ask(req, timeout_s)
                if isinstance(req, CurrentDemandReq):
                    round_trips.append((time.perf_counter() - start) * 1000.0)
                return resp

            truck.channel.request = timed  # type: ignore[method-assign]
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            await asyncio.sleep(0.5)
        both = all(charger.controller.status(e).phase is Phase.CHARGING for e in (1, 2))
        server: Any = charger.vehicle_links
        answers = [s * 1000.0 for name, s in server.stats.answer_times_s
                   if name == "CurrentDemandReq"]
        late = server.stats.late
    if not both:
        raise RuntimeError("bench_v2g: both connectors should be charging")
    return {"answer": answers, "round_trip": round_trips, "late": late}


def _figures(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(values), 3), "p99": round(p99, 3),
            "max": round(max(values), 3), "samples": len(values)}


def one_run(name: str, seconds: float) -> dict[str, Any]:
    """One run of RUNS and the peak of the process it ran in (run it in its own)."""
    protocol, mode = RUNS[name]
    got = asyncio.run(_one(_wire(cfg.load(CONFIG), protocol, mode), seconds))
    got["rss_mb"] = own_peak_mb()
    return got


def measure(seconds: float = 20.0) -> dict[str, Any]:
    answer: dict[str, Any] = {}
    trip: dict[str, Any] = {}
    late: dict[str, int] = {}
    rss: dict[str, float] = {}
    for name in RUNS:
        got = isolated("sim.bench_v2g:one_run", name, seconds)
        answer[name] = _figures(got["answer"])
        trip[name] = _figures(got["round_trip"])
        late[name] = got["late"]
        rss[name] = got["rss_mb"]
    return {"v2g_answer_ms": answer, "v2g_round_trip_ms": trip,
            "v2g_answers_past_25ms": late, "v2g_rss_mb": rss,
            "v2g_targets": {"answer_p99_ms": 5.0, "rss_mb": 80}}


if __name__ == "__main__":
    print(json.dumps(measure()))
