"""Display messages and running cost from the CSMS, handed to the bay screen (OCPP 2.0.1
Part 2 O01-O06 SetDisplayMessage / GetDisplayMessages / ClearDisplayMessage, I02
CostUpdated). The screen lives in firmware/bay/; this file only speaks the protocol and
passes values through ``BayPort`` (no import of the bay). Without a screen the station
answers as a station without one: Rejected / Unknown.

Mixed into ``Handlers`` (handlers.py), so the route map finds these with the others.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import after, on
from ocpp.v201 import call_result

log = logging.getLogger("chargebay.ocpp")


class BayPort(Protocol):
    """What the station may tell the bay screen (firmware/bay/shell.py)."""

    def set_display_message(self, message: dict[str, Any],
                            evse_id: int | None = None) -> str: ...
    def display_messages(self, ids: list[int] | None, priority: str | None,
                         state: str | None) -> list[dict[str, Any]]: ...
    def clear_display_message(self, message_id: int) -> bool: ...
    def cost_updated(self, evse_id: int, total: Decimal) -> None: ...
    def personal_message(self, evse_id: int, text: str,
                         language: str | None = None) -> None: ...
    def remote_stop_allowed(self, evse_id: int) -> bool: ...


class DisplayHandlers:
    """Reads the station as ``self.st`` (set by Handlers: handlers.py StationPort, plus
    the ``bay`` attribute the charger fills)."""

    @property
    def _st(self) -> Any:
        return getattr(self, "st")  # noqa: B009 - typed in Handlers, not here

    def _bay(self) -> BayPort | None:
        return getattr(self._st, "bay", None)

    @on("SetDisplayMessage")
    def on_set_display_message(self, message: dict[str, Any],
                               **_: Any) -> call_result.SetDisplayMessage:
        bay = self._bay()
        if bay is None:
            return call_result.SetDisplayMessage(status="Rejected")
        info = snake_to_camel_case(message)
        tx = info.get("transactionId")
        evse_id = self._st.tx.evse_of(tx) if tx is not None else None
        if tx is not None and evse_id is None:
            return call_result.SetDisplayMessage(status="UnknownTransaction")
        # Kept as sent (a GetDisplayMessages reports it so), with its transaction's EVSE.
        return call_result.SetDisplayMessage(status=bay.set_display_message(info, evse_id))

    @on("GetDisplayMessages")
    def on_get_display_messages(self, request_id: int, id: list[int] | None = None,
                                priority: str | None = None, state: str | None = None,
                                **_: Any) -> call_result.GetDisplayMessages:
        bay = self._bay()
        found = bay.display_messages(id, priority, state) if bay is not None else []
        return call_result.GetDisplayMessages(status="Accepted" if found else "Unknown")

    @after("GetDisplayMessages")
    def after_get_display_messages(self, request_id: int, id: list[int] | None = None,
                                   priority: str | None = None, state: str | None = None,
                                   **_: Any) -> None:
        bay = self._bay()
        found = bay.display_messages(id, priority, state) if bay is not None else []
        if not found:
            return

        async def notify() -> None:
            link = self._st.link
            if link is not None:
                await link.call_raw("NotifyDisplayMessages", {
                    "requestId": request_id, "messageInfo": found, "tbc": False})
        self._st.spawn(self._follow_up("NotifyDisplayMessages", notify),  # type: ignore[attr-defined]
                      "ocpp-notify-display")

    @on("ClearDisplayMessage")
    def on_clear_display_message(self, id: int, **_: Any) -> call_result.ClearDisplayMessage:
        bay = self._bay()
        cleared = bay is not None and bay.clear_display_message(id)
        return call_result.ClearDisplayMessage(status="Accepted" if cleared else "Unknown")

    @on("CostUpdated")
    def on_cost_updated(self, total_cost: float, transaction_id: str,
                        **_: Any) -> call_result.CostUpdated:
        bay = self._bay()
        evse_id = self._st.tx.evse_of(transaction_id)
        if bay is not None and evse_id is not None:
            try:
                bay.cost_updated(evse_id, Decimal(str(total_cost)))
            except InvalidOperation:
                log.warning("CostUpdated with a total that is not a number: %r", total_cost)
        return call_result.CostUpdated()

    def remote_stop_allowed(self, evse_id: int) -> bool:
        """The bay's policy (firmware/bay/screen.py): by default only while the screen
        is locked, i.e. nobody holds that session open at the bay."""
        bay = self._bay()
        return bay is None or bay.remote_stop_allowed(evse_id)
