"""The composition root and ``chargebay run``: the charger as one service.

- a cabinet file on a machine without that hardware fails with one line naming the
  device and the config key (CAN interface, serial device), never a traceback;
- SIGTERM mid-session (a real ``chargebay run examples/sim.toml`` process, driven through
  its control interface as a truck and a driver would) ends the session in order and
  leaves the OCPP queue consistent: the Ended goes out after the next start, once;
- the ordered stop leaves every connector safe (contactors open, < 60 V, lock released)
  on the physical side, and a power cut does not;
- a brief IO-board link loss at start-up does not leave the bays Faulted;
- an observer that raises never stops the control loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import looptime
import pytest

from firmware import config as cfg
from firmware.core.transitions import Phase
from firmware.drivers import Wires
from firmware.service import running
from hal.clock import Clock
from sim.csms import LocalCsms, Token
from sim.runner import play
from sim.scenario import parse
from sim.world import SimWorld

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CARD = "04A1B2C3D4E5F6"


def _chargebay(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "firmware.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def _fails_with_one_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2 and exactly one line on stderr, naming every one of ``words``."""
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert "Traceback" not in done.stderr


def test_cabinet_without_its_can_interface_fails_with_one_line() -> None:
    if Path("/sys/class/net/can0").exists():
        pytest.skip("this machine has a can0")
    done = _chargebay("run", str(EXAMPLES / "cabinet-400kw.toml"))
    _fails_with_one_line(done, "can0", "power_stage.can_channel")


def test_cabinet_without_its_serial_device_fails_with_one_line(tmp_path: Path) -> None:
    text = (EXAMPLES / "cabinet-400kw.toml").read_text()
    text = text.replace('can_interface = "socketcan"', 'can_interface = "virtual"')
    text = text.replace('/dev/ttyAMA0', str(tmp_path / "ttyNOPE"))
    path = tmp_path / "cabinet.toml"
    path.write_text(text)
    done = _chargebay("run", str(path))
    _fails_with_one_line(done, "ttyNOPE", "io_board.port")


def test_check_config_names_an_unknown_driver(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text((EXAMPLES / "sim.toml").read_text().replace(
        'driver = "infypower"', 'driver = "infypower-v2"'))
    done = _chargebay("check-config", str(path))
    assert done.returncode == 2
    assert "power_stage.driver" in done.stderr and "infypower-v2" in done.stderr


# --- SIGTERM mid-session, a real process ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sim_file(tmp: Path, csms_url: str, control: int) -> Path:
    text = (EXAMPLES / "sim.toml").read_text()
    text = text.replace('csms_url = "ws://127.0.0.1:9000/ocpp"',
                        f'csms_url = "{csms_url}"\nstate_dir = "{tmp / "state"}"')
    text = text.replace('control = "127.0.0.1:7781"',
                        f'control = "127.0.0.1:{control}"\ncsms = "external"')
    path = tmp / "sim.toml"
    path.write_text(text)
    return path


async def _drive(port: int, line: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(line.encode() + b"\n")
    reply = (await reader.readline()).decode().strip()
    writer.close()
    return reply


async def _until_phase(port: int, phase: str, within: float) -> dict[str, Any]:
    end = time.monotonic() + within
    status: dict[str, Any] = {}
    while time.monotonic() < end:
        try:
            status = json.loads(await _drive(port, "status"))
            if status["1"]["phase"] == phase and status["ocpp_online"]:
                return status
        except (OSError, ValueError):
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"connector 1 not {phase} within {within} s: {status}")


def test_sigterm_mid_session_stops_in_order_and_the_next_start_sends_the_ended(
        tmp_path: Path) -> None:
    async def body() -> tuple[list[Any], int, float, str, list[Any]]:
        csms = LocalCsms(Clock(), {CARD: Token("Accepted")})
        await csms.up()
        control = _free_port()
        path = _sim_file(tmp_path, csms.url, control)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "firmware.cli", "run", str(path), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            await _until_phase(control, "Available", 30)
            assert await _drive(control, "plug 1 eactros600 soc=20") == "ok"
            assert await _drive(control, f"authorize 1 rfid {CARD}") == "ok"
            await _until_phase(control, "Charging", 60)
            await asyncio.sleep(1.0)
            await csms.down()  # the Ended cannot go out before the process ends
            child.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            _, err = await asyncio.wait_for(child.communicate(), 40)
            stop_s = time.monotonic() - stopped
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        first_run = [r.payload for r in csms.received if r.action == "TransactionEvent"]
        # The next start, with the CSMS back: the queued Ended goes out, once.
        await csms.up()
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "firmware.cli", "run", str(path), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            end = time.monotonic() + 30
            while time.monotonic() < end and not any(
                    r.action == "TransactionEvent" and r.payload["eventType"] == "Ended"
                    for r in csms.received):
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.wait(), 40)
            await csms.down()
        events = [r.payload for r in csms.received if r.action == "TransactionEvent"]
        return first_run, child.returncode or 0, stop_s, err.decode(), events

    first_run, code, stop_s, err, events = asyncio.run(body())
    assert code == 0, err
    assert "Traceback" not in err
    assert "every connector safe" in err, err
    assert stop_s < 20.0  # charger.STOP_BOUND_S, as docs/architecture.md states
    assert [e["eventType"] for e in first_run][0] == "Started"
    assert not any(e["eventType"] == "Ended" for e in first_run)  # the CSMS was down
    ended = [e for e in events if e["eventType"] == "Ended"]
    assert len(ended) == 1
    tx = first_run[0]["transactionInfo"]["transactionId"]
    assert ended[0]["transactionInfo"]["transactionId"] == tx
    assert ended[0]["transactionInfo"]["stoppedReason"] == "Reboot"  # not PowerLoss
    seqs = [e["seqNo"] for e in events if e["transactionInfo"]["transactionId"] == tx]
    assert sorted(set(seqs)) == list(range(max(seqs) + 1))  # gapless


# --- in one process, virtual time --------------------------------------------------


def virtual(body: Any) -> Any:
    loop = looptime.new_event_loop(start=0.0, noop_cycles=1)
    try:
        return loop.run_until_complete(body())
    finally:
        loop.close()


CONFIG = cfg.load(EXAMPLES / "sim.toml")
CHARGE = f"""
plug 1 eactros600 soc=30
authorize 1 rfid {CARD}
wait 1 Charging timeout=2m
sleep 1m
"""


def test_ordered_stop_leaves_every_connector_safe_a_power_cut_does_not() -> None:
    async def once(cut: bool) -> dict[str, Any]:
        clock = Clock(1.0, virtual=True)
        world = SimWorld(CONFIG, clock)
        async with running(CONFIG, clock, world) as charger:
            await world.until_online()
            await play(world, parse(CHARGE))
            bay = world.io.bays[1]
            assert bay.contactors and bay.lock and world.bays[1].plant.voltage_v > 600
            started = clock.now()
            if cut:
                await charger.cut_power()
            else:
                report = await charger.stop()
                assert report["unsafe"] == []
            stop_s = clock.now() - started
            await clock.sleep(0.5)
            return {"contactors": bay.contactors, "lock": bay.lock, "stop_s": stop_s,
                    "volts": world.bays[1].plant.voltage_v,
                    "reason": charger.controller.status(1).stop_reason,
                    "violations": len(world.monitor.violations)}

    ordered = virtual(lambda: once(False))
    assert not ordered["contactors"] and not ordered["lock"]
    assert ordered["volts"] < 60.0
    assert ordered["reason"] == "Reboot"
    assert ordered["violations"] == 0
    assert ordered["stop_s"] < 12.0  # charger.SESSIONS_STOP_S
    # The control: a power cut leaves the lock where it was (the board's heartbeat rule
    # opens the contactors; the lock stays shut until the controller is back).
    cut = virtual(lambda: once(True))
    assert cut["lock"]


class SilentAtStart(SimWorld):
    """The IO board's MCU does not answer for its first seconds (slow boot)."""

    async def start(self) -> tuple[cfg.ChargerConfig, Wires]:
        wired = await super().start()
        board = self.io
        assert board._task is not None
        board._task.cancel()

        def wake() -> None:
            board._task = asyncio.create_task(board._run())

        self.clock.call_later(3.0, wake)
        return wired


def test_brief_board_link_loss_at_start_does_not_leave_the_bays_faulted() -> None:
    async def body() -> tuple[list[Phase], list[Phase], list[Any]]:
        clock = Clock(1.0, virtual=True)
        world = SilentAtStart(CONFIG, clock)
        async with running(CONFIG, clock, world) as charger:
            await clock.sleep(0.5)  # one tick: the start-up link loss reached the machines
            during = [charger.controller.status(e).phase for e in (1, 2)]
            await clock.sleep(5.0)
            after = [charger.controller.status(e).phase for e in (1, 2)]
            await play(world, parse(CHARGE))
            return during, after, [s.energy_kwh for s in world.sessions]

    during, after, energy = virtual(body)
    assert during == [Phase.FAULTED, Phase.FAULTED]  # link lost at start: safe state
    assert after == [Phase.AVAILABLE, Phase.AVAILABLE]  # and back once it answers
    assert energy[0] > 1.0  # and the bay charges


def test_an_observer_that_raises_never_stops_the_loop(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    def broken(evse_id: int, cmd: object, now: float) -> None:
        raise RuntimeError("reporting broke")

    async def body() -> tuple[Phase, float, int]:
        clock = Clock(1.0, virtual=True)
        world = SimWorld(replace(CONFIG, extra={k: v for k, v in CONFIG.extra.items()
                                                if k != "ocpp"}), clock)
        async with running(world.config, clock, world) as charger:
            charger.controller.observers.insert(0, broken)
            await play(world, parse(CHARGE))
            return (charger.controller.status(1).phase, world.sessions[0].max_current_a,
                    charger.controller.tasks.failures)

    with caplog.at_level(logging.ERROR, logger="chargebay.loop"):
        phase, amps, failures = virtual(body)
    assert phase is Phase.CHARGING and amps > 400
    assert failures == 0
    assert any("reporting broke" in r.getMessage() or r.exc_info for r in caplog.records)
