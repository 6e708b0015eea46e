"""The serial IO board driver against the simulated board over a pty, in virtual time."""

from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path
from typing import Any

import pytest
from board_rig import Rig, virtual

from firmware import config as cfg
from hal.clock import Clock
from hal.io_board_serial import IoBoardError, SerialIoBoard
from hal.mcu import frame
from sim import scenario as sc
from sim.runner import run


def test_whole_session_over_the_pty() -> None:
    config = cfg.load(Path(__file__).parent.parent / "examples" / "sim.toml")
    assert config.io_board.driver == "serial"  # the real driver, on the simulator's pty
    outcome = run(config, sc.parse(
        "plug 1 scania-bev soc=30\nauthorize 1 rfid 04A1\nwait 1 Charging timeout=2m\n"
        "sleep 2m\nstop 1 Local\nwait 1 Finished timeout=1m\nunplug 1\n"
        "wait 1 Available timeout=30s\n"), None)
    report = outcome.report()
    assert "error" not in report and report["safety_violations"] == 0
    world = outcome.world
    assert world.charger is not None and isinstance(world.charger.io, SerialIoBoard)
    stats = world.charger.io.stats
    assert stats.frames_in > 100 and stats.frames_dropped == 0 and stats.link_losses == 0
    assert world.io.board.decoder.frames > 100 and world.io.board.decoder.dropped == 0
    session = report["sessions"][0]  # type: ignore[index]
    assert session["stop_reason"] == "Local" and session["energy_kwh"] > 0


def test_garbage_both_ways_is_dropped_counted_and_the_link_goes_on() -> None:
    async def body() -> dict[str, Any]:
        rig = Rig()
        await rig.start()
        rig.board.uart.write(b"\x13\x37garbage\x00\x05\x05\x05\x00" + bytes(range(1, 200)))
        rig.board.hold_time()
        rig.board.wire.write(b"\x00\xff\xfe\x01\x00junk")  # type: ignore[union-attr]
        await rig.sleep(0.3)
        rig.board.port(1).set_pilot("B")  # still answered after both glitches
        rig.host.set_lock(1, True)
        await rig.sleep(0.5)
        out = {"host_dropped": rig.host.stats.frames_dropped,
               "board_dropped": rig.board.board.decoder.dropped,
               "inputs": rig.host.inputs(1), "faults": rig.host.take_faults()}
        await rig.close()
        return out

    out = virtual(body)
    assert out["host_dropped"] >= 2 and out["board_dropped"] >= 1
    assert out["inputs"].pilot == "B" and out["inputs"].lock_locked
    assert out["faults"] == []


def test_board_silent_is_reported_once_then_the_link_comes_back() -> None:
    async def body() -> tuple[list[str], list[str], bool, list[str]]:
        rig = Rig()
        await rig.start()
        board = rig.board
        assert board._task is not None
        board._task.cancel()  # the MCU hangs (before its watchdog would reset it)
        await rig.sleep(1.0)
        first = rig.host.take_faults()
        await rig.sleep(1.0)
        second = rig.host.take_faults()
        board._task = asyncio.create_task(board._run())
        await rig.sleep(0.5)
        rig.host.set_lock(1, True)
        await rig.sleep(0.5)
        back = rig.host.inputs(1).lock_locked
        third = rig.host.take_faults()
        await rig.close()
        return first, second, back, third

    first, second, back, third = virtual(body)
    assert first == ["io_board_link_lost"]
    assert second == []
    assert back
    assert third == []


def test_unacknowledged_command_is_sent_again() -> None:
    async def body() -> tuple[int, bool, int]:
        rig = Rig()
        await rig.start()
        board = rig.board
        assert board._task is not None
        board._task.cancel()  # the board's loop stalls for 120 ms
        rig.host.set_lock(1, True)
        await rig.sleep(0.12)
        board.uart.fifo.clear()  # and what it missed meanwhile is lost
        board._task = asyncio.create_task(board._run())
        await rig.sleep(0.5)
        out = rig.host.stats.retries, rig.host.inputs(1).lock_locked, len(rig.host._pending)
        await rig.close()
        return out

    retries, locked, pending = virtual(body)
    assert retries >= 1
    assert locked
    assert pending == 0


def test_protocol_version_mismatch_refuses_to_start() -> None:
    async def body() -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        loop = asyncio.get_running_loop()
        decoder = frame.Decoder()

        def board_answers() -> None:  # an MCU speaking protocol 9
            for seq, mtype, _ in decoder.feed(os.read(master, 4096)):
                if mtype == frame.HELLO:
                    os.write(master, frame.encode(1, frame.HELLO_ACK, bytes([seq, 9, 0, 9, 0, 1])))

        loop.add_reader(master, board_answers)
        host = SerialIoBoard((1,), os.ttyname(slave), Clock())
        try:
            await host.start(0.0)
        finally:
            loop.remove_reader(master)
            await host.close()
            os.close(master)
            os.close(slave)

    with pytest.raises(IoBoardError, match="protocol 9"):
        asyncio.run(body())  # real time: this fake board does not hold virtual time


def test_repeated_frame_is_acknowledged_again_but_applied_once() -> None:
    async def body() -> int:
        rig = Rig()
        await rig.start()
        retry = frame.encode(200, frame.SET_CONTACTORS, bytes([1, 1]))  # no lock: refused
        assert rig.board.wire is not None
        for _ in range(2):
            rig.board.wire.write(retry)
            await rig.sleep(0.05)
        conn: Any = rig.firmware()
        await rig.close()
        return int(conn.refused_closes)

    assert virtual(body) == 1


def test_board_end_closed_is_link_lost_without_spinning() -> None:
    async def body() -> tuple[list[str], int]:
        rig = Rig()
        await rig.start()
        assert rig.board._task is not None
        rig.board._task.cancel()
        asyncio.get_running_loop().remove_reader(rig.board.master)
        os.close(rig.board.master)  # the board's end of the wire is gone
        await rig.sleep(1.0)
        faults = rig.host.take_faults()
        frames = rig.host.stats.frames_in
        rig.board.master = os.open(os.devnull, os.O_RDONLY)  # so close() has an fd to close
        await rig.close()
        return faults, frames

    faults, frames = virtual(body)
    assert faults == ["io_board_link_lost"]
    assert frames > 0
