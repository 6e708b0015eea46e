"""SLAC's shell without the wire: opening a modem interface that is missing or not
permitted, the config keys, and the timers that run for tens of seconds (TT_EVSE_SLAC_init,
a silent modem) in virtual time (looptime) on a port in memory, with the same shell as on
the wire (tests/test_v2g_slac_wire.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from board_rig import virtual
from slac_rig import with_modems

from firmware import config as cfg
from firmware import drivers, iso15118
from hal import vehicle_link as vl
from hal.clock import Clock
from hal.v2g import slac as s
from hal.v2g import slac_messages as m
from hal.v2g.slac_link import SlacLinks
from hal.v2g.slac_port import PacketPort, PortError, PortStats
from sim.slac_ev import SimModem

ROOT = Path(__file__).resolve().parent.parent
CONFIG = cfg.load(ROOT / "examples" / "sim.toml")


def test_a_missing_modem_interface_names_it() -> None:
    with pytest.raises(PortError) as err:
        PacketPort("nosuchplc9").open()
    assert err.value.interface == "nosuchplc9"
    assert "no such network interface" in str(err.value)


def test_without_cap_net_raw_the_error_says_so() -> None:
    code = ("import os; from hal.v2g.slac_port import PacketPort, PortError\n"
            "if os.geteuid() == 0: os.setgid(65534); os.setuid(65534)\n"
            "try: PacketPort('plc7').open()\n"
            "except PortError as e: print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.startswith("plc7: ") and "CAP_NET_RAW" in out.stdout, out


def test_a_modem_the_driver_cannot_open_stops_the_start_naming_its_key() -> None:
    config = replace(CONFIG, vehicle_link=replace(CONFIG.vehicle_link, driver="iso15118"),
                     extra={**CONFIG.extra, "iso15118": {"connector": [
                         {"evse_id": 1, "interface": "lo", "address": "::1", "sdp_port": 0},
                         {"evse_id": 2, "interface": "lo", "address": "::1", "sdp_port": 0,
                          "modem_interface": "nosuchplc9"}]}})
    links = drivers.build("vehicle_link", config, Clock(), drivers.Wires())

    async def main() -> None:
        await links.start(lambda c, link: None)

    with pytest.raises(drivers.HardwareMissing) as err:
        asyncio.run(main())
    assert err.value.key == "iso15118.connector[1].modem_interface"
    assert "nosuchplc9" in str(err.value) and "no such network interface" in str(err.value)


# --- the shell's timers in virtual time ------------------------------------------------------

class MemoryPort:
    """A modem interface in memory: what the shell sends is kept; frames are handed in."""

    def __init__(self, interface: str) -> None:
        self.interface = interface
        self.mac = b"\x02\x00\x00\x00\x00\x0a"
        self.stats = PortStats()
        self.sent: list[m.Frame] = []
        self.on_frame: Callable[[m.Frame], None] = lambda f: None

    def start(self, on_frame: Callable[[m.Frame], None]) -> None:
        self.on_frame = on_frame

    def send(self, frame: m.Frame) -> bool:
        self.sent.append(m.parse(frame.pack()))
        return True

    def close(self) -> None:
        pass


def test_no_ev_within_tt_evse_slac_init_hands_the_core_a_lost_link() -> None:
    """ISO 15118-3 Table A.1: TT_EVSE_SLAC_init (20-50 s; we wait the 50 s) from B with
    5 % PWM; then the core gets LinkLost (its vehicle_comm_lost: safe state, cleared on
    unplug); unplug resets SLAC and the next plug-in starts with a fresh key."""
    links_seen: list[tuple[int, vl.VehicleLink, float]] = []
    ports: list[MemoryPort] = []

    async def body() -> None:
        clock = Clock(virtual=True)

        def port(name: str) -> MemoryPort:
            ports.append(MemoryPort(name))
            return ports[-1]

        links = SlacLinks({1: "plc1"}, clock, port)
        links.open(lambda c, link: links_seen.append((c, link, clock.now())))
        modem = SimModem()
        p = ports[0]
        t0 = clock.now()
        links.follow_pilot(1, "B", 5.0)
        for frame in [f for f in p.sent]:
            for reply in modem.on_frame(frame):
                p.on_frame(reply)
        first_key = modem.key
        await clock.sleep(49.9)
        assert links_seen == [] and links.connectors[1].stage is s.Stage.LISTENING
        await clock.sleep(0.2)
        assert [c for c, _, _ in links_seen] == [1]
        assert links_seen[0][2] - t0 == pytest.approx(50.0, abs=0.01)
        lost = await links_seen[0][1].receive()
        assert isinstance(lost, vl.LinkLost) and "SLAC" in lost.reason
        assert "CM_SLAC_PARM" in lost.reason
        # The core's answer: not available (100 %): SLAC leaves; then the unplug.
        links.follow_pilot(1, "B", 100.0)
        for frame in p.sent[-1:]:
            modem.on_frame(frame)
        assert modem.key != first_key and links.connectors[1].matcher is None
        links.follow_pilot(1, "A", 100.0)
        links.follow_pilot(1, "B", 5.0)  # the next truck
        assert p.sent[-1].mmtype == m.CM_SET_KEY | m.REQ
        modem.on_frame(p.sent[-1])
        assert modem.key not in (first_key, None) and len(links_seen) == 1

    virtual(body)


def test_a_silent_modem_fails_the_plug_in_once_and_only_once() -> None:
    seen: list[int] = []
    ports: list[MemoryPort] = []

    async def body() -> None:
        clock = Clock(virtual=True)
        links = SlacLinks({2: "plc2"}, clock, lambda n: ports.append(MemoryPort(n)) or ports[-1])
        links.open(lambda c, link: seen.append(c))
        links.follow_pilot(2, "B", 5.0)
        await clock.sleep(5.0)
        sets = [f for f in ports[0].sent if f.mmtype == m.CM_SET_KEY | m.REQ]
        assert len(sets) == s.SET_KEY_TRIES and seen == [2]
        links.follow_pilot(2, "C", 5.0)  # still plugged at 5 %: no second report
        await clock.sleep(60.0)
        assert seen == [2]
        assert links.connectors[2].counters.records[-1].outcome == "failed"

    virtual(body)


# --- the [iso15118] modem_interface key -------------------------------------------------------

@pytest.mark.parametrize("name, why", [
    ("lo", "loopback has no PLC modem"), ("eth/1", "not a network interface name"),
    ("eth 1", "not a network interface name"), ("x" * 16, "at most 15"),
])
def test_a_bad_modem_interface_is_a_config_error_naming_the_key(name: str, why: str) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        iso15118.section(with_modems([{"evse_id": 1, "interface": "plc1",
                                       "modem_interface": name}]))
    assert "iso15118.connector[0].modem_interface" in str(err.value)
    assert why in str(err.value)


def test_a_bad_modem_address_is_a_config_error() -> None:
    with pytest.raises(cfg.ConfigError) as err:
        iso15118.section(with_modems([{"evse_id": 1, "interface": "plc1",
                                       "modem_interface": "plc1",
                                       "modem_address": "00:b0:52:00:01"}]))
    assert "iso15118.connector[0].modem_address" in str(err.value)
    links = iso15118.build(with_modems([{"evse_id": 1, "interface": "plc1",
                                         "modem_interface": "plc1",
                                         "modem_address": "00:13:D7:11:00:01"}]),
                           Clock(), drivers.HardwareMissing)
    assert links.slac.modem_macs == {1: bytes.fromhex("0013d7110001")}


def test_one_modem_per_connector() -> None:
    with pytest.raises(cfg.ConfigError) as err:
        iso15118.section(with_modems([
            {"evse_id": 1, "interface": "plc1", "modem_interface": "plc1"},
            {"evse_id": 2, "interface": "plc2", "modem_interface": "plc1"}]))
    assert "iso15118.connector[0].modem_interface" in str(err.value)
    assert "one modem per connector" in str(err.value)


def test_without_a_modem_interface_no_slac_runs_and_sdp_is_served_at_once() -> None:
    links = iso15118.build(with_modems([{"evse_id": 1, "interface": "lo", "address": "::1"}]),
                           Clock(), drivers.HardwareMissing)
    assert links.slac.modems == {} and links.admit(1)
    links.follow_pilot(1, "B", 5.0, 0.0)  # nothing to start
    assert links.admit(1)
