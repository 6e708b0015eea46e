"""Tariff arithmetic (firmware/bay/tariff.py): properties over random tariffs and
sessions, the default ad-hoc figures by hand, and the [tariff] section's errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.bay import tariff as t
from firmware.config import ConfigError

prices = st.decimals(min_value=0, max_value=5, places=4)
currencies = st.sampled_from([t.Currency("EUR", 2), t.Currency("ISK", 0),
                              t.Currency("XBH", 3)])
tariffs = st.builds(t.Tariff, currencies, st.decimals(min_value=0, max_value="0.3",
                                                      places=3),
                    prices, prices, prices, prices, st.integers(0, 7200))
usages = st.builds(t.Usage, st.floats(0, 2e6), st.floats(0, 86400), st.floats(0, 86400),
                   st.booleans())


@given(tariffs, usages)
def test_never_negative_and_everything_adds_up(tariff: t.Tariff, usage: t.Usage) -> None:
    c = t.cost(tariff, usage)
    q = tariff.currency.quantum
    assert c.net >= 0 and c.vat >= 0 and c.total >= 0
    assert all(p.net >= 0 for p in c.components)
    assert sum((p.net for p in c.components), Decimal(0)) == c.net  # components add up
    assert c.net + c.vat == c.total  # net + VAT = total, exactly
    for amount in (c.net, c.vat, c.total, *(p.net for p in c.components)):
        assert amount == amount.quantize(q)  # every figure in whole minor units
    if not usage.started:
        assert c.total == 0 and c.components == ()


@given(tariffs, usages)
def test_rounding_is_half_up_once_per_component(tariff: t.Tariff, usage: t.Usage) -> None:
    c = t.cost(tariff, usage)
    q = tariff.currency.quantum
    for p in c.components:
        exact = p.quantity * p.unit_price
        assert abs(p.net - exact) <= q / 2  # never more than half a minor unit off
    assert abs(c.vat - c.net * tariff.vat_rate) <= q / 2


@given(tariffs, st.floats(0, 1e6), st.floats(0, 1e6))
def test_more_energy_never_costs_less(tariff: t.Tariff, a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert t.cost(tariff, t.Usage(lo)).total <= t.cost(tariff, t.Usage(hi)).total


def test_default_ad_hoc_tariff_by_hand() -> None:
    card = t.parse(None).for_method(t.Method.CARD)
    c = t.cost(card, t.Usage(energy_wh=300_000.4, charging_s=2700))
    # 300.000 kWh x 0.399 = 119.70; + 1.99 = 121.69 net; 19 % VAT = 23.1211 -> 23.12
    assert [(p.name, p.net) for p in c.components] == [("energy", Decimal("119.70")),
                                                       ("session", Decimal("1.99"))]
    assert (c.net, c.vat, c.total) == (Decimal("121.69"), Decimal("23.12"),
                                       Decimal("144.81"))
    assert c.as_json() == {"currency": "EUR", "components": {"energy": "119.70",
                                                             "session": "1.99"},
                           "net": "121.69", "vat": "23.12", "total": "144.81"}


def test_half_a_cent_rounds_up() -> None:
    tariff = t.Tariff(t.Currency(), Decimal("0"), Decimal("0.5"), Decimal(0))
    assert t.cost(tariff, t.Usage(energy_wh=9)).net == Decimal("0.00")  # 0.0045 -> 0.00
    assert t.cost(tariff, t.Usage(energy_wh=10)).net == Decimal("0.01")  # 0.005 -> 0.01


def test_occupation_fee_only_after_the_grace_time() -> None:
    tariff = t.Tariff(t.Currency(), Decimal(0), Decimal(0), Decimal(0),
                      occupation_per_minute=Decimal("0.10"), occupation_grace_s=3600)
    assert t.cost(tariff, t.Usage(occupied_s=3600)).net == 0
    assert t.cost(tariff, t.Usage(occupied_s=3600 + 600)).net == Decimal("1.00")
    assert t.parse(None).for_method(t.Method.CARD).occupation_per_minute == 0  # off


def test_per_minute_of_charging() -> None:
    tariff = t.Tariff(t.Currency(), Decimal(0), Decimal(0), Decimal(0), Decimal("0.05"))
    assert t.cost(tariff, t.Usage(charging_s=45 * 60)).net == Decimal("2.25")


def test_methods_override_the_ad_hoc_prices() -> None:
    ts = t.parse({"per_kwh": 0.399, "rfid": {"per_kwh": "0.59", "per_session": 0}})
    assert ts.for_source("payment").per_kwh == Decimal("0.399")
    assert ts.for_source("rfid").per_kwh == Decimal("0.59")
    assert ts.for_source("rfid").per_session == 0
    assert ts.for_source("app").per_session == Decimal("1.99")


def test_currency_minor_units() -> None:
    assert t.Currency("EUR", 2).to_minor(Decimal("199")) == 19900
    assert t.Currency("ISK", 0).to_minor(Decimal("1234.5")) == 1235
    assert t.parse({"currency": "CHF", "vat_percent": 8.1}).currency == t.Currency("CHF", 2)


@pytest.mark.parametrize(("data", "key"), [
    ({"per_kwh": -0.1}, "tariff.per_kwh"),
    ({"per_kwh": True}, "tariff.per_kwh"),
    ({"per_kwh": "cheap"}, "tariff.per_kwh"),
    ({"vat_percent": 60}, "tariff.vat_percent"),
    ({"currency": "eur"}, "tariff.currency"),
    ({"currency": "XYZ"}, "tariff.minor_units"),
    ({"rfid": {"per_kwh": -1}}, "tariff.rfid.per_kwh"),
    ({"per_kwhh": 1}, "tariff.per_kwhh"),
])
def test_bad_tariff_is_a_config_error_naming_the_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        t.parse(data)
    assert err.value.key == key
