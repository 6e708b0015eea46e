"""The CSMS and the bay screen (OCPP 2.0.1 O01-O06 display messages, I02 CostUpdated,
totalCost), the remote-stop policy, and the card-paid session's idToken type, on the
real station and the local CSMS in virtual time."""

from __future__ import annotations

from typing import Any

from ocpp_rig import OcppRig, run_rig

from firmware.core.transitions import Phase

BAY = {"tariff": {}, "screen": {"port": 0, "support_phone": "+49 800 1"},
       "payment": {}}


def message(ident: int, text: str, priority: str = "InFront", **kw: Any) -> dict[str, Any]:
    return {"message": {"id": ident, "priority": priority,
                        "message": {"format": "UTF8", "content": text}, **kw}}


def test_display_messages_reach_the_screen() -> None:
    async def body(r: OcppRig) -> None:
        shell = r.world.bay_shell
        got = await r.command("SetDisplayMessage", message(7, "Site closes at 22:00"))
        assert got["status"] == "Accepted"
        assert shell.view()["message"] == "Site closes at 22:00"
        got = await r.command("SetDisplayMessage", {"message": {
            "id": 8, "priority": "InFront",
            "message": {"format": "HTML", "content": "<b>x</b>"}}})
        assert got["status"] == "NotSupportedMessageFormat"
        got = await r.command("SetDisplayMessage", message(9, "x",
                                                          transactionId="no-such-tx"))
        assert got["status"] == "UnknownTransaction"
        got = await r.command("GetDisplayMessages", {"requestId": 3})
        assert got["status"] == "Accepted"
        notify = await r.expect("NotifyDisplayMessages", {"requestId": 3})
        assert [m["id"] for m in notify["messageInfo"]] == [7]
        assert (await r.command("ClearDisplayMessage", {"id": 7}))["status"] == "Accepted"
        assert (await r.command("ClearDisplayMessage", {"id": 7}))["status"] == "Unknown"
        assert shell.view()["message"] is None
        assert (await r.command("GetDisplayMessages", {"requestId": 4}))["status"] == \
            "Unknown"
    run_rig(body, sections=BAY)


def test_card_paid_session_cost_updated_and_remote_stop_policy() -> None:
    async def body(r: OcppRig) -> None:
        w = r.world
        w.plug(1, "eactros600", 20.0)
        assert await w._until(lambda: w.controller.status(1).phase is Phase.PREPARING, 30)
        await w.pay(1, "approve")
        started = await r.expect("TransactionEvent", {"eventType": "Started"}, within=120)
        token = started["idToken"]
        assert token["type"] == "Local" and token["idToken"].startswith("PAY-")
        tx = started["transactionInfo"]["transactionId"]
        assert await w._until(lambda: w.controller.status(1).phase is Phase.CHARGING, 120)
        await r.command("CostUpdated", {"totalCost": 12.34, "transactionId": tx})
        w.press(1, "select")  # the driver holds the session screen open
        assert w.bay_shell.view()["page"] == "charging"
        assert dict(w.bay_shell.view()["figures"])["Cost so far"] == "€12.34"
        got = await r.command("RequestStopTransaction", {"transactionId": tx})
        assert got["status"] == "Rejected"  # screen held open: the app may not stop it
        await r.clock.sleep(61)  # idle: the screen goes home and locks
        got = await r.command("RequestStopTransaction", {"transactionId": tx})
        assert got["status"] == "Accepted"
        ended = await r.expect("TransactionEvent", {"eventType": "Ended"}, within=120)
        assert ended["transactionInfo"]["stoppedReason"] == "Remote"
    run_rig(body, sections=BAY)
