"""Battery model: OCV curve, charge-current taper, energy bookkeeping, presets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.battery import PRESETS, BatteryModel

PRESET_NAMES = sorted(PRESETS)


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_ocv_strictly_increasing_and_in_range(preset: str) -> None:
    b = BatteryModel.from_preset(preset, 50.0)
    volts = [b.ocv_at(s / 10.0) for s in range(0, 1001)]
    assert all(lo < hi for lo, hi in zip(volts, volts[1:], strict=False))
    # charging-facts.md: pack voltage about 550-850 V
    assert 550.0 <= volts[0] and volts[-1] <= 850.0


@given(
    a=st.floats(0.0, 100.0),
    b=st.floats(0.0, 100.0),
    chemistry=st.sampled_from(["lfp", "nmc"]),
)
def test_ocv_monotone_property(a: float, b: float, chemistry: str) -> None:
    bat = BatteryModel(100.0, 50.0, chemistry=chemistry)  # type: ignore[arg-type]
    if a < b:
        assert bat.ocv_at(a) <= bat.ocv_at(b)


def test_lfp_has_flat_middle() -> None:
    b = BatteryModel.from_preset("eactros600", 50.0)
    plateau = b.ocv_at(80.0) - b.ocv_at(20.0)
    total = b.ocv_full_v - b.ocv_empty_v
    assert plateau < 0.25 * total


def test_terminal_voltage_adds_ir() -> None:
    b = BatteryModel(100.0, 40.0, internal_resistance_ohm=0.05)
    assert b.terminal_voltage(200.0) == pytest.approx(b.ocv() + 10.0)
    assert b.terminal_voltage() == pytest.approx(b.ocv())


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_constant_current_then_linear_taper(preset: str) -> None:
    b = BatteryModel.from_preset(preset, 10.0)
    cc = b.max_current_a
    for soc in (0.0, 10.0, 50.0, 79.9, 80.0):
        assert b.max_charge_current_a(soc) == pytest.approx(cc)
    end = 0.2 * b.capacity_ah
    assert b.max_charge_current_a(99.9999) == pytest.approx(end, rel=1e-3)
    assert b.max_charge_current_a(90.0) == pytest.approx((cc + end) / 2.0)
    taper = [b.max_charge_current_a(80.0 + k * 0.5) for k in range(40)]
    assert all(x > y for x, y in zip(taper, taper[1:], strict=False))
    assert b.max_charge_current_a(100.0) == 0.0
    # the default argument follows the present SoC
    b.soc_percent = 90.0
    assert b.max_charge_current_a() == pytest.approx((cc + end) / 2.0)


def test_taper_never_exceeds_cc_on_a_small_cc_limit() -> None:
    b = BatteryModel(600.0, 90.0, max_current_a=50.0)  # 0.2 C would be ~160 A
    assert b.max_charge_current_a() == pytest.approx(50.0)


@given(
    currents=st.lists(st.floats(0.0, 500.0), min_size=1, max_size=200),
    dt=st.floats(0.01, 5.0),
)
def test_energy_bookkeeping(currents: list[float], dt: float) -> None:
    b = BatteryModel(621.0, 20.0, internal_resistance_ohm=0.04)
    soc0 = b.soc_percent
    terminal_wh = 0.0
    for i in currents:
        terminal_wh += b.terminal_voltage(i) * i * dt / 3600.0
        b.charge(i, dt)
    assert b.stored_wh + b.loss_wh == pytest.approx(terminal_wh, rel=1e-3, abs=1e-9)
    assert b.loss_wh == pytest.approx(sum(i * i * 0.04 * dt for i in currents) / 3600.0)
    # SoC rose by exactly the stored energy
    assert (b.soc_percent - soc0) * 621.0 * 10.0 == pytest.approx(b.stored_wh, abs=1e-6)
    assert b.elapsed_s == pytest.approx(dt * len(currents))


def test_long_charge_bookkeeping_and_soc_rise() -> None:
    b = BatteryModel.from_preset("eactros600", 20.0)
    terminal_wh = 0.0
    for _ in range(45 * 60):  # 45-minute break, 1 s steps, at the EV's limits
        i = min(b.max_charge_current_a(), b.max_power_w / b.terminal_voltage(b.max_current_a))
        terminal_wh += b.terminal_voltage(i) * i / 3600.0
        b.charge(i, 1.0)
    assert b.stored_wh + b.loss_wh == pytest.approx(terminal_wh, rel=1e-3)
    assert b.loss_wh < 0.05 * terminal_wh
    assert 60.0 < b.soc_percent < 80.0  # ~285 kWh into 621 kWh from 20 %


def test_soc_clamped_at_full() -> None:
    b = BatteryModel(1.0, 99.9)
    b.charge(100.0, 3600.0)
    assert b.soc_percent == 100.0


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        BatteryModel(0.0, 50.0)
    with pytest.raises(ValueError):
        BatteryModel(100.0, 120.0)
    with pytest.raises(ValueError):
        BatteryModel(100.0, 50.0, ocv_empty_v=900.0, ocv_full_v=800.0)
    with pytest.raises(ValueError):
        BatteryModel(100.0, 50.0).charge(10.0, -1.0)
    with pytest.raises(KeyError):
        BatteryModel.from_preset("tesla-semi", 50.0)


# charging-facts.md "Heavy trucks": capacity and DC maximum power per truck.
FACTS = {
    "eactros600": (621.0, 400_000.0),
    "fh-electric": (540.0, 250_000.0),
    "etgx": (480.0, 375_000.0),
    "scania-bev": (624.0, 375_000.0),
}


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_presets_plausible(preset: str) -> None:
    capacity, power = FACTS[preset]
    p = PRESETS[preset]
    assert p.capacity_kwh == capacity
    assert p.max_power_w == power
    assert 850.0 <= p.max_voltage_v <= 920.0
    assert 0 < p.max_current_a <= 500.0  # CCS cable limit
    b = BatteryModel.from_preset(preset, 50.0)
    # current limit and power limit agree within 30 %: neither is a dead parameter
    mid_power = b.max_current_a * b.terminal_voltage(b.max_current_a)
    assert 0.7 * power <= mid_power <= 1.3 * power
    # full-current terminal voltage stays below the EV maximum
    assert b.ocv_full_v + b.max_current_a * b.internal_resistance_ohm < p.max_voltage_v


def test_presets_cover_the_facts_and_overrides() -> None:
    assert set(FACTS) <= set(PRESETS)
    # "400 kW into a 650 V pack at a 500 A cable limit gives about 325 kW"
    assert 300_000 < BatteryModel.from_preset("scania-bev", 50.0).max_charge_power_w() < 350_000
    small = BatteryModel.from_preset("etgx", 30.0, capacity_kwh=1.0)
    assert small.capacity_kwh == 1.0 and small.name == "etgx"
