"""Fuzz parts for ``make soak`` (tests/soak.py) that need the IO-board link.

``fuzz_serial``: random bytes with valid frames interleaved go through the frame decoder
(every valid frame comes out, in order: the stream resyncs on the next delimiter), and
well-framed messages with random types and bodies go through the host driver's receive
path (no crash; the inputs it reports stay well-formed).
"""

from __future__ import annotations

import asyncio
import random as _random

from firmware.clock import Clock
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
