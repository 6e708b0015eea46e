"""The bay screen machine (firmware/bay/screen.py) through every flow, in simulated time,
and its words (firmware/bay/catalogue.py) in four languages."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from firmware.bay import catalogue as cat
from firmware.bay import screen as sc
from firmware.bay import tariff as tf
from firmware.config import ConfigError
from firmware.core.events import StopReason
from firmware.core.transitions import Phase
from firmware.errors import ErrorCode

TARIFFS = tf.parse(None)
SETTINGS = sc.parse({"support_phone": "+49 800 1234567", "idle_timeout_s": 60,
                     "hint_after_s": 90})


def screen() -> sc.Screen:
    return sc.Screen(SETTINGS, (1, 2))


def bay(evse: int, phase: Phase, **kw: object) -> sc.BayChanged:
    return sc.BayChanged(sc.Bay(evse, phase, **kw))  # type: ignore[arg-type]


def words(s: sc.Screen, now: float) -> dict:
    return cat.render(s.view(now), TARIFFS, Decimal(199), "CB-0001")


def test_home_shows_each_connectors_state() -> None:
    s = screen()
    s.handle(bay(1, Phase.PREPARING), 0)
    s.handle(bay(2, Phase.FAULTED, fault=ErrorCode.ISOLATION_FAULT), 0)
    page = words(s, 0)
    assert page["page"] == "home" and page["locked"]
    assert [(b["evse"], b["state"]) for b in page["bays"]] == [(1, "connected"),
                                                                (2, "out_of_order")]
    states = {p: sc.Bay(1, p).state for p in Phase}
    assert states[Phase.AVAILABLE] is sc.BayState.AVAILABLE
    assert states[Phase.CHARGING] is sc.BayState.CHARGING
    assert states[Phase.FINISHED] is sc.BayState.FINISHED
    assert states[Phase.UNAVAILABLE] is sc.BayState.OUT_OF_ORDER
    assert sc.Bay(1, reserved=True).state is sc.BayState.RESERVED


def card_paid_session(s: sc.Screen) -> float:
    """Plug, select, tariff, pay, approved, waiting, charging; returns the time."""
    s.handle(bay(1, Phase.PREPARING), 0)
    assert s.handle(sc.Tap("select", 1), 1) == []
    assert s.page is sc.Page.TARIFF and not s.locked
    page = words(s, 1)
    assert "€0.399 per kWh" in page["lines"] and "€1.99 per session" in page["lines"]
    assert "incl. 19 % VAT (€0.475 per kWh)" in page["lines"]
    assert s.handle(sc.Tap("pay_card", 1), 2) == [sc.StartPayment(1)]
    assert s.page is sc.Page.PAYING
    s.handle(sc.PaymentAnswer(1, True), 20)
    assert s.page is sc.Page.WAITING
    s.handle(bay(1, Phase.AUTHORIZED), 20.1)
    s.handle(bay(1, Phase.CABLE_CHECK), 25)
    assert s.page is sc.Page.CHARGING
    return 25.0


def test_card_paid_session_from_home_to_finished() -> None:
    s = screen()
    now = card_paid_session(s)
    cost = tf.cost(TARIFFS.for_method(tf.Method.CARD), tf.Usage(150_000, 1800))
    s.handle(bay(1, Phase.CHARGING, energy_wh=150_000, power_w=320_000, soc_percent=62,
                 elapsed_s=1800, cost=cost), now + 1)
    figures = dict(words(s, now + 2)["figures"])
    assert figures == {"Energy": "150.0 kWh", "Power": "320 kW", "Battery": "62 %",
                       "Cost so far": "€73.59", "Time": "0:30:00",
                       "Range added": "125 km"}  # 150 kWh / 1.2 kWh/km
    assert s.handle(sc.Tap("stop", 1), now + 3) == []
    assert s.page is sc.Page.CONFIRM_STOP
    assert s.handle(sc.Tap("confirm", 1), now + 4) == [sc.StopSession(1)]
    s.handle(bay(1, Phase.STOPPING, energy_wh=150_000, cost=cost), now + 5)
    s.handle(bay(1, Phase.FINISHED, energy_wh=150_000, cost=cost,
                 stop_reason=StopReason.LOCAL), now + 8)
    page = words(s, now + 9)
    assert page["page"] == "finished"
    assert page["receipt"] == [["Net", "€61.84"], ["VAT 19 %", "€11.75"],
                               ["Total incl. VAT", "€73.59"]]  # 59.85 + 1.99, 19 %
    assert "Please move your truck when your break is over." in page["lines"]
    s.handle(bay(1, Phase.AVAILABLE), now + 30)
    assert s.page is sc.Page.HOME


def test_stop_needs_confirmation_and_back_keeps_charging() -> None:
    s = screen()
    now = card_paid_session(s)
    s.handle(sc.Tap("stop", 1), now)
    assert s.handle(sc.Tap("back", 1), now + 1) == []
    assert s.page is sc.Page.CHARGING


def test_declined_card_says_so_and_offers_another_card() -> None:
    s = screen()
    s.handle(bay(1, Phase.PREPARING), 0)
    s.handle(sc.Tap("select", 1), 1)
    s.handle(sc.Tap("pay_card", 1), 2)
    s.handle(sc.PaymentAnswer(1, False, "declined"), 10)
    page = words(s, 10)
    assert page["page"] == "declined" and page["title"] == "Payment not accepted"
    assert "Please try another card." in page["lines"]
    assert s.handle(sc.Tap("pay_card", 1), 11) == [sc.StartPayment(1)]  # another card


def test_back_while_the_terminal_is_busy_cancels_the_payment() -> None:
    s = screen()
    s.handle(bay(1, Phase.PREPARING), 0)
    s.handle(sc.Tap("select", 1), 1)
    s.handle(sc.Tap("pay_card", 1), 2)
    assert s.handle(sc.Tap("back", 1), 3) == [sc.CancelPayment(1)]
    assert s.page is sc.Page.TARIFF


def test_paying_does_not_time_out_to_home() -> None:
    s = screen()
    s.handle(bay(1, Phase.PREPARING), 0)
    s.handle(sc.Tap("select", 1), 1)
    s.handle(sc.Tap("pay_card", 1), 2)
    assert s.view(500).page is sc.Page.PAYING  # the terminal answers or times out


def test_unplugged_while_paying() -> None:
    s = screen()
    s.handle(bay(1, Phase.PREPARING), 0)
    s.handle(sc.Tap("select", 1), 1)
    s.handle(sc.Tap("pay_card", 1), 2)
    s.handle(bay(1, Phase.AVAILABLE), 3)
    assert s.page is sc.Page.DECLINED and s.reason == "unplugged"


def test_selecting_an_unplugged_connector_asks_to_connect_first() -> None:
    s = screen()
    s.handle(sc.Tap("select", 2), 0)
    assert s.page is sc.Page.CONNECT_FIRST
    assert "Connect the cable first" in words(s, 0)["lines"][0]
    s.handle(bay(2, Phase.PREPARING), 5)
    assert s.page is sc.Page.TARIFF


def test_rfid_card_flow_accepted_and_refused() -> None:
    s = screen()
    s.handle(bay(1, Phase.PREPARING), 0)
    s.handle(sc.Tap("select", 1), 1)
    s.handle(sc.Tap("rfid", 1), 2)
    assert s.page is sc.Page.TAP_CARD and s.card_target() == 1
    s.handle(sc.CardDecision(1, False, "start", "Blocked"), 3)
    assert s.page is sc.Page.DECLINED and words(s, 3)["title"] == "Card not accepted"
    s.handle(sc.Tap("rfid", 1), 4)
    s.handle(sc.CardDecision(1, True, "start", "Accepted"), 5)
    assert s.page is sc.Page.WAITING


def test_card_target_without_a_selection() -> None:
    s = screen()
    assert s.card_target() is None
    s.handle(bay(2, Phase.PREPARING), 0)
    assert s.card_target() == 2  # the only bay with a cable waiting
    s.handle(bay(1, Phase.CHARGING), 0)
    assert s.card_target() is None  # ambiguous: the driver selects first


def test_hints_when_an_authorized_bay_sees_no_truck() -> None:
    s = screen()
    s.handle(bay(1, Phase.PREPARING), 0)
    s.handle(sc.Tap("select", 1), 1)
    s.handle(sc.Tap("pay_card", 1), 2)
    s.handle(sc.PaymentAnswer(1, True), 10)
    s.handle(bay(1, Phase.AUTHORIZED), 10)
    assert not s.view(10 + 89).hints
    view = s.view(10 + 90)
    assert view.hints and view.page is sc.Page.WAITING  # no idle timeout while waiting
    assert any("+49 800 1234567" in line for line in words(s, 100)["lines"])


def test_idle_timeout_goes_home_locks_and_resets_the_language() -> None:
    s = screen()
    now = card_paid_session(s)
    s.handle(sc.Tap("language", value="de"), now)
    assert s.view(now + 59).page is sc.Page.CHARGING and not s.locked
    assert not s.remote_stop_allowed(1) and s.remote_stop_allowed(2)
    view = s.view(now + 60)
    assert view.page is sc.Page.HOME and view.locked and view.language == "en"
    assert s.remote_stop_allowed(1)


@pytest.mark.parametrize(("policy", "held", "free"), [("always", True, True),
                                                      ("never", False, False),
                                                      ("when_locked", False, True)])
def test_remote_stop_policy(policy: str, held: bool, free: bool) -> None:
    s = sc.Screen(sc.parse({"remote_stop": policy}), (1, 2))
    card_paid_session(s)
    assert s.remote_stop_allowed(1) is held
    s.view(10_000)
    assert s.remote_stop_allowed(1) is free


def test_fault_screen_shows_the_code_and_support_phone() -> None:
    s = screen()
    now = card_paid_session(s)
    s.handle(bay(1, Phase.FAULTED, fault=ErrorCode.ISOLATION_FAULT), now)
    page = words(s, now)
    assert page["page"] == "fault"
    assert "Error code ISOLATION_FAULT" in page["lines"]
    assert "Support: +49 800 1234567" in page["lines"]


def test_cost_from_the_csms_wins_else_local_else_fallback() -> None:
    s = screen()
    now = card_paid_session(s)
    cost = tf.cost(TARIFFS.for_method(tf.Method.CARD), tf.Usage(10_000))
    s.handle(bay(1, Phase.CHARGING, cost=cost, csms_total=Decimal("9.99")), now)
    assert dict(words(s, now)["figures"])["Cost so far"] == "€9.99"
    s.handle(bay(1, Phase.CHARGING, cost=cost), now)
    assert dict(words(s, now)["figures"])["Cost so far"] == f"€{cost.total}"
    s.handle(bay(1, Phase.CHARGING, personal_message="0.59 EUR/kWh"), now)
    assert dict(words(s, now)["figures"])["Cost so far"] == "0.59 EUR/kWh"
    assert "0.59 EUR/kWh" in words(s, now)["lines"]  # the tariff text, shown as sent


def test_display_message_from_the_csms() -> None:
    s = screen()
    s.show_message(0, "Site closes at 22:00")
    assert s.view(0).message == "Site closes at 22:00"
    s.show_message(0, None)
    assert s.view(0).message is None


def test_truck_km_per_kwh_when_known() -> None:
    b = sc.Bay(1, Phase.CHARGING, energy_wh=100_000, kwh_per_km=1.0)
    assert sc.km_added(b, 1.2) == pytest.approx(100)


@pytest.mark.parametrize(("lang", "money", "big", "when"), [
    ("en", "€1,234.57", "12,345.6", "01/12/2026 14:05"),
    ("de", "1.234,57\u00a0€", "12.345,6", "01.12.2026 14:05"),
    ("fr", "1\u202f234,57\u00a0€", "12\u202f345,6", "01/12/2026 14:05"),
    ("nl", "€\u00a01.234,57", "12.345,6", "01-12-2026 14:05"),
])
def test_numbers_money_and_dates_per_language(lang: str, money: str, big: str,
                                              when: str) -> None:
    assert cat.money(Decimal("1234.565"), tf.Currency(), lang) == money
    assert cat.number(12345.64, 1, lang) == big
    assert cat.date(datetime(2026, 12, 1, 14, 5), lang) == when


def test_catalogues_have_the_same_keys_and_every_page_renders_in_each() -> None:
    for lang in cat.T:
        assert set(cat.T[lang]) == set(cat.T["en"]), lang
        assert set(cat.REASONS[lang]) == set(cat.REASONS["en"]), lang
    cost = tf.cost(TARIFFS.for_method(tf.Method.CARD), tf.Usage(1000))
    for page in sc.Page:
        for lang in cat.T:
            view = sc.View(page, lang, (sc.Bay(1, Phase.FINISHED, cost=cost,
                                               fault=ErrorCode.LOCK_FAILURE),), 1,
                           hints=True)
            out = cat.render(view, TARIFFS, Decimal(199))
            assert out["title"], (page, lang)


def test_german_tariff_page() -> None:
    s = screen()
    s.handle(bay(1, Phase.PREPARING), 0)
    s.handle(sc.Tap("language", value="de"), 0)
    s.handle(sc.Tap("select", 1), 0)
    lines = words(s, 0)["lines"]
    assert "0,399\u00a0€ pro kWh" in lines and "1,99\u00a0€ pro Ladevorgang" in lines


def test_bad_screen_section() -> None:
    with pytest.raises(ConfigError) as err:
        sc.parse({"language": "it"})
    assert err.value.key == "screen.language"
    with pytest.raises(ConfigError) as err:
        sc.parse({"idle_timeout_s": 1.0})
    assert err.value.key == "screen.idle_timeout_s"


def test_bad_bay_sections_are_found_by_check_config() -> None:
    """chargebay check-config finds them before a start (firmware/charger.py check)."""
    from firmware import config as cfg
    from firmware.charger import check

    base = cfg.load(Path(__file__).parent.parent / "examples" / "sim-bay.toml")
    for section, data, key in (("tariff", {"vat_percent": -1}, "tariff.vat_percent"),
                               ("payment", {"preauth": 0}, "payment.preauth"),
                               ("card_reader", {"baudrate": 1}, "card_reader.baudrate"),
                               ("screen", {"remote_stop": "sometimes"},
                                "screen.remote_stop")):
        bad = replace(base, extra={**base.extra, section: data})
        with pytest.raises(ConfigError) as err:
            check(bad)
        assert err.value.key == key
