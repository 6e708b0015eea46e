"""The bay's parts put together for the composition root (firmware/charger.py): the
shell (screen machine, prices, card payments), the web page, the card reader.

    bay = BayParts.build(config, clock, controller, authorization, terminal, reader)
    await bay.start()        # after the controller; prints nothing, ``bay.url`` says where
    await bay.close()

Sections: [tariff] (firmware/bay/tariff.py), [screen] (screen.py), [payment]
(payment.py), [card_reader] (below). Without a [screen] section there is no page, but
prices and card payments still work (the simulator's scenarios press buttons directly).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from firmware.authorization import Authorization
from firmware.bay import payment as pay
from firmware.bay import screen as sc
from firmware.bay import tariff as tf
from firmware.bay.shell import BayShell
from firmware.bay.usage import UsageMeter
from firmware.config import ChargerConfig
from firmware.loop import Controller
from firmware.schema import Section, parse_section
from hal.card_reader import CardReader
from hal.clock import Clock
from hal.payment import PaymentTerminal

log = logging.getLogger("chargebay.bay")

BAY_SECTIONS = ("screen", "tariff", "payment", "card_reader")


class CardReaderSection(Section):
    """[card_reader]: the bay's RFID reader."""

    driver: Literal["serial"] = "serial"
    port: str = "/dev/ttyUSB0"
    baudrate: int = Field(default=9600, ge=1200, le=921600)
    repeat_s: float = Field(default=2.0, ge=0.0, le=30.0)


def reader_section(config: ChargerConfig) -> CardReaderSection:
    return parse_section(CardReaderSection, config.extra.get("card_reader", {}),
                         "card_reader")


def check(config: ChargerConfig) -> None:
    """Every bay section parses (ConfigError naming the key otherwise)."""
    tf.parse(config.extra.get("tariff"))
    sc.parse(config.extra.get("screen"))
    pay.parse(config.extra.get("payment"))
    reader_section(config)


@dataclass
class BayParts:
    shell: BayShell
    web: Any = None  # firmware.bay.web.WebScreen with a [screen] section
    reader: CardReader | None = None
    say: Callable[[str], None] | None = None

    @classmethod
    def build(cls, config: ChargerConfig, clock: Clock, controller: Controller,
              authorization: Authorization, terminal: PaymentTerminal | None,
              reader: CardReader | None, say: Callable[[str], None] | None = None
              ) -> BayParts | None:
        if not any(name in config.extra for name in BAY_SECTIONS):
            return None
        tariffs = tf.parse(config.extra.get("tariff"))
        screen = sc.parse(config.extra.get("screen"))
        payment = pay.parse(config.extra.get("payment"))
        meter = UsageMeter()
        payments = None
        if terminal is not None:
            payments = pay.CardPayments(terminal, pay.store_at(payment), authorization,
                                        controller, tariffs, payment, clock, meter)
        shell = BayShell(controller, authorization, clock, tariffs, screen,
                         payment.preauth, config.identity.charge_point_id, payments,
                         meter)
        web = None
        if "screen" in config.extra:
            from firmware.bay.web import WebScreen

            web = WebScreen(shell, screen.host, screen.port)
        return cls(shell, web, reader, say)

    @property
    def url(self) -> str | None:
        return self.web.url if self.web is not None else None

    async def start(self) -> None:
        await self.shell.start()
        if self.web is not None:
            try:
                await self.web.start()
            except OSError as exc:  # port taken: the charger charges on, the page is off
                text = (f"bay screen: cannot listen on {self.web.host}:{self.web.port} "
                        f"({exc.strerror or exc}); config key 'screen.port'")
                log.error("%s", text)
                self.web = None
            else:
                text = f"bay screen: {self.web.url}"
            if self.say is not None:
                self.say(text)
        if self.reader is not None:
            await self.reader.start(self.shell.present_card)

    async def close(self) -> None:
        if self.reader is not None:
            await self.reader.close()
        if self.web is not None:
            await self.web.close()
        await self.shell.close()
