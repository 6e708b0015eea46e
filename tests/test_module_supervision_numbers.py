"""charging-facts "DC power modules over CAN": the controller polls telemetry at >= 1 Hz
(modules switch themselves off about 10 s after their last message, so CAN supervision
is not a safety function; a silent module is treated as lost). Counted on the wire, not
read from the driver's constant."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import can
from can_rig import ADDR as CAB
from can_rig import Cabinet

from hal.power_stage_can import InfyPowerStage
from sim.power_modules import ModuleBank

ADDR = tuple(range(4))
READ_VI = 0x03  # InfyPower V1.13: read voltage / current
SECONDS = 10.0


def test_every_module_is_polled_at_least_once_a_second() -> None:
    channel = f"t-{uuid.uuid4().hex[:8]}"
    sim_bus = can.Bus(interface="virtual", channel=channel)
    bus = can.Bus(interface="virtual", channel=channel)
    tap = can.Bus(interface="virtual", channel=channel)
    kw = dict(rating_w=40_000.0, min_voltage_v=150.0, max_voltage_v=1000.0,
              max_current_a=100.0)
    bank = ModuleBank(sim_bus, ADDR, **kw)  # type: ignore[arg-type]
    stage = InfyPowerStage(bus, ADDR, outputs=(1,), **kw)  # type: ignore[arg-type]
    try:
        asyncio.run(stage.start(0.0))
        while tap.recv(timeout=0) is not None:
            pass  # what the start-up sent
        now, dt = 0.0, 0.1
        polls: Counter[int] = Counter()
        while now < SECONDS - 1e-9:
            now += dt
            bank.step(now, dt)
            stage.poll(now)
            while (msg := tap.recv(timeout=0)) is not None:
                command = (msg.arbitration_id >> 16) & 0x3F
                if command == READ_VI and (msg.arbitration_id & 0xFF) == 0xF0:
                    polls[(msg.arbitration_id >> 8) & 0xFF] += 1
        assert min(polls[a] for a in ADDR) >= SECONDS * 1.0 - 1  # >= 1 Hz
    finally:
        for b in (bus, sim_bus, tap):
            b.shutdown()


MODULE_SELF_OFF_S = 10.0  # charging-facts: a module switches itself off ~10 s after silence


def test_a_silent_module_leaves_the_pool_before_it_would_switch_itself_off() -> None:
    """The host's picture is never staler than the module's own supervision: a module
    that stopped answering is counted lost (and out of the allocation) within the ~10 s
    after which it would have switched itself off, and reported once."""
    cab = Cabinet()
    try:
        cab.stage.assign(1, len(CAB))
        cab.stage.take_faults()
        cab.bank.fail(2)
        cab.run(MODULE_SELF_OFF_S - 0.5)
        assert cab.stage.available_modules() == len(CAB) - 1
        assert [f.code for f in cab.stage.take_faults()] == ["module_lost"]
        assert cab.stage.capability(1).modules == len(CAB) - 1
    finally:
        cab.close()


def test_a_derating_module_lowers_the_capability_the_allocation_sees() -> None:
    """Capabilities change at run time (thermal derating): the output's capability
    follows within a few polls, not at the next periodic capability read (10 s)."""
    cab = Cabinet()
    try:
        cab.stage.assign(1, len(CAB))
        full = cab.stage.capability(1).max_power_w
        cab.bank.set_derating(0, 0.5)
        cab.run(3.0)
        assert cab.stage.capability(1).max_power_w == full - 20_000.0  # 40 kW -> 20 kW
    finally:
        cab.close()


def test_a_host_held_up_does_not_blame_the_modules() -> None:
    """Silence is no answer to our asking: a controller whose own loop was held up for
    longer than the timeout (it asked nothing, so nothing came) keeps its modules."""
    cab = Cabinet()
    try:
        cab.stage.assign(1, len(CAB))
        cab.stage.take_faults()
        cab.now += 5.0  # the host held up 5 s: no read sent, none answered
        cab.stage.poll(cab.now)  # its first tick after, before the modules had a turn
        cab.run(2.0)
        assert cab.stage.available_modules() == len(CAB)
        assert cab.stage.take_faults() == []
    finally:
        cab.close()
