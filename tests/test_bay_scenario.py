"""The bay end to end on the simulated hub: card payment through the real ZVT driver
and the simulated terminal, screen buttons, the RFID reader on a pty; the report's cost
and payment figures add up to the cent."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from firmware import config as cfg
from sim import scenario as sc
from sim.runner import Outcome, run

CONFIG = cfg.load(Path(__file__).parent.parent / "examples" / "sim-bay.toml")
# A free port for the page: tests run beside each other and beside `make run`.
CONFIG = replace(CONFIG, extra={**CONFIG.extra, "screen": {**CONFIG.extra["screen"],
                                                           "port": 0}})


def play(text: str, at_end: Any = None) -> Outcome:
    return run(CONFIG, sc.parse(text), None, at_end=at_end)


def sessions(outcome: Outcome) -> list[dict[str, Any]]:
    report = outcome.report()
    assert "error" not in report, report.get("error")
    assert report["safety_violations"] == 0
    return report["sessions"]  # type: ignore[return-value]


def test_card_paid_session_figures_add_up_to_the_cent() -> None:
    journal: dict[str, Any] = {}
    out = play("""
        plug 1 eactros600 soc=20
        wait 1 Preparing timeout=30s
        pay 1 decline
        pay 1 approve
        wait 1 Charging timeout=3m
        sleep 5m
        press 1 stop
        press 1 confirm
        wait 1 Finished timeout=1m
        unplug 1
        wait 1 Available timeout=30s
        sleep 5s
    """, at_end=lambda w: journal.update(terminal=w.terminal))
    [s] = sessions(out)
    assert s["stop_reason"] == "Local"
    cost, payment = s["cost"], s["payment"]
    kwh = Decimal(str(s["energy_kwh"]))
    energy = (kwh * Decimal("0.399")).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert Decimal(cost["components"]["energy"]) == energy  # the report's own kWh, priced
    assert cost["components"]["session"] == "1.99"
    net = Decimal(cost["net"])
    assert sum(Decimal(v) for v in cost["components"].values()) == net
    assert (net * Decimal("0.19")).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP") \
        == Decimal(cost["vat"])
    assert net + Decimal(cost["vat"]) == Decimal(cost["total"])
    assert payment == {"method": "card", "preauth": "199.00", "captured": cost["total"],
                       "released": False}
    terminal = journal["terminal"]
    # the terminal booked exactly the total, once; the declined card left nothing open
    booked = [h for h in terminal.journal.values() if h.state == "booked"]
    assert [h.booked_minor for h in booked] == [int(Decimal(cost["total"]) * 100)]
    assert terminal.open_reservations() == []
    assert terminal.refused_settlements == 0  # the controller asked to book once, not twice


def test_paid_but_never_charged_is_released_at_once() -> None:
    journal: dict[str, Any] = {}
    out = play("""
        plug 1 eactros600 soc=20
        wait 1 Preparing timeout=30s
        pay 1 approve
        unplug 1
        wait 1 Available timeout=30s
        sleep 5s
    """, at_end=lambda w: journal.update(terminal=w.terminal))
    for s in sessions(out):
        assert s["payment"]["released"] is True and s["payment"]["captured"] == "0.00"
    terminal = journal["terminal"]
    assert [h.state for h in terminal.journal.values()] == ["reversed"]


def test_terminal_lost_before_paying_starts_nothing() -> None:
    out = play("""
        plug 2 eactros600 soc=20
        wait 2 Preparing timeout=30s
        pay 2 lost
        expect 2 Preparing
    """)
    assert sessions(out) == [] or all("payment" not in s for s in sessions(out))


def test_rfid_reader_starts_and_a_card_of_the_same_group_stops() -> None:
    out = play("""
        plug 1 eactros600 soc=20
        wait 1 Preparing timeout=30s
        tap 1 04A1B2C3D4E5F6
        wait 1 Charging timeout=3m
        sleep 1m
        tap 1 04:A1:B2:C3:D4:E5:F7  # the same fleet, written with colons
        wait 1 Finished timeout=1m
        unplug 1
        wait 1 Available timeout=30s
    """)
    [s] = sessions(out)
    assert s["stop_reason"] == "Local"
    assert s["cost"]["currency"] == "EUR" and "payment" not in s
