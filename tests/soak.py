"""``make soak [STEPS=N KILLS=K FUZZ=F]``: the safety harness on a long profile.

- steps: rule steps of the stateful machines (test_safety_stateful.BaySafety and
  test_billing_stateful.BillingUnderOutages, both checking the OCPP billing ledger),
  run as many hypothesis examples as it takes; a failing example counts as a violation
  and is printed (add it to the regression tests when fixing it).
- kills: controller processes killed with SIGKILL mid-session (the power-loss harness,
  tests/power_loss.py when present); it reports lost events.
- fuzz: bad inputs fed to every receive path we have: CAN frames to the power-stage
  driver, mutated and random config files, random bytes to the IO-board frame decoder,
  random frames to the OCPP receive path (each part when it exists), and replies of a
  hostile central system to the station's own CALLs (``_fuzz_replies``: shapes, types,
  times; each one must come back as a checked payload or a CallFailed, never an
  exception, and no time it carries may move the wall clock out of its limits).

Prints one JSON line: {"steps", "kills", "bad_inputs", "violations", "lost_events",
"csms_replies": {fed, accepted, refused, callerrors, unknown_ids, times_refused}}.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

STEPS_PER_EXAMPLE = 50


def soak_steps(steps: int) -> tuple[int, int]:
    """Returns (steps run, violations found): three quarters on the safety machine, a
    quarter on the billing machine (test_billing_stateful), both with the OCPP ledger."""
    billing = steps // 4
    done, bad = _soak_machine("test_safety_stateful", "BaySafety", steps - billing)
    if bad:
        return done, bad
    more, bad = _soak_machine("test_billing_stateful", "BillingUnderOutages", billing)
    return done + more, bad


def _soak_machine(module: str, name: str, steps: int) -> tuple[int, int]:
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import invariant, run_state_machine_as_test

    machine = getattr(importlib.import_module(module), name)
    counted = {"steps": 0}

    class Counted(machine):  # type: ignore[misc, valid-type]
        @invariant()
        def count_step(self) -> None:
            counted["steps"] += 1

    # Examples vary in length; run batches until the requested step count is reached.
    while counted["steps"] < steps:
        left = steps - counted["steps"]
        try:
            run_state_machine_as_test(Counted, settings=settings(
                max_examples=max(1, math.ceil(left / STEPS_PER_EXAMPLE)),
                stateful_step_count=STEPS_PER_EXAMPLE, deadline=None, database=None,
                suppress_health_check=list(HealthCheck)))
        except Exception:  # a counterexample: print it and count it
            traceback.print_exc(file=sys.stderr)
            return counted["steps"], 1
    return counted["steps"], 0


def soak_fuzz(count: int) -> tuple[int, int]:
    """Feeds ``count`` bad inputs in total, split over the receive paths that exist.
    Returns (inputs fed, crashes)."""
    import random

    parts = [p for p in (_fuzz_can, _fuzz_config, _optional("fuzz_serial"),
                         _optional("fuzz_ocpp"), _optional("fuzz_modules"),
                         _fuzz_replies)
             if p is not None]
    share = max(1, count // len(parts))
    fed = crashes = 0
    rng = random.Random(20261122)
    for part in parts:
        try:
            fed += part(share, rng)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            crashes += 1
    return fed, crashes


def _optional(name: str) -> Any:
    """A fuzz part another module provides (tests/fuzz_parts.py), once it exists."""
    try:
        module = importlib.import_module("fuzz_parts")
    except ImportError:
        return None
    return getattr(module, name, None)


def _fuzz_can(n: int, rng: Any) -> int:
    import can
    from test_safety_fuzz import _cabinet, _run

    from hal import infypower as ip

    sim_bus, bus, rogue, bank, stage = _cabinet()
    try:
        now = _run(bank, stage, 0.0, 0.5)
        for i in range(n):
            if rng.random() < 0.5:
                arb = rng.getrandbits(29)
            else:  # addressed to us from a module: reaches the payload decoder
                arb = ip.make_id(ip.Header(rng.choice(list(ip.Cmd)), ip.CONTROLLER,
                                           rng.randrange(10), error=rng.randrange(2)))
            data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(9)))
            rogue.send(can.Message(arbitration_id=arb, data=data, is_extended_id=True))
            if i % 50 == 49:
                now = _run(bank, stage, now, 0.1)
        # A spoofed fault status takes a module out until its real status has been clean
        # for the hold-off.
        from hal.power_stage_can import FAULT_HOLDOFF_S
        _run(bank, stage, now, FAULT_HOLDOFF_S + 4.0)
        if stage.available_modules() != 10:
            raise AssertionError("modules lost after a CAN storm")
    finally:
        for b in (sim_bus, bus, rogue):
            b.shutdown()
    return n


def _fuzz_config(n: int, rng: Any) -> int:
    import tempfile

    from test_safety_fuzz import EXAMPLE

    from firmware import config as cfg

    text = EXAMPLE.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "charger.toml"
        for _ in range(n):
            chars = list(text)
            for _ in range(rng.randrange(1, 6)):  # a few random edits of a valid file
                pos = rng.randrange(len(chars))
                chars[pos] = chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x110000)
                                             if rng.random() < 0.1 else 48]))
            path.write_bytes("".join(chars).encode("utf-8", "surrogatepass"))
            try:
                cfg.load(path)
            except cfg.ConfigError as exc:
                if not exc.key:
                    raise AssertionError(f"config error without a key: {exc}") from None
    return n


REPLY_FIGURES: dict[str, int] = {}


def _fuzz_replies(n: int, rng: Any) -> int:
    """A hostile CSMS answering the station's CALLs (firmware/ocpp/link.py call_raw with
    the 2.0.1 reply checks): mutated good replies, wrong types, odd times, CALLERRORs,
    results for other ids. Figures in REPLY_FIGURES."""
    import asyncio

    return asyncio.run(_fuzz_replies_async(n, rng))


_REQUESTS: dict[str, dict[str, Any]] = {
    "BootNotification": {"reason": "PowerUp", "chargingStation": {"model": "m",
                                                                   "vendorName": "v"}},
    "Heartbeat": {},
    "StatusNotification": {"timestamp": "2026-12-01T00:00:00.000Z",
                           "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    "TransactionEvent": {"eventType": "Updated", "timestamp": "2026-12-01T00:00:00.000Z",
                         "triggerReason": "MeterValuePeriodic", "seqNo": 1,
                         "transactionInfo": {"transactionId": "t-1"}},
    "Authorize": {"idToken": {"idToken": "04A1", "type": "ISO14443"}},
}
_GOOD: dict[str, dict[str, Any]] = {
    "BootNotification": {"currentTime": "2026-12-01T00:00:00Z", "interval": 300,
                         "status": "Accepted"},
    "Heartbeat": {"currentTime": "2026-12-01T00:00:00Z"},
    "StatusNotification": {},
    "TransactionEvent": {"idTokenInfo": {"status": "Accepted"}, "totalCost": 1.5},
    "Authorize": {"idTokenInfo": {"status": "Accepted",
                                  "cacheExpiryDateTime": "2026-12-02T00:00:00Z"}},
}
_TIMES = ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z",
          "2026-12-01T10:00:00+05:00", "2026-12-01T10:00:00", "2026-12-01", "yesterday",
          "2026-13-45T99:99:99Z", "", "9999-12-31T23:00:00-05:00", "2027-01-01T00:00:00Z"]


def _odd(rng: Any, depth: int = 0) -> Any:
    pick = rng.randrange(12)
    if pick == 0 and depth < 3:
        return {rng.choice(["status", "x", "idTokenInfo", "currentTime"]): _odd(rng, depth + 1)}
    if pick == 1 and depth < 3:
        return [_odd(rng, depth + 1) for _ in range(rng.randrange(3))]
    return rng.choice([None, True, 0, -1, 2**63, 1.5e308, float("nan"), "Accepted",
                       "x" * rng.randrange(2000), rng.choice(_TIMES), {}, []])


def _mutated(action: str, rng: Any) -> Any:
    reply: Any = json.loads(json.dumps(_GOOD[action]))
    for _ in range(rng.randrange(4)):
        where = rng.randrange(5)
        if where == 0:
            return _odd(rng)  # not even an object
        target = reply
        if isinstance(reply, dict) and "idTokenInfo" in reply and rng.random() < 0.5:
            target = reply["idTokenInfo"]
        if not isinstance(target, dict):
            break
        key = rng.choice([*target.keys(), "currentTime", "interval", "status", "extra"]
                         if target else ["status"])
        target[key] = rng.choice([_odd(rng), rng.choice(_TIMES)])
    return reply


async def _fuzz_replies_async(n: int, rng: Any) -> int:
    import asyncio

    from firmware.ocpp import wall_clock
    from firmware.ocpp.link import CallFailed
    from firmware.ocpp.v201.link import Link
    from hal.clock import Clock

    figures = dict.fromkeys(("fed", "accepted", "refused", "callerrors", "unknown_ids",
                             "times_refused"), 0)

    class Wire:
        link: Any = None

        async def send(self, text: str) -> None:
            msg = json.loads(text)
            if msg[0] != 2:
                return
            action, msg_id = msg[2], msg[1]
            roll = rng.random()
            if roll < 0.05:
                frame = json.dumps([4, msg_id, "InternalError", "bad day", {}])
            elif roll < 0.07:
                frame = json.dumps([3, "someone-else", _GOOD[action]])  # then silence
            else:
                frame = json.dumps([3, msg_id, _mutated(action, rng)])
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self.link.route_message(frame)))

    wire = Wire()
    link = Link("FUZZ", wire, Clock(1.0), object(), response_timeout=0.02)
    wire.link = link
    wall = wall_clock.WallClock(lambda: 0.0)
    for _ in range(n):
        action = rng.choice(list(_REQUESTS))
        figures["fed"] += 1
        try:
            reply = await link.call_raw(action, _REQUESTS[action])
        except CallFailed as exc:
            figures["callerrors" if "InternalError" in exc.reason else "refused"] += 1
            continue
        figures["accepted"] += 1
        info = reply.get("idTokenInfo")
        if info is not None and not (isinstance(info, dict) and isinstance(
                info.get("status"), str)):
            raise AssertionError(f"a malformed idTokenInfo passed: {info!r:.200}")
        if "currentTime" in reply:
            if wall.offer(reply["currentTime"], action) is not None:
                figures["times_refused"] += 1
            now = wall.now()
            if not (wall_clock.EARLIEST <= now < wall_clock.LATEST and now.tzinfo):
                raise AssertionError(f"wall clock moved to {now!r} by {reply!r:.200}")
    figures["unknown_ids"] = link.unknown_results
    figures["refused"] = link.bad_replies
    REPLY_FIGURES.update(figures)
    return n


def soak_kills(kills: int) -> tuple[int, int]:
    """Returns (kills done, lost events)."""
    if kills <= 0:
        return 0, 0
    try:
        power_loss = importlib.import_module("power_loss")
    except ImportError:
        print("soak: no power-loss harness yet (tests/power_loss.py); kills skipped",
              file=sys.stderr)
        return 0, 0
    done, lost = power_loss.kill_cycles(kills)
    return int(done), int(lost)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="soak")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--fuzz", type=int, default=2000)
    args = p.parse_args(argv)
    logging.disable(logging.CRITICAL)  # drivers and the ocpp package log every bad input
    started = time.perf_counter()
    steps, violations = soak_steps(args.steps)
    fed, crashes = soak_fuzz(args.fuzz)
    kills, lost = soak_kills(args.kills)
    print(f"soak: {time.perf_counter() - started:.1f} s wall", file=sys.stderr)
    print(json.dumps({"steps": steps, "kills": kills, "bad_inputs": fed,
                      "violations": violations + crashes, "lost_events": lost,
                      "csms_replies": REPLY_FIGURES}))
    return 1 if violations or crashes or lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
