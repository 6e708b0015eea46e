"""The InfyPower driver against simulated modules on a python-can virtual bus."""

from __future__ import annotations

import pytest
from can_rig import ADDR, Cabinet

from hal.power_stage import Mode


@pytest.fixture
def cab() -> Cabinet:
    c = Cabinet()
    yield c  # type: ignore[misc]
    c.close()


def test_discovery_and_split(cab: Cabinet) -> None:
    assert cab.stage.available_modules() == 10
    cab.stage.assign(1, 10)
    cab.stage.set_output(1, Mode.CHARGE, 800.0, 400.0, cab.now)
    cab.run(0.2)
    mods = [cab.bank.module(a) for a in ADDR]
    assert all(m.group == 1 and m.on for m in mods)
    assert all(m.current_setpoint_a == pytest.approx(40.0) for m in mods)
    cap = cab.stage.capability(1)
    assert cap.modules == 10 and cap.max_power_w == 400_000


def test_cable_check_is_clamped_to_2a(cab: Cabinet) -> None:
    cab.stage.assign(1, 10)
    cab.stage.set_output(1, Mode.CABLE_CHECK, 935.0, 300.0, cab.now)
    cab.run(0.2)
    total = sum(cab.bank.module(a).current_setpoint_a for a in ADDR)
    assert total == pytest.approx(2.0)


def test_two_outputs_share_and_reassign(cab: Cabinet) -> None:
    cab.stage.assign(1, 5)
    cab.stage.assign(2, 5)
    cab.run(0.2)
    groups = [cab.bank.module(a).group for a in ADDR]
    assert groups.count(1) == 5 and groups.count(2) == 5
    cab.stage.assign(2, 0)
    cab.stage.assign(1, 10)
    cab.run(0.2)
    assert [cab.bank.module(a).group for a in ADDR].count(1) == 10


def test_module_lost_then_back(cab: Cabinet) -> None:
    cab.stage.assign(1, 10)
    cab.stage.set_output(1, Mode.CHARGE, 800.0, 450.0, cab.now)
    cab.run(0.5)
    cab.bank.fail(3)
    cab.run(4.0)
    faults = cab.stage.take_faults()
    assert [(f.output, f.code) for f in faults] == [(1, "module_lost")]
    assert cab.stage.available_modules() == 9
    assert cab.stage.capability(1).modules == 9
    cab.stage.set_output(1, Mode.CHARGE, 800.0, 450.0, cab.now)
    cab.run(0.2)
    assert cab.bank.module(0).current_setpoint_a == pytest.approx(50.0)  # 450 A / 9
    assert cab.stage.take_faults() == []  # reported once
    cab.bank.recover(3)
    cab.run(2.0)
    assert cab.stage.available_modules() == 10


def test_module_fault_bit_takes_it_out(cab: Cabinet) -> None:
    cab.stage.assign(1, 10)
    cab.bank.set_fault(4, "fault")
    cab.run(2.5)
    assert [f.code for f in cab.stage.take_faults()] == ["module_fault"]
    assert cab.stage.capability(1).modules == 9


def test_derating_lowers_capability(cab: Cabinet) -> None:
    cab.stage.assign(1, 10)
    cab.bank.set_derating(0, 0.5)
    cab.run(3.0)  # status shows DERATING -> capability re-read
    assert cab.stage.capability(1).max_power_w == pytest.approx(380_000)


def test_off_switches_modules_off(cab: Cabinet) -> None:
    cab.stage.assign(1, 10)
    cab.stage.set_output(1, Mode.CHARGE, 800.0, 100.0, cab.now)
    cab.run(0.2)
    cab.stage.set_output(1, Mode.OFF, 800.0, 100.0, cab.now)
    cab.run(0.2)
    assert not any(cab.bank.module(a).on for a in ADDR)
    assert all(cab.bank.module(a).current_setpoint_a == 0 for a in ADDR)
