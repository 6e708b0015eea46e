"""Fuzz parts for ``make soak`` (tests/soak.py) that need the IO-board link.

``fuzz_serial``: random bytes with valid frames interleaved go through the frame decoder
(every valid frame comes out, in order: the stream resyncs on the next delimiter), and
well-framed messages with random types and bodies go through the host driver's receive
path (no crash; the inputs it reports stay well-formed).
"""

from __future__ import annotations

import asyncio
import random as _random

from hal.clock import Clock
from hal.io_board_serial import SerialIoBoard
from hal.mcu import frame


def fuzz_serial(n: int, rng: _random.Random) -> int:
    decoder = frame.Decoder()
    sent: list[tuple[int, int, bytes]] = []
    got: list[tuple[int, int, bytes]] = []
    stream = bytearray()
    for i in range(n):
        stream += bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
        if i % 3 == 0:
            msg = (rng.randrange(256), rng.randrange(256),
                   bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 20))))
            sent.append(msg)
            stream += frame.encode(*msg)
        if len(stream) > 512:
            cut = rng.randrange(len(stream))  # arbitrary read boundaries
            got += decoder.feed(bytes(stream[:cut]))
            got += decoder.feed(bytes(stream[cut:]))
            stream.clear()
    got += decoder.feed(bytes(stream) + b"\x00")
    it = iter(got)
    # Garbage may, rarely, form a valid frame too: sent must be a subsequence of got.
    missing = [m for m in sent if not any(g == m for g in it)]
    if missing:
        raise AssertionError(f"{len(missing)} valid frames lost after garbage")

    asyncio.run(_fuzz_driver(n, rng))
    return 2 * n


async def _fuzz_driver(n: int, rng: _random.Random) -> None:
    board = SerialIoBoard((1, 2), "unused", Clock(1.0))  # never started: no port opened
    for _ in range(n):
        mtype = rng.choice([frame.ACK, frame.HELLO_ACK, frame.TELEMETRY, frame.EVENT,
                            rng.randrange(256)])
        body = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 2, 5, 6, 10,
                                                                     rng.randrange(30)])))
        board._receive(rng.randrange(256), mtype, body)
        for c in board.connectors:
            if c in board._status:
                inputs = board.inputs(c)
                if inputs.pilot not in "ABCDEF":
                    raise AssertionError(f"driver reports pilot {inputs.pilot!r}")


def fuzz_ocpp(n: int, rng: _random.Random) -> int:
    """Random frames into the station's receive path (Link.route_message): every frame
    that is not a CALLRESULT/CALLERROR gets exactly one reply, and nothing raises."""
    return asyncio.run(_fuzz_ocpp(n, rng))


class _Wire:
    def __init__(self) -> None:
        self.out: list[str] = []

    async def send(self, text: str) -> None:
        self.out.append(text)

    async def recv(self) -> str:  # pragma: no cover - never read in the fuzz
        raise ConnectionError


class _OneHandler:
    from ocpp.routing import on as _on
    from ocpp.v201 import call_result as _cr

    @_on("Reset")
    def on_reset(self, type: str, **_: object) -> object:
        return self._cr.Reset(status="Rejected")


async def _fuzz_ocpp(n: int, rng: _random.Random) -> int:
    import json

    from firmware.ocpp.v201.link import Link

    wire = _Wire()
    link = Link("FUZZ", wire, Clock(1.0), _OneHandler())
    actions = ["Reset", "GetVariables", "MakeCoffee", "TransactionEvent", "", "Reset"]
    values: list[object] = [None, True, 7, -1.5, "x" * rng.randrange(0, 3000), [], {},
                            {"type": "Immediate"}, {"type": 3}, {"type": "OnIdle", "x": 1}]
    for i in range(n):
        kind = rng.choice([2, 2, 2, 3, 4, 5, "2", None])
        msg_id = rng.choice([f"id-{i}", "", 17, None, "x" * 40, f"id-{i}"])
        frame: object = [kind, msg_id, rng.choice(actions), rng.choice(values)]
        if rng.random() < 0.2:
            frame = frame[: rng.randrange(0, 4)]  # type: ignore[index]
        text = json.dumps(frame)
        if rng.random() < 0.1:
            text = text[: rng.randrange(len(text))]  # cut: not JSON any more
        before = len(wire.out)
        await link.route_message(text)
        is_result = isinstance(frame, list) and len(frame) >= 3 and frame[0] in (3, 4) \
            and isinstance(frame[1], str) and 0 < len(frame[1]) <= 36 and text.endswith("]")
        replies = len(wire.out) - before
        if not is_result and replies != 1:
            raise AssertionError(f"{text[:80]!r} got {replies} replies")
    while not link._response_queue.empty():  # results nobody waited for
        link._response_queue.get_nowait()
    return n


def fuzz_modules(n: int, rng: _random.Random) -> int:
    """Modules that misbehave while an output charges (issue 16): status bits that flap,
    capabilities that lie, readings outside physics, spoofed replies from unknown
    addresses. Never more current commanded than asked for, never a module setpoint above
    its configured rating, a module out of the pool is off (a frame later), nothing
    raises."""
    import math
    import struct

    import can
    from test_power_stage_can import Cabinet

    from hal import infypower as ip
    from hal.power_stage import Mode

    cab = Cabinet()
    rating_a = cab.stage.fallback.max_current_a
    try:
        cab.stage.assign(1, 10)
        out: set[int] = set()
        for _ in range(n):
            target = cab.bank.module(rng.randrange(10))
            match rng.randrange(6):
                case 0:
                    target.status = ip.Status.MODULE_FAULT if rng.random() < 0.5 \
                        else ip.Status(0)
                case 1:
                    target.max_current_a = rng.choice([6553.5, 100.0, 0.1])
                    cab.stage.modules[target.address].capability_at = -1e9
                case 2:
                    v = rng.choice([math.inf, -math.inf, -1e30, 2000.0, 800.0])
                    a = rng.choice([math.inf, -1e30, 6553.0, 40.0])
                    arb = ip.make_id(ip.Header(ip.Cmd.READ_OUTPUT, ip.CONTROLLER,
                                               rng.randrange(256)))
                    cab.sim_bus.send(can.Message(arbitration_id=arb, is_extended_id=True,
                                                 data=struct.pack(">ff", v, a)))
                case _:
                    pass
            cab.run(0.1)
            amps = rng.choice([0.0, 100.0, 450.0, 1000.0])
            cab.stage.set_output(1, Mode.CHARGE, 800.0, amps, cab.now)
            cab.run(0.1)
            now_out = {a for a, m in cab.stage.modules.items() if not m.healthy}
            just_out = now_out - out  # its switch-off frame is on the bus still
            commanded = sum(m.current_setpoint_a for m in cab.bank.modules
                            if m.on and m.address not in just_out)
            if commanded > amps + 0.01:  # (float sums of the shares)
                raise AssertionError(f"{commanded:.1f} A commanded for {amps} A")
            if any(m.current_setpoint_a > rating_a + 1e-6 for m in cab.bank.modules):
                raise AssertionError("a module setpoint above its configured rating")
            if any(cab.bank.module(a).on for a in out & now_out):
                raise AssertionError("a module out of the pool is still on")
            out = now_out
            if cab.stage.available_modules() < 10 and rng.random() < 0.2:
                cab.stage.assign(1, cab.stage.available_modules())
    finally:
        cab.close()
    return n
