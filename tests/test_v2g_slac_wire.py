"""SLAC on the wire: the product's raw-socket shell (hal/v2g/slac_port.py, slac_link.py)
against the simulated modem and EV (sim/slac_ev.py) over a veth pair between two network
namespaces the test creates (root needed; skipped with a message elsewhere). Frames go
both ways as bytes; then the SECC, gated by the match, serves the EV's SDP and TCP.
Timers that run for tens of seconds are tested in virtual time (looptime) on a port in
memory, with the same shell."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from slac_rig import Far, Hub, Pair, can_make_namespaces, netns, with_modems

from firmware import config as cfg
from firmware import drivers, iso15118
from hal import vehicle_link as vl
from hal.clock import Clock
from hal.v2g import exi, sdp
from hal.v2g import slac as s
from hal.v2g import slac_messages as m
from hal.v2g.handshake import Protocol
from hal.v2g.slac_link import SlacConnector
from hal.v2g.slac_port import PacketPort
from sim.evcc import WireChannel
from sim.slac_ev import SimEv, SimModem, WireCable

ROOT = Path(__file__).resolve().parent.parent
CONFIG = cfg.load(ROOT / "examples" / "sim.toml")


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    why = can_make_namespaces()
    if why is not None:
        pytest.skip(f"SLAC on the wire needs two network namespaces: {why}")
    with Pair(900 + os.getpid() % 90) as p:
        yield p


def in_evse(pair: Pair, body: Callable[[Far], Awaitable[None]]) -> None:
    """``body(far)`` on a loop of this thread inside the EVSE namespace; ``far`` is the
    EV namespace's loop (its own thread)."""
    far = Far(pair.ev)
    try:
        with netns(pair.secc):
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(asyncio.wait_for(body(far), 60))
            finally:
                loop.close()
    finally:
        far.stop()


async def open_cable(interface: str, refuse_set_key: int = 0) -> WireCable:
    cable = WireCable(interface, SimModem(refuse_set_key=refuse_set_key))
    cable.open()
    cable.start()
    return cable


async def until(done: Callable[[], bool], within_s: float = 5.0) -> bool:
    for _ in range(int(within_s / 0.01)):
        if done():
            return True
        await asyncio.sleep(0.01)
    return done()


def evse_shell(pair: Pair, failed: list[tuple[int, str]],
               data_link: list[bool] | None = None) -> SlacConnector:
    port = PacketPort(pair.secc_if)
    port.open()
    told = data_link if data_link is not None else []
    slac = SlacConnector(1, port, Clock(), lambda c, why: failed.append((c, why)),
                         on_data_link=lambda c, ready: told.append(ready))
    slac.start()
    return slac


async def plug_and_match(slac: SlacConnector, cable: WireCable, far: Far,
                         ev: SimEv) -> bool:
    slac.follow(True)  # the pilot: B with 5 % PWM
    assert await until(lambda: slac.stage is s.Stage.LISTENING), slac.stage
    return await far.do(cable.plug_in(ev))


# --- frames on the wire ----------------------------------------------------------------------

def test_a_match_on_the_wire_gives_the_ev_this_sessions_key(pair: Pair) -> None:
    failed: list[tuple[int, str]] = []
    data_link: list[bool] = []

    async def body(far: Far) -> None:
        cable = await far.do(open_cable(pair.ev_if, refuse_set_key=1))
        slac = evse_shell(pair, failed, data_link)
        try:
            ev = SimEv()
            assert await plug_and_match(slac, cable, far, ev)
            # The core heard matching begin, then D-LINK_READY (its setup timer's start).
            assert data_link == [False, True], data_link
            assert slac.matcher is not None and slac.stage is s.Stage.MATCHED
            key = slac.matcher.key
            assert ev.key == key == cable.modem.key  # modem and EV share the NMK/NID
            assert slac.matcher.ev_mac == ev.mac and ev.evse_mac == slac.port.mac
            assert cable.modem.keys_set == 1  # the first CM_SET_KEY was lost: retried
            assert slac.admit() and slac.stage is s.Stage.JOINED
            kinds = [f.mmtype for f in cable.seen if f.src == slac.port.mac]
            assert kinds.count(m.CM_SET_KEY | m.REQ) == 2
            # The key goes to the modem's management address, never broadcast onto the line.
            assert {f.dst for f in cable.seen if f.mmtype == m.CM_SET_KEY | m.REQ} == {
                bytes.fromhex("00b052000001")}
            assert m.CM_SLAC_PARM | m.CNF in kinds and m.CM_ATTEN_CHAR | m.IND in kinds
            assert kinds[-1] == m.CM_SLAC_MATCH | m.CNF
            assert slac.port.stats.malformed == slac.port.stats.foreign == 0
        finally:
            slac.close()
            await far.do(_close(cable))

    in_evse(pair, body)
    assert failed == []


async def _close(cable: WireCable) -> None:
    cable.close()


async def _hang_up(channel: WireChannel) -> None:
    channel.close("unplugged")


def test_many_sessions_in_a_row_each_with_a_fresh_key_and_unplug_between(
        pair: Pair) -> None:
    failed: list[tuple[int, str]] = []

    async def body(far: Far) -> None:
        cable = await far.do(open_cable(pair.ev_if))
        slac = evse_shell(pair, failed)
        try:
            keys = []
            for n in range(6):
                if n == 3:  # unplugged in the middle of a matching: aborted, reset
                    slac.follow(True)
                    assert await until(lambda: slac.stage is s.Stage.LISTENING)
                    slac.follow(False)
                    continue
                ev = SimEv(mac=bytes([2, 0xEE, 0, 0, 0, n + 1]))
                assert await plug_and_match(slac, cable, far, ev), n
                assert slac.admit()
                assert slac.matcher is not None
                keys.append(slac.matcher.key)
                assert ev.key == slac.matcher.key
                before = cable.modem.keys_set
                slac.follow(False)  # unplugged (A): the modem leaves this network
                assert await until(lambda b=before: cable.modem.keys_set > b)
                assert cable.modem.key != keys[-1]
                assert slac.matcher is None and not slac.admit()
            assert len({k[1] for k in keys}) == len(keys) == 5  # a fresh NMK each time
            assert len({k[0] for k in keys}) == 5
            outcomes = [r.outcome for r in slac.counters.records]
            assert outcomes == ["joined"] * 3 + ["left"] + ["joined"] * 2
            assert slac.counters.started == 6 and slac.counters.failed == 0
        finally:
            slac.close()
            await far.do(_close(cable))

    in_evse(pair, body)
    assert failed == []


def test_garbage_on_the_wire_is_dropped_and_counted_and_the_next_ev_matches(
        pair: Pair) -> None:
    failed: list[tuple[int, str]] = []

    async def body(far: Far) -> None:
        cable = await far.do(open_cable(pair.ev_if))
        slac = evse_shell(pair, failed)
        mac = slac.port.mac
        stranger = b"\x02\xbb\x00\x00\x00\x01"
        head = b"\xff" * 6 + stranger + b"\x88\xe1"
        try:
            slac.follow(True)
            assert await until(lambda: slac.stage is s.Stage.LISTENING)

            async def garbage() -> None:
                send = cable.send_raw
                send(head + b"\x00" + b"\x00" * 45)  # MMV 0: a vendor message, not SLAC
                send(head + b"\x01\x64\x60")  # 17 bytes: no whole header
                send(head + b"\x01\x64\x60\x00\x00\x00")  # CM_SLAC_PARM.REQ, 1-byte body
                send(b"\x02\xcc\x00\x00\x00\x09" + stranger + b"\x88\xe1\x01" + bytes(45))
                send(head[:6] + mac + head[12:] + b"\x01\x64\x60" + bytes(43))  # our echo
                # A run, then a profile with 200 carrier groups (there are 58).
                ev = SimEv(mac=stranger)
                cable.port.send(ev.parm_req())
                cable.port.send(ev.sounding()[0])
                bad = m.Frame(mac, cable.modem.mac, m.CM_ATTEN_PROFILE | m.IND,
                              stranger + bytes([200, 0]) + bytes(50))
                cable.port.send(bad)

            await far.do(garbage())
            stats = slac.port.stats
            assert await until(lambda: stats.malformed == 4 and stats.foreign == 2), stats
            assert slac.counters.errors == 0
            assert await plug_and_match(slac, cable, far, SimEv())
            assert slac.admit()
        finally:
            slac.close()
            await far.do(_close(cable))

    in_evse(pair, body)
    assert failed == []


def test_the_secc_answers_sdp_and_tcp_only_after_a_match(pair: Pair) -> None:
    config = replace(CONFIG, vehicle_link=replace(CONFIG.vehicle_link, driver="iso15118"),
                     extra={**CONFIG.extra, "iso15118": {"protocols": ["din"], "connector": [
                         {"evse_id": 1, "interface": pair.secc_if,
                          "modem_interface": pair.secc_if}]}})
    asked: list[str] = []

    def on_link(connector: int, link: vl.VehicleLink) -> None:
        async def core() -> None:
            while True:
                req = await link.receive()
                asked.append(type(req).__name__)
                if isinstance(req, vl.LinkLost):
                    return
                link.answer(vl.VehicleResponse(type(req).__name__))
        asyncio.get_running_loop().create_task(core())

    async def body(far: Far) -> None:
        links = iso15118.build(config, Clock(), drivers.HardwareMissing)
        cable = await far.do(open_cable(pair.ev_if))
        await links.start(on_link)
        try:
            links.follow_pilot(1, "B", 5.0, 0.0)
            assert await until(lambda: links.slac.connectors[1].stage is s.Stage.LISTENING)
            # Before the match: an EV's SDP request is not answered.
            assert await far.do(sdp_once(pair.ev_if)) is None
            assert links.refused >= 1 and asked == []
            assert await far.do(cable.plug_in(SimEv()))
            channel = await far.do(ev_channel(pair.ev_if))
            answer = await far.do(channel.request(vl.SessionSetupReq("02EE00000001"), 5.0))
            assert answer.code is vl.ResponseCode.OK and asked == ["SessionSetupReq"]
            assert links.slac.connectors[1].stage is s.Stage.JOINED
            links.follow_pilot(1, "A", 100.0, 1.0)  # unplugged: SLAC reset, gate shut
            assert not links.admit(1)
            await far.do(_hang_up(channel))
            assert await until(lambda: asked[-1:] == ["LinkLost"])
        finally:
            await links.close()
            await far.do(_close(cable))

    in_evse(pair, body)


async def sdp_once(interface: str) -> bytes | None:
    scope = socket.if_nametoindex(interface)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, struct.pack("@I", scope))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_sendto(sock, bytes.fromhex("01fe9000000000021000"),
                               ("ff02::1", sdp.SDP_PORT, 0, scope))
        try:
            return await asyncio.wait_for(loop.sock_recv(sock, 100), 0.5)
        except TimeoutError:
            return None


async def ev_channel(interface: str) -> WireChannel:
    return WireChannel(exi, ("ff02::1", sdp.SDP_PORT, socket.if_nametoindex(interface)),
                       (Protocol.DIN,))


def test_both_bays_match_their_own_truck_in_a_row_and_after_a_driver_restart() -> None:
    why = can_make_namespaces()
    if why is not None:
        pytest.skip(f"SLAC on the wire needs network namespaces: {why}")
    with Hub(2) as hub:
        config = with_modems([{"evse_id": bay, "interface": name, "modem_interface": name}
                        for bay, name in ((1, hub.evse_ifs[0]), (2, hub.evse_ifs[1]))])
        fars = [Far(ns) for ns in hub.evs]
        keys: list[tuple[bytes, bytes]] = []

        async def body() -> None:
            cables = [await far.do(open_cable(name)) for far, name in zip(fars, hub.ev_ifs,
                                                                          strict=True)]
            for restart in range(2):  # the service stops and starts again in between
                links = iso15118.build(config, Clock(), drivers.HardwareMissing)
                await links.start(lambda c, link: None)
                slac = links.slac.connectors
                for n in range(3):
                    for bay in (1, 2):
                        links.follow_pilot(bay, "B", 5.0, 0.0)
                    assert await until(lambda c=slac: all(c[b].stage is s.Stage.LISTENING
                                                          for b in (1, 2)))
                    evs = [SimEv(mac=bytes([2, 0xEE, restart, n, bay, 1])) for bay in (1, 2)]
                    assert await fars[0].do(cables[0].plug_in(evs[0]))
                    assert links.admit(1) and not links.admit(2)  # each bay's own gate
                    assert await fars[1].do(cables[1].plug_in(evs[1]))
                    assert links.admit(2)
                    for i, bay in enumerate((1, 2)):
                        matcher = slac[bay].matcher
                        assert matcher is not None and matcher.ev_mac == evs[i].mac
                        assert evs[i].key == matcher.key == cables[i].modem.key
                        keys.append(matcher.key)
                    for bay in (1, 2):
                        links.follow_pilot(bay, "A", 100.0, 0.0)
                await links.close()
            for cable, far in zip(cables, fars, strict=True):
                await far.do(_close(cable))

        try:
            with netns(hub.evse):
                loop = asyncio.new_event_loop()
                try:
                    loop.run_until_complete(asyncio.wait_for(body(), 60))
                finally:
                    loop.close()
        finally:
            for far in fars:
                far.stop()
    assert len(keys) == 12 and len({nmk for _, nmk in keys}) == 12


# --- opening the modem interface ------------------------------------------------------------
