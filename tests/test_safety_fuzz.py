"""Bad input never crashes: the CAN receive path and the config loader under fuzzing.

(The IO-board serial link and the OCPP receive path are fuzzed with their own tests.)
"""

from __future__ import annotations

import asyncio
import copy
import math
import tomllib
import uuid
from pathlib import Path
from typing import Any

import can
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from firmware import config as cfg
from firmware.ocpp.settings import OcppSettingsError
from hal import infypower as ip
from hal.power_stage import Mode
from hal.power_stage_can import FAULT_HOLDOFF_S, InfyPowerStage
from sim.power_modules import ModuleBank

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sim.toml"
ADDR = tuple(range(10))
KW: dict[str, Any] = dict(rating_w=40_000.0, min_voltage_v=150.0, max_voltage_v=1000.0,
                          max_current_a=100.0)

# --- CAN ------------------------------------------------------------------------------------

frames = st.lists(st.tuples(st.integers(0, (1 << 29) - 1), st.binary(max_size=8)),
                  min_size=1, max_size=60)
# Frames that look like they come from a module to us, so they pass the address check
# and reach the payload decoder.
module_frames = st.lists(st.tuples(
    st.sampled_from(list(ip.Cmd)), st.sampled_from(ADDR), st.booleans(), st.binary(max_size=8)),
    min_size=1, max_size=60)


def _cabinet() -> tuple[can.BusABC, can.BusABC, can.BusABC, ModuleBank, InfyPowerStage]:
    channel = f"fuzz-{uuid.uuid4().hex[:8]}"
    sim_bus = can.Bus(interface="virtual", channel=channel)
    bus = can.Bus(interface="virtual", channel=channel)
    rogue = can.Bus(interface="virtual", channel=channel)
    bank = ModuleBank(sim_bus, ADDR, **KW)
    stage = InfyPowerStage(bus, ADDR, outputs=(1, 2), **KW)
    asyncio.run(stage.start(0.0))
    return sim_bus, bus, rogue, bank, stage


def _run(bank: ModuleBank, stage: InfyPowerStage, start: float, seconds: float) -> float:
    now = start
    while now < start + seconds - 1e-9:
        now += 0.1
        bank.step(now, 0.1)
        stage.poll(now)
    return now


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random=frames, spoofed=module_frames)
def test_random_can_traffic_never_crashes_the_power_stage(
        random: list[tuple[int, bytes]], spoofed: list[tuple[ip.Cmd, int, bool, bytes]]) -> None:
    sim_bus, bus, rogue, bank, stage = _cabinet()
    try:
        now = _run(bank, stage, 0.0, 0.5)
        stage.assign(1, 5)
        stage.set_output(1, Mode.PRECHARGE, 500.0, 2.0, now)
        now = _run(bank, stage, now, 0.5)
        bad_before = stage.bad_frames + stage.rejected
        for arbitration_id, data in random:
            rogue.send(can.Message(arbitration_id=arbitration_id, data=data,
                                   is_extended_id=True))
        for command, source, error, data in spoofed:
            arb = ip.make_id(ip.Header(command, ip.CONTROLLER, source, error=int(error)))
            rogue.send(can.Message(arbitration_id=arb, data=data, is_extended_id=True))
        now = _run(bank, stage, now, 0.3)  # the driver reads the storm
        assert stage.bad_frames + stage.rejected >= bad_before
        # The real modules keep answering: the output is under control again.
        # A spoofed fault status: switched off and out until its real status has been
        # clean for the hold-off; then the allocation gives the output its modules again.
        now = _run(bank, stage, now, FAULT_HOLDOFF_S + 4.0)
        tele = stage.telemetry(1)
        assert math.isfinite(tele.voltage_v) and math.isfinite(tele.current_a)
        assert stage.available_modules() == len(ADDR)
        stage.assign(1, 5)
        now = _run(bank, stage, now, 0.2)
        # The driver still commands its modules: five on output 1, at the setpoint.
        members = [a for a in ADDR if bank.module(a).group == 1]
        assert len(members) == 5
        assert all(bank.module(a).on and bank.module(a).voltage_setpoint_v == 500.0
                   for a in members)
        stage.set_output(1, Mode.OFF, 0.0, 0.0, now)
    finally:
        for b in (sim_bus, bus, rogue):
            b.shutdown()


def test_garbage_frames_are_counted() -> None:
    sim_bus, bus, rogue, bank, stage = _cabinet()
    try:
        now = _run(bank, stage, 0.0, 0.3)
        before = stage.bad_frames
        arb = ip.make_id(ip.Header(ip.Cmd.READ_OUTPUT, ip.CONTROLLER, 3))
        for _ in range(5):
            rogue.send(can.Message(arbitration_id=arb, data=b"\x01", is_extended_id=True))
        _run(bank, stage, now, 0.2)
        assert stage.bad_frames == before + 5
    finally:
        for b in (sim_bus, bus, rogue):
            b.shutdown()


# --- config ----------------------------------------------------------------------------------

def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


VALID = tomllib.loads(EXAMPLE.read_text())
PATHS = _paths(VALID)
junk = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=3),
    max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(mutations=st.lists(st.tuples(st.sampled_from(PATHS), junk | st.just("<delete>")),
                          min_size=1, max_size=3))
def test_mutated_config_is_accepted_or_names_the_key(
        mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    data = copy.deepcopy(VALID)
    for path, value in mutations:
        parent: Any = data
        try:
            for step in path[:-1]:
                parent = parent[step]
            if value == "<delete>":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    try:
        cfg.parse(data)
    # The [ocpp] section's parser raises its own error (firmware.ocpp.settings does not
    # import the config loader); it names the key and the reason the same way.
    except (cfg.ConfigError, OcppSettingsError) as exc:
        assert exc.key and exc.reason
        assert exc.key.split(".")[0].split("[")[0] in set(VALID) | {"(file)", "(syntax)", ""}


@settings(max_examples=200, deadline=None)
@given(text=st.binary(max_size=300))
@example(text=b"\x80")  # found by this test: not UTF-8 crashed the loader
def test_random_file_contents_give_a_config_error(tmp_path_factory: Any, text: bytes) -> None:
    path = tmp_path_factory.mktemp("cfg") / "charger.toml"
    path.write_bytes(text)
    try:
        cfg.load(path)
    except cfg.ConfigError as exc:
        assert exc.key and exc.reason


def test_serial_link_fuzz_resyncs_and_never_crashes() -> None:
    import random

    from fuzz_parts import fuzz_serial

    assert fuzz_serial(400, random.Random(7)) == 800


def test_ocpp_receive_path_fuzz_one_reply_per_frame() -> None:
    import random

    from fuzz_parts import fuzz_ocpp

    assert fuzz_ocpp(600, random.Random(5)) == 600
