"""The bay's devices at the far end of their wires, as part of the simulated world
(sim/world.py): the ZVT card terminal on 127.0.0.1 and the RFID reader on a pty, and what
a driver does at the bay (pay by card, press a screen button, tap a card). docs/bay.md.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from typing import Any

from firmware.config import ChargerConfig
from sim.card_reader import SimCardReader
from sim.payment_terminal import SimTerminal


class BaySide:
    """Mixed into SimWorld, which sets these in its constructor."""

    terminal: SimTerminal | None
    card_reader: SimCardReader | None
    _bay_tmp: tempfile.TemporaryDirectory[str] | None
    charger: Any
    clock: Any
    sessions: list[Any]

    def _say(self, text: str) -> None:
        raise NotImplementedError

    async def _bay_devices(self, config: ChargerConfig) -> ChargerConfig:
        """The card terminal (ZVT on 127.0.0.1) and the RFID reader (a pty), when the
        config has their sections; a fresh reservation file per run, a free screen port."""
        extra = dict(config.extra)
        if "payment" in extra:
            self.terminal = SimTerminal()
            port = await self.terminal.start()
            self._bay_tmp = tempfile.TemporaryDirectory(prefix="chargebay-bay-")
            extra["payment"] = {**extra["payment"], "host": "127.0.0.1", "port": port,
                                "state_file": f"{self._bay_tmp.name}/reservations.sqlite"}
        if "card_reader" in extra:
            self.card_reader = SimCardReader()
            extra["card_reader"] = {**extra["card_reader"], "port": self.card_reader.port_name}
        return replace(config, extra=extra)

    @property
    def bay_shell(self) -> Any:
        """The charger's bay (firmware/bay/shell.py), or None without bay sections."""
        parts = self.charger.slots.get("screen") if self.charger is not None else None
        return parts.shell if parts is not None else None

    async def pay(self, evse_id: int, mode: str = "approve") -> None:
        """The driver pays by card at the bay: select the connector, "Pay by card", the
        terminal does ``mode`` (approve, decline, timeout, lost); returns once the
        terminal has answered."""
        shell = self.bay_shell
        if shell is None or self.terminal is None:
            raise RuntimeError("pay needs [payment] in the config")
        self.terminal.mode = {"lost": "lost"}.get(mode, mode)
        shell.tap("select", evse_id)
        shell.tap("pay_card", evse_id)
        for _ in range(int(shell.payments.settings.timeout_s * 10) + 100):
            if shell.screen.page.value != "paying":
                break
            await self.clock.sleep(0.1)
        self._say(f"bay {evse_id} card terminal ({mode}): screen shows "
                  f"{shell.screen.page.value}")
        self.terminal.mode = "approve"

    async def tap_card(self, evse_id: int, uid: str) -> None:
        """A card at the bay's RFID reader (the pty), for the connector selected on the
        screen; waits for the authorization's answer."""
        shell = self.bay_shell
        if self.card_reader is None or shell is None:
            raise RuntimeError("tap needs [card_reader] in the config")
        if shell.screen.evse_id != evse_id:
            shell.tap("select", evse_id)
        before = shell.authorization.last(evse_id)
        self.card_reader.tap(uid)
        for _ in range(100):
            await self.clock.sleep(0.1)
            if shell.authorization.last(evse_id) is not before:
                break

    def press(self, evse_id: int, button: str) -> None:
        """A button on the bay's screen."""
        shell = self.bay_shell
        if shell is None:
            raise RuntimeError("press needs a bay section ([screen], [tariff], [payment])")
        if evse_id and button != "select" and shell.screen.evse_id != evse_id:
            shell.tap("select", evse_id)  # as a driver would: the connector first
        shell.tap(button, evse_id or None)

    def terminal_lost(self, lost: bool) -> None:
        """The card terminal's link goes (and comes back)."""
        if self.terminal is not None:
            self.terminal.mode = "lost" if lost else "approve"
            for w in list(self.terminal._conns):
                w.close()

    def _bay_figures(self) -> None:
        """Each session's price and card payment, from the bay (after the capture)."""
        shell = self.bay_shell
        if shell is None:
            return
        for record in self.sessions:
            if record.token is None:
                continue
            priced = next((f for f in shell.finished if f["token"] == record.token), None)
            if priced is not None:
                record.cost = priced["cost"].as_json()
            if shell.payments is not None:
                paid = next((r for r in shell.payments.reports if r.token == record.token),
                            None)
                if paid is not None:
                    record.payment = paid.as_json()
