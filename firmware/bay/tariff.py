"""Tariff and cost: pure Decimal arithmetic with one explicit rounding rule.

A session's cost is a list of components (energy per kWh, a fee per session, time per
charging minute, an occupation fee per minute the truck stays after charging beyond a
grace time), each priced excluding VAT and rounded once to the currency's minor unit;
then

    net   = sum of the rounded components
    vat   = net x rate, rounded to the minor unit
    total = net + vat

so the components add up to the net and net + VAT is the total to the cent, on the
screen, on the receipt, at the payment terminal and in the report. Rounding is half up
(the commercial rounding receipts use). Measured quantities are cut to the meter's
resolution before pricing (energy in whole Wh, time in whole seconds), so the price
shown can be recomputed from the figures shown.

A tariff can differ by how the driver pays (``Method``): ad-hoc card at the terminal,
the operator's app, an e-mobility provider's RFID card. AFIR (Regulation (EU)
2023/1804) Art. 5: the ad-hoc price for >= 50 kW is based on the energy delivered, with
a possible occupation fee; every component here is configurable and shown before the
start, and a site that must not charge a session fee on card payments sets it to 0.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator

from firmware.config import ConfigError
from firmware.schema import Section, parse_section


class Method(enum.StrEnum):
    CARD = "card"  # ad-hoc, at the payment terminal
    APP = "app"  # the operator's app (remote start)
    RFID = "rfid"  # an e-mobility provider's card


# Methods by the authorization's token source (firmware/authorization.py).
METHOD_OF_SOURCE = {"payment": Method.CARD, "app": Method.APP, "remote": Method.APP,
                    "rfid": Method.RFID}

# ISO 4217 minor units of the currencies a European hub meets; another code needs
# minor_units in the config.
MINOR_UNITS = {"EUR": 2, "CHF": 2, "GBP": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2,
               "CZK": 2, "HUF": 2, "RON": 2, "BGN": 2, "ISK": 0, "JPY": 0}


def _decimal(value: Any) -> Any:
    """TOML gives 0.399 as a float: take its shortest repr (exactly what was written);
    a string "0.399" is accepted too. Booleans are not prices."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value))
        except ArithmeticError:
            return value
    return value


Price = Annotated[Decimal, BeforeValidator(_decimal), Field(ge=0, le=1000)]


class PriceOverride(Section):
    """A payment method's own prices; what it leaves out is the ad-hoc price."""

    per_kwh: Price | None = None
    per_session: Price | None = None
    per_minute: Price | None = None
    occupation_per_minute: Price | None = None
    occupation_grace_min: int | None = Field(default=None, ge=0, le=24 * 60)


class TariffSection(Section):
    """[tariff]: the ad-hoc prices at the top, [tariff.app] / [tariff.rfid] override."""

    currency: str = "EUR"
    minor_units: int | None = Field(default=None, ge=0, le=4)  # ISO 4217 exponent
    vat_percent: Annotated[Decimal, BeforeValidator(_decimal),
                           Field(ge=0, le=50)] = Decimal("19")
    per_kwh: Price = Decimal("0.399")
    per_session: Price = Decimal("1.99")
    per_minute: Price = Decimal("0")
    occupation_per_minute: Price = Decimal("0")
    occupation_grace_min: int = Field(default=60, ge=0, le=24 * 60)
    app: PriceOverride = PriceOverride()
    rfid: PriceOverride = PriceOverride()

    @field_validator("currency")
    @classmethod
    def _iso4217(cls, value: str) -> str:
        if len(value) != 3 or not value.isascii() or not value.isupper():
            raise ValueError("must be an ISO 4217 code such as EUR")
        return value


@dataclass(frozen=True, slots=True)
class Currency:
    code: str = "EUR"
    minor_units: int = 2

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.minor_units)

    def round(self, amount: Decimal) -> Decimal:
        return amount.quantize(self.quantum, rounding=ROUND_HALF_UP)

    def to_minor(self, amount: Decimal) -> int:
        """An amount in minor units (cents), as a payment terminal takes it."""
        return int(self.round(amount).scaleb(self.minor_units))

    def from_minor(self, minor: int) -> Decimal:
        return Decimal(minor).scaleb(-self.minor_units)


@dataclass(frozen=True, slots=True)
class Tariff:
    """One method's prices, ready to price a session."""

    currency: Currency
    vat_rate: Decimal  # 0.19 for 19 %
    per_kwh: Decimal
    per_session: Decimal
    per_minute: Decimal = Decimal(0)
    occupation_per_minute: Decimal = Decimal(0)
    occupation_grace_s: int = 3600


@dataclass(frozen=True, slots=True)
class Usage:
    """What a session used, as measured (before the cut to meter resolution)."""

    energy_wh: float = 0.0
    charging_s: float = 0.0  # from the start of energy transfer to its end
    occupied_s: float = 0.0  # after charging ended, until unplug
    started: bool = True  # False: no energy transfer began; nothing is owed


@dataclass(frozen=True, slots=True)
class Component:
    name: str  # energy, session, time, occupation
    quantity: Decimal  # kWh or minutes or 1
    unit_price: Decimal
    net: Decimal  # rounded to the minor unit


@dataclass(frozen=True, slots=True)
class Cost:
    currency: Currency
    components: tuple[Component, ...]
    net: Decimal
    vat_rate: Decimal
    vat: Decimal
    total: Decimal

    def as_json(self) -> dict[str, Any]:
        return {"currency": self.currency.code,
                "components": {c.name: str(c.net) for c in self.components},
                "net": str(self.net), "vat": str(self.vat), "total": str(self.total)}


ZERO_USAGE = Usage(started=False)


def cost(tariff: Tariff, usage: Usage) -> Cost:
    """The session's price (module docstring)."""
    cur = tariff.currency
    parts: list[Component] = []
    if usage.started:
        kwh = Decimal(max(0, round(usage.energy_wh))) / 1000  # whole Wh
        charging_min = Decimal(max(0, int(usage.charging_s))) / 60  # whole seconds
        occupied_s = max(0, int(usage.occupied_s)) - tariff.occupation_grace_s
        occupied_min = Decimal(max(0, occupied_s)) / 60
        parts.append(Component("energy", kwh, tariff.per_kwh, cur.round(kwh * tariff.per_kwh)))
        if tariff.per_session:
            parts.append(Component("session", Decimal(1), tariff.per_session,
                                   cur.round(tariff.per_session)))
        if tariff.per_minute:
            parts.append(Component("time", charging_min, tariff.per_minute,
                                   cur.round(charging_min * tariff.per_minute)))
        if tariff.occupation_per_minute:
            parts.append(Component("occupation", occupied_min, tariff.occupation_per_minute,
                                   cur.round(occupied_min * tariff.occupation_per_minute)))
    net = sum((p.net for p in parts), Decimal(0))
    net = cur.round(net)
    vat = cur.round(net * tariff.vat_rate)
    return Cost(cur, tuple(parts), net, tariff.vat_rate, vat, net + vat)


def gross(tariff: Tariff, net_price: Decimal) -> Decimal:
    """A unit price incl. VAT, for display beside the net one (not rounded to the minor
    unit: 0.399 x 1.19 = 0.47481 shows as 0.475)."""
    return net_price * (1 + tariff.vat_rate)


@dataclass(frozen=True, slots=True)
class Tariffs:
    """The site's tariffs by payment method."""

    by_method: dict[Method, Tariff]

    def for_method(self, method: Method) -> Tariff:
        return self.by_method[method]

    def for_source(self, source: str) -> Tariff:
        return self.by_method[METHOD_OF_SOURCE.get(source, Method.CARD)]

    @property
    def currency(self) -> Currency:
        return self.by_method[Method.CARD].currency


def parse(data: dict[str, Any] | None) -> Tariffs:
    """The [tariff] section (defaults when absent); ConfigError naming a bad key."""
    section = parse_section(TariffSection, data or {}, "tariff")
    units = section.minor_units
    if units is None:
        if section.currency not in MINOR_UNITS:
            raise ConfigError("tariff.minor_units",
                              f"is required for currency {section.currency}")
        units = MINOR_UNITS[section.currency]
    currency = Currency(section.currency, units)
    rate = section.vat_percent / 100
    base = Tariff(currency, rate, section.per_kwh, section.per_session, section.per_minute,
                  section.occupation_per_minute, section.occupation_grace_min * 60)

    def override(o: PriceOverride) -> Tariff:
        def pick(name: str) -> Any:
            value = getattr(o, name)
            return getattr(section, name) if value is None else value
        grace = pick("occupation_grace_min")
        return Tariff(currency, rate, pick("per_kwh"), pick("per_session"),
                      pick("per_minute"), pick("occupation_per_minute"), grace * 60)

    return Tariffs({Method.CARD: base, Method.APP: override(section.app),
                    Method.RFID: override(section.rfid)})
