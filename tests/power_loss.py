"""The power-loss harness: a real controller process (``chargebay sim`` with the OCPP
station and a persistent state directory) is killed with SIGKILL at random moments
across many charging sessions, restarted, and finally allowed to finish. The central
system runs here, in the parent, and sees everything the station ever sent.

Checks, over everything the CSMS received:
- every transaction has exactly one Started and one Ended; seqNo runs 0..n with no gap
  (a gap is a lost event); a seqNo received twice carries the same event (a resend after
  a crash, allowed at-least-once delivery) - a different event under the same seqNo is a
  repeat;
- a transaction cut by a kill ends with stoppedReason PowerLoss, and its final energy
  register is not below any value sent before;
- registers never run backwards across transactions on a connector: no energy billed
  twice;
- after every restart the connector first reports Available: it comes up safe, no
  session resumes by itself;
- the station's queue is empty at the end (nothing stuck).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = """
plug 1 eactros600 soc={soc}
authorize 1 rfid 04A1B2C3D4E5F6
wait 1 Charging timeout=2m
sleep {minutes}m
stop 1 Local
wait 1 Finished timeout=1m
unplug 1
sleep 20s
"""


@dataclass
class Findings:
    kills: int = 0
    restarts: int = 0
    transactions: int = 0
    lost_events: int = 0
    problems: list[str] = field(default_factory=list)


def _config(state_dir: Path) -> str:
    text = (ROOT / "examples" / "sim.toml").read_text()
    # The in-process vehicle link: this rig is about OCPP persistence across kills, and
    # its kill timing assumes the faster link (tests/test_v2g_wire.py covers the wire).
    text = text.replace('vehicle_link = "wire"', 'vehicle_link = "virtual"')
    return text.replace("security_profile = 1",
                        f'security_profile = 1\nstate_dir = "{state_dir}"')


async def _child(config: Path, scenario: Path, url: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "firmware.cli", "sim", str(scenario), "--speed", "max",
        "--report", "json", "--config", str(config), "--csms", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env)


async def _cycles(kills: int, seed: int, work: Path) -> Findings:
    from hal.clock import Clock
    from sim.csms import LocalCsms, Token

    rng = random.Random(seed)
    config = work / "charger.toml"
    config.write_text(_config(work / "state"))
    scenario = work / "sessions.scenario"
    scenario.write_text("".join(SESSIONS.format(soc=rng.randrange(10, 60),
                                                minutes=rng.randrange(2, 9))
                                for _ in range(4)))
    csms = LocalCsms(Clock(), {"04A1B2C3D4E5F6": Token("Accepted")})
    await csms.up()
    found = Findings()
    boots: list[int] = []
    try:
        for _ in range(kills):
            boots.append(len(csms.received))
            child = await _child(config, scenario, csms.url)
            # Kill at a random moment after this run's first transaction has started, so
            # a slow start (a loaded machine) does not turn a kill into a no-op.
            await _first_started(csms, boots[-1], child, limit_s=20.0)
            await asyncio.sleep(rng.uniform(0.0, 2.7))
            if child.returncode is None:
                child.send_signal(signal.SIGKILL)
                found.kills += 1
            await child.wait()
            found.restarts += 1
        # The last run: no kill; it ends whatever was open, delivers everything, finishes.
        boots.append(len(csms.received))
        scenario.write_text("sleep 2m\n")
        child = await _child(config, scenario, csms.url)
        out, _ = await child.communicate()
        report = json.loads(out or b"{}")
        if report.get("ocpp", {}).get("queued", 1) != 0:
            found.problems.append(f"queue not empty at the end: {report.get('ocpp')}")
    finally:
        await csms.down()
    _check(csms.received, boots, found)
    return found


async def _first_started(csms: Any, since: int, child: asyncio.subprocess.Process,
                         limit_s: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while loop.time() < end and child.returncode is None:
        if any(r.action == "TransactionEvent" and r.payload["eventType"] == "Started"
               for r in csms.received[since:]):
            return
        await asyncio.sleep(0.01)


def energy_register(event: dict[str, Any]) -> float | None:
    """Energy.Active.Import.Register of a TransactionEvent, if it carries one."""
    for mv in event.get("meterValue", []):
        for sv in mv["sampledValue"]:
            if sv["measurand"] == "Energy.Active.Import.Register":
                return float(sv["value"])
    return None


def _check(received: list[Any], boots: list[int], found: Findings) -> None:
    by_tx: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    order: list[str] = []
    for r in received:
        if r.action != "TransactionEvent":
            continue
        tx = r.payload["transactionInfo"]["transactionId"]
        seq = r.payload["seqNo"]
        if tx not in by_tx:
            order.append(tx)
        seen = by_tx[tx].get(seq)
        if seen is not None and seen != r.payload:
            found.problems.append(f"{tx} seqNo {seq} repeated with another event")
        by_tx[tx][seq] = r.payload
    found.transactions = len(by_tx)
    last_register = -1.0
    for tx in order:
        events = by_tx[tx]
        seqs = sorted(events)
        missing = set(range(seqs[-1] + 1)) - set(seqs)
        found.lost_events += len(missing)
        kinds = [events[s]["eventType"] for s in seqs]
        if kinds.count("Started") != 1 or kinds[0] != "Started":
            found.problems.append(f"{tx}: Started {kinds.count('Started')} times")
        if kinds.count("Ended") != 1 or kinds[-1] != "Ended":
            found.problems.append(f"{tx}: Ended {kinds.count('Ended')} times")
            found.lost_events += kinds.count("Ended") == 0
            continue
        registers = [v for s in seqs if (v := energy_register(events[s])) is not None]
        if registers != sorted(registers):
            found.problems.append(f"{tx}: energy register ran backwards {registers}")
        if registers and registers[0] < last_register - 1e-6:
            found.problems.append(f"{tx}: starts at {registers[0]} Wh, below the previous "
                                  f"transaction's {last_register} Wh (billed twice)")
        if registers:
            last_register = registers[-1]
        reason = events[seqs[-1]]["transactionInfo"].get("stoppedReason")
        if reason not in ("PowerLoss", "Local"):
            found.problems.append(f"{tx}: stoppedReason {reason}")
    for start in boots:  # the first status of connector 1 after each (re)boot
        statuses = [r.payload["connectorStatus"] for r in received[start:]
                    if r.action == "StatusNotification" and r.payload["evseId"] == 1]
        if statuses and statuses[0] != "Available":
            found.problems.append(f"connector 1 came up {statuses[0]}")


def kill_cycles(kills: int, seed: int = 1) -> tuple[int, int]:
    """For make soak: (kills done, events lost); problems are printed."""
    with tempfile.TemporaryDirectory(prefix="chargebay-kill-") as tmp:
        found = asyncio.run(_cycles(kills, seed, Path(tmp)))
    for problem in found.problems:
        print(f"power-loss: {problem}", file=sys.stderr)
    return found.kills, found.lost_events + len(found.problems)


def run(kills: int, seed: int, work: Path) -> Findings:
    return asyncio.run(_cycles(kills, seed, work))
