"""The CSMS and the bay screen (OCPP 2.0.1 O01-O06 display messages, I02 CostUpdated,
totalCost), the remote-stop policy, and the card-paid session's idToken type, on the
real station and the local CSMS in virtual time."""

from __future__ import annotations

import json
from pathlib import Path
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


def test_authorize_personal_message_reaches_the_screen_in_the_drivers_language() -> None:
    """C01 / I-block: the Authorize answer's idTokenInfo.personalMessage (the driver's
    tariff) is shown on that session's screen; with texts in two languages (German from
    the Authorize, English from the TransactionEventResponse's updatedPersonalMessage) the
    screen shows the one in its language, and the driver's own (language1) before any
    other; the other bay shows none, and the next driver's session starts without it."""
    async def body(r: OcppRig) -> None:
        w = r.world
        shell = w.bay_shell
        german = "Ihr Tarif: 0,45 EUR/kWh, keine Standgebühr"
        english = "Your tariff: 0.45 EUR/kWh, no idle fee"

        def answer(action: str, msg_id: str, payload: dict[str, Any]) -> str | None:
            if action == "Authorize" and payload["idToken"]["idToken"] == "04A1B2C3D4E5F6":
                return json.dumps([3, msg_id, {"idTokenInfo": {
                    "status": "Accepted", "language1": "de-AT",
                    "personalMessage": {"format": "UTF8", "language": "de",
                                        "content": german}}}])
            if action == "TransactionEvent" and payload["eventType"] == "Started" \
                    and payload["idToken"]["idToken"] == "04A1B2C3D4E5F6":
                return json.dumps([3, msg_id, {"updatedPersonalMessage": {
                    "format": "UTF8", "language": "en", "content": english}}])
            return None
        r.csms.answer_with = answer
        await r.play("plug 1 eactros600 soc=20\nauthorize 1 rfid 04A1B2C3D4E5F6\n")
        # Before the TransactionEvent: only the Authorize's text, whatever the language.
        assert shell.screen.bays[1].personal_message == german
        await r.play("wait 1 Charging timeout=2m\nsleep 5s\n")
        assert shell.screen.bays[1].personal_message == english  # the screen is in English
        w.press(1, "select")
        shell.tap("language", value="de")
        view = shell.view()
        assert view["page"] == "charging" and german in json.dumps(view, ensure_ascii=False)
        assert english not in json.dumps(view, ensure_ascii=False)
        shell.tap("language", value="fr")  # neither: the driver's own language, German
        assert shell.screen.bays[1].personal_message == german
        assert shell.screen.bays[2].personal_message is None
        await r.play("stop 1 Local\nwait 1 Finished timeout=1m\nunplug 1\n"
                     "wait 1 Available timeout=30s\n"
                     "plug 1 eactros600 soc=20\nauthorize 1 rfid 04D1E2F3A4B5C6\n"
                     "wait 1 Charging timeout=2m\n")
        assert shell.screen.bays[1].personal_message is None  # not the last driver's
    run_rig(body, sections=BAY, tokens=["04A1B2C3D4E5F6", "04D1E2F3A4B5C6"])


def test_get_display_messages_honours_its_filters_and_state_applies_on_screen() -> None:
    """O04: GetDisplayMessages reports the messages matching every filter given (id,
    priority, state), Unknown when none; a message's state decides when the screen shows
    it; one bound to a transaction is reported as the CSMS set it and removed when the
    transaction ends (MessageInfo.transactionId)."""
    async def body(r: OcppRig) -> None:
        shell = r.world.bay_shell
        for ident, text, priority, state in ((1, "Charging: stay with your truck",
                                              "InFront", "Charging"),
                                             (2, "Welcome", "NormalCycle", None),
                                             (3, "Out of order", "AlwaysFront", "Faulted")):
            extra = {"state": state} if state else {}
            got = await r.command("SetDisplayMessage", message(ident, text, priority, **extra))
            assert got["status"] == "Accepted"
        request = {"n": 10}

        async def found(**query: Any) -> list[int] | None:
            request["n"] += 1
            got = await r.command("GetDisplayMessages", {"requestId": request["n"], **query})
            if got["status"] == "Unknown":
                return None
            notify = await r.expect("NotifyDisplayMessages", {"requestId": request["n"]})
            return [m["id"] for m in notify["messageInfo"]]
        assert await found() == [1, 2, 3]
        assert await found(id=[2, 3]) == [2, 3]
        assert await found(priority="AlwaysFront") == [3]
        assert await found(state="Charging") == [1]
        assert await found(id=[1, 2], state="Charging") == [1]  # every filter at once
        assert await found(id=[99]) is None
        assert await found(priority="InFront", state="Faulted") is None
        # Both bays idle: neither the Charging nor the Faulted one is on the screen.
        assert shell.view()["message"] == "Welcome"
        await r.play("plug 1 eactros600 soc=20\nauthorize 1 rfid 04A1B2C3D4E5F6\n"
                     "wait 1 Charging timeout=2m\n")
        assert shell.view()["message"] == "Charging: stay with your truck"
        started = await r.expect("TransactionEvent", {"eventType": "Started"})
        tx = started["transactionInfo"]["transactionId"]
        got = await r.command("SetDisplayMessage", message(4, "Your truck is charging",
                                                          "AlwaysFront", transactionId=tx))
        assert got["status"] == "Accepted"
        w = r.world
        w.press(1, "select")
        assert shell.view()["message"] == "Your truck is charging"  # on its connector
        n = request["n"] + 1
        assert await found(id=[4]) == [4]
        notify = await r.expect("NotifyDisplayMessages", {"requestId": n})
        assert notify["messageInfo"][0]["transactionId"] == tx
        assert "display" not in notify["messageInfo"][0]  # as the CSMS set it
        await r.play("stop 1 Local\nwait 1 Finished timeout=1m\n")
        assert await found(id=[4]) is None  # the transaction ended: removed
        assert await found() == [1, 2, 3]
    run_rig(body, sections=BAY)


def test_display_messages_survive_a_restart(tmp_path: Path) -> None:
    """Kept in the state directory: after a restart GetDisplayMessages still reports
    them and the screen shows them, as a CSMS that set them expects."""
    async def first(r: OcppRig) -> None:
        got = await r.command("SetDisplayMessage", message(5, "Site closes at 22:00"))
        assert got["status"] == "Accepted"
        got = await r.command("SetDisplayMessage", message(6, "Gone", "AlwaysFront"))
        assert (await r.command("ClearDisplayMessage", {"id": 6}))["status"] == "Accepted"

    async def after_restart(r: OcppRig) -> None:
        assert r.world.bay_shell.view()["message"] == "Site closes at 22:00"
        got = await r.command("GetDisplayMessages", {"requestId": 1})
        assert got["status"] == "Accepted"
        notify = await r.expect("NotifyDisplayMessages", {"requestId": 1})
        assert [m["id"] for m in notify["messageInfo"]] == [5]
        assert notify["messageInfo"][0]["message"]["content"] == "Site closes at 22:00"
    run_rig(first, sections=BAY, state_dir=tmp_path)
    run_rig(after_restart, sections=BAY, state_dir=tmp_path)
