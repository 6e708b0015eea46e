"""A hostile central system (issue 16), played by the test on 127.0.0.1 through the local
CSMS's ``answer_with`` hook, against the real station on simulated hardware in virtual
time: malformed and missing answers are failed attempts, never lost billing data, never a
blocked queue, a crash or a faulted bay; the CSMS's time is evidence, not a command;
floods are bounded. docs/ocpp.md "Bad input from the central system" is the table."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp_rig import CP_ID, OcppRig, run_rig

from firmware.core.transitions import Phase
from sim.csms import CLOSE, SILENT

SESSION = "plug 1 eactros600 soc=20\nauthorize 1 rfid 04A1B2C3D4E5F6\nwait 1 Charging timeout=2m\n"
END = "stop 1 Local\nwait 1 Finished timeout=1m\nunplug 1\nwait 1 Available timeout=30s\n"
FAST_RETRY = {"OCPPCommCtrlr.MessageAttemptInterval": "5",
              "OCPPCommCtrlr.MessageAttempts": "3", "OCPPCommCtrlr.MessageTimeout": "10"}


def _result(msg_id: str, payload: Any) -> str:
    return json.dumps([3, msg_id, payload])


def _seqs_delivered(r: OcppRig) -> list[int]:
    """seqNos of the transaction as the CSMS received them, each once (retries folded)."""
    return sorted({p["seqNo"] for p in r.csms.messages("TransactionEvent")})


async def _delivered_all(r: OcppRig, within: float = 600.0, set_aside: int = 0) -> None:
    """Everything reached the CSMS but ``set_aside`` messages (refused forever)."""
    q = r.station.queue
    end = r.clock.now() + within
    while (len(q) or len(q.aside()) > set_aside) and r.clock.now() < end:
        await r.sleep(1.0)
    assert len(q) == 0 and len(q.aside()) == set_aside, q.pending()[:3]


def _no_gap(r: OcppRig) -> None:
    """Every seqNo reached the CSMS (the record holds unanswered tries too), except
    Updated events given up into a later one (which carried their meter values)."""
    seqs = _seqs_delivered(r)
    missing = sorted(set(range(seqs[-1] + 1)) - set(seqs))
    assert len(missing) <= r.station.queue.carried, (missing, r.station.queue.carried)
    assert r.station.queue.discarded == r.station.queue.carried  # nothing else given up
    kinds = {p["eventType"] for p in r.csms.messages("TransactionEvent")}
    assert {"Started", "Ended"} <= kinds


# --- TransactionEvent replies -----------------------------------------------------------

@pytest.mark.parametrize("bad", ["Accepted", ["Accepted"], [{"status": "Accepted"}], 7])
def test_malformed_transaction_event_response_is_a_failed_attempt(bad: Any) -> None:
    """idTokenInfo as a string or a list: the reply is refused (schema), the event tried
    again, the queue goes on once the CSMS answers properly, nothing reaches the core."""
    async def body(r: OcppRig) -> None:
        hostile = {"left": 4}

        def answer(action: str, msg_id: str, payload: dict[str, Any]) -> str | None:
            if action == "TransactionEvent" and hostile["left"] > 0:
                hostile["left"] -= 1
                return _result(msg_id, {"idTokenInfo": bad})
            return None
        r.csms.answer_with = answer
        await r.play(SESSION + "sleep 3m\n" + END)
        await _delivered_all(r)
        link = r.station.link
        assert link is not None and link.bad_replies >= 4
        assert r.station.queue.discarded == 0  # refused 3 times: set aside, then taken
        _no_gap(r)
    run_rig(body, variables=FAST_RETRY)


def test_started_and_ended_survive_a_csms_refusing_them_past_the_last_attempt() -> None:
    """Every TransactionEvent refused (CALLERROR) for a while, more often than
    MessageAttempts: nothing is discarded (the spec's discard would lose the bill).
    Refused past the last attempt, Started and Ended are set aside on disk, the Updated
    events between them carried on, and all of it goes once the CSMS answers again."""
    async def body(r: OcppRig) -> None:
        refuse = {"on": True}

        def answer(action: str, msg_id: str, payload: dict[str, Any]) -> str | None:
            if action == "TransactionEvent" and refuse["on"]:
                return json.dumps([4, msg_id, "InternalError", "down", {}])
            return None
        r.csms.answer_with = answer
        await r.play(SESSION + "sleep 2m\n" + END)
        await r.sleep(120)
        q = r.station.queue
        assert {"Started", "Ended"} <= {m.payload["eventType"] for m in q.aside()}
        refuse["on"] = False
        await _delivered_all(r)
        assert q.set_aside >= 2
        got = [p for p in r.csms.messages("TransactionEvent")]
        assert got[-1]["eventType"] == "Ended"
        _no_gap(r)
    run_rig(body, variables=FAST_RETRY)


def test_one_transaction_event_answered_malformed_forever_is_set_aside(
        caplog: pytest.LogCaptureFixture) -> None:
    """The CSMS answers the first session's Started malformed on every try, forever,
    and everything else properly: after MessageAttempts it is set aside (kept on disk,
    counted, logged, in the security log), the queue goes on (that session's Ended and a
    second session reach the CSMS), and it is offered again now and then, never lost."""
    async def body(r: OcppRig) -> None:
        poison: dict[str, Any] = {}

        def answer(action: str, msg_id: str, payload: dict[str, Any]) -> str | None:
            if action == "TransactionEvent" and payload.get("eventType") == "Started":
                poison.setdefault("tx", payload["transactionInfo"]["transactionId"])
            if action == "TransactionEvent" and payload.get("eventType") == "Started" \
                    and payload["transactionInfo"]["transactionId"] == poison["tx"]:
                poison["tries"] = poison.get("tries", 0) + 1
                return _result(msg_id, {"idTokenInfo": "Accepted"})
            return None
        r.csms.answer_with = answer
        await r.play(SESSION + "sleep 2m\n" + END + SESSION + "sleep 1m\n" + END)
        await _delivered_all(r, set_aside=1)
        q = r.station.queue
        kept = q.aside()
        assert [(m.payload["eventType"], m.payload["transactionInfo"]["transactionId"])
                for m in kept] == [("Started", poison["tx"])]
        assert q.set_aside == 1 and q.discarded == 0 and len(q) == 0
        ended = [p for p in r.csms.messages("TransactionEvent")
                 if p["eventType"] == "Ended"]
        assert ended[0]["transactionInfo"]["transactionId"] == poison["tx"]
        assert len(ended) == 2  # the second session too: the queue went on
        assert any(e.kind == "TransactionEventSetAside"
                   for e in r.world.charger.security.recent())
        tries = poison["tries"]
        await r.sleep(600)  # offered again while nothing else waits, at a bounded rate
        assert tries < poison["tries"] <= tries + 600 // 15 + 1
        assert [m.id for m in q.aside()] == [kept[0].id]  # still kept, still on disk
        on_disk = sqlite3.connect(q.path).execute(
            "SELECT payload FROM message WHERE aside = 1").fetchall()
        assert [json.loads(row[0])["seqNo"] for row in on_disk] == [0]
    with caplog.at_level(logging.ERROR):
        run_rig(body, variables=FAST_RETRY)
    assert any("set aside" in rec.getMessage() for rec in caplog.records)


def test_connection_dropped_with_a_transaction_event_in_flight() -> None:
    """The CSMS closes the connection on every TransactionEvent for a while: each is
    sent again after the reconnect, none discarded, no seqNo gap."""
    async def body(r: OcppRig) -> None:
        drops = {"left": 6}

        def answer(action: str, msg_id: str, payload: dict[str, Any]) -> str | None:
            if action == "TransactionEvent" and drops["left"] > 0:
                drops["left"] -= 1
                return CLOSE
            return None
        r.csms.answer_with = answer
        await r.play(SESSION + "sleep 3m\n" + END)
        await _delivered_all(r)
        assert drops["left"] == 0
        assert r.station.delivery.failures == 0  # a lost link is not an attempt
        assert r.station.queue.discarded == 0
        _no_gap(r)
    run_rig(body, variables=FAST_RETRY)


def test_a_csms_that_accepts_and_never_answers(caplog: pytest.LogCaptureFixture) -> None:
    """Silent for 2 minutes of charging: no traceback, every event stays queued, and all
    of it goes (in order, no gap) once the CSMS answers again."""
    async def body(r: OcppRig) -> None:
        silent = {"on": False}

        def answer(action: str, msg_id: str, payload: dict[str, Any]) -> str | None:
            return SILENT if silent["on"] else None
        r.csms.answer_with = answer
        await r.play(SESSION)
        silent["on"] = True
        await r.sleep(120)
        assert r.phase() is Phase.CHARGING
        assert len(r.station.queue) > 0
        silent["on"] = False
        await r.play(END)
        await _delivered_all(r)
        _no_gap(r)  # Updated events timed out MessageAttempts times: carried on
    with caplog.at_level(logging.WARNING):
        run_rig(body, variables=FAST_RETRY)
    assert not [rec for rec in caplog.records if rec.exc_info], "a traceback was logged"


def test_updated_given_up_carries_its_meter_values_into_the_next_event() -> None:
    """A CSMS refusing only one periodic Updated, always: it is given up after its last
    attempt and its meter values ride in the next event of the transaction, so the
    energy it reported is billed all the same; a notice says so."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        victim: dict[str, Any] = {}

        def answer(action: str, msg_id: str, payload: dict[str, Any]) -> str | None:
            if action != "TransactionEvent" or payload.get("triggerReason") != \
                    "MeterValuePeriodic":
                return None
            if not victim:
                victim.update(payload)
            if payload.get("seqNo") == victim["seqNo"]:
                return json.dumps([4, msg_id, "InternalError", "no", {}])
            return None
        r.csms.answer_with = answer
        await r.sleep(120)
        await r.play(END)
        await _delivered_all(r)
        assert r.station.queue.carried == 1
        stamp = victim["meterValue"][0]["timestamp"]
        accepted = [p for p in r.csms.messages("TransactionEvent")
                    if p["seqNo"] != victim["seqNo"]]
        carriers = [p for p in accepted if any(m["timestamp"] == stamp
                                               for m in p.get("meterValue", []))]
        assert carriers and carriers[0]["seqNo"] > victim["seqNo"]
        assert any(e.kind == "TransactionEventGivenUp"
                   for e in r.world.charger.security.recent())
    run_rig(body, variables=FAST_RETRY)


# --- BootNotification replies -----------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"status": "Accepted", "interval": "300", "currentTime": "2026-12-01T00:00:00Z"},
    {"status": "Accepted", "interval": 300, "currentTime": 1764547200},
    {"status": "Accepted", "interval": 300, "currentTime": ["2026-12-01T00:00:00Z"]},
    {"status": "Accepted", "interval": 300, "currentTime": None},
    ["Accepted"], None, "Accepted"])
def test_malformed_boot_response_is_a_failed_boot_and_local_cards_charge(
        bad: Any, tmp_path: Any) -> None:
    """The boot is tried again (never Faulted bays); a card on the local list charges
    meanwhile; once the CSMS answers properly, everything is delivered."""
    card = "04A1B2C3D4E5F6"

    async def provision(r: OcppRig) -> None:
        answer = await r.command("SendLocalList", {"versionNumber": 1, "updateType": "Full",
            "localAuthorizationList": [{"idToken": {"idToken": card, "type": "ISO14443"},
                                        "idTokenInfo": {"status": "Accepted"}}]})
        assert answer["status"] == "Accepted"
    run_rig(provision, state_dir=tmp_path)

    async def body(r: OcppRig) -> None:
        hostile = {"on": True}

        def answer(action: str, msg_id: str, payload: dict[str, Any]) -> str | None:
            if action == "BootNotification" and hostile["on"]:
                return _result(msg_id, bad)
            return None
        r.csms.answer_with = answer
        await r.sleep(5)
        assert not r.station.online.is_set()
        await r.play(SESSION + "sleep 2m\n")
        assert r.phase() is Phase.CHARGING
        assert all(r.phase(e) is not Phase.FAULTED for e in r.station.evse_ids)
        hostile["on"] = False
        r.csms.boot_status = "Accepted"  # (Pending only kept run_rig from waiting)
        assert await r.world.until_online(120)
        await r.play(END)
        await _delivered_all(r)
        _no_gap(r)
    run_rig(body, state_dir=tmp_path, boot_status="Pending")


# --- the CSMS's time ----------------------------------------------------------------------

def _boot_time(text: Any) -> Any:
    def answer(action: str, msg_id: str, payload: dict[str, Any]) -> str | None:
        if action in ("BootNotification", "Heartbeat"):
            body: dict[str, Any] = {"currentTime": text}
            if action == "BootNotification":
                body.update(status="Accepted", interval=60)
            return _result(msg_id, body)
        return None
    return answer


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z",
                                  "2026-12-01T10:00:00", "yesterday", "9999-12-31T23:00:00-05:00"])
def test_insane_or_naive_csms_time_is_refused_and_charging_goes_on(text: str) -> None:
    async def body(r: OcppRig) -> None:
        before = r.station.utc()
        r.csms.answer_with = _boot_time(text)
        await r.play(SESSION)
        await r.sleep(320)  # a heartbeat (300 s, the boot's interval) with the same time
        assert r.phase() is Phase.CHARGING
        now = r.station.utc()
        assert now.tzinfo is not None and 2024 <= now.year < 2100
        assert abs((now - before).total_seconds()) < 600
        assert r.station.wall.refused >= 1
        r.csms.answer_with = None
        await r.play(END)
        await _delivered_all(r)
        ended = r.csms.messages("TransactionEvent")[-1]
        assert ended["eventType"] == "Ended" and ended["transactionInfo"][
            "stoppedReason"] == "Local"
    run_rig(body)


def test_csms_time_with_an_offset_is_converted_to_utc() -> None:
    async def body(r: OcppRig) -> None:
        r.csms.answer_with = _boot_time("2027-03-01T17:00:00+05:00")
        await r.sleep(310)  # the next heartbeat (300 s, the boot's interval)
        r.csms.answer_with = None
        now = r.station.utc()
        assert now.utcoffset() == timedelta(0)
        assert abs((now - datetime(2027, 3, 1, 12, 0, tzinfo=UTC)).total_seconds()) < 120
        await r.play(SESSION)
        started = await r.expect("TransactionEvent", {"eventType": "Started"})
        assert started["timestamp"].startswith("2027-03-01T12:")
    run_rig(body)


class _CsmsClock:
    """A CSMS with a clock of its own (``start`` when installed, then running on the
    rig's virtual time); ``shift`` moves it, as an operator setting it wrong would."""

    def __init__(self, r: OcppRig, start: datetime) -> None:
        self.r, self.start, self.t0 = r, start, r.clock.now()
        self.shift = timedelta(0)

    def __call__(self, action: str, msg_id: str, payload: dict[str, Any]) -> str | None:
        now = self.start + self.shift + timedelta(seconds=self.r.clock.now() - self.t0)
        answer: str | None = _boot_time(now.isoformat().replace("+00:00", "Z"))(
            action, msg_id, payload)
        return answer


def test_a_30_day_clock_jump_gives_no_burst_of_clock_aligned_values() -> None:
    """A heartbeat sets the clock 30 days forward mid-session: sampled values stay on
    their 30 s monotonic interval, clock-aligned ones (every 900 s) one per boundary and
    one for the jump, not one per boundary skipped (2,880 in 30 days).

    The CSMS's clock is fixed (not the machine's), so where the 900 s boundaries fall
    does not depend on the hour the suite runs: the first heartbeat (within 300 s) sets
    the station to 10:14:10; the session's wall time crosses 10:15 once before the
    jump; the jump (to 30 days later, about 10:19) skips boundaries and gives one
    value; then no boundary until 10:30."""
    async def body(r: OcppRig) -> None:
        csms = _CsmsClock(r, datetime(2026, 6, 1, 10, 9, 0, tzinfo=UTC))
        r.csms.answer_with = csms
        await r.sleep(310)
        assert abs((r.station.utc() - datetime(2026, 6, 1, 10, 14, 10, tzinfo=UTC))
                   .total_seconds()) < 10, r.station.utc()
        await r.play(SESSION)
        mark = r.mark()
        csms.shift = timedelta(days=30)
        await r.sleep(310)  # the next heartbeat (300 s) brings the jump
        assert r.station.utc() > datetime(2026, 7, 1, tzinfo=UTC)  # the jump was taken
        await r.sleep(290)
        assert r.phase() is Phase.CHARGING
        events = [x.payload for x in r.csms.received[mark:] if x.action == "TransactionEvent"]
        clock = [e["timestamp"] for e in events if e["triggerReason"] == "MeterValueClock"]
        periodic = [e for e in events if e["triggerReason"] == "MeterValuePeriodic"]
        assert len(clock) == 2, clock
        assert clock[0].startswith("2026-06-01T10:15:00"), clock
        assert clock[1].startswith("2026-07-01T10:1"), clock  # at the jump
        assert 18 <= len(periodic) <= 22, len(periodic)  # 620 s / 30 s
        r.csms.answer_with = None
        await r.play(END)
    run_rig(body)


# --- floods and frames ------------------------------------------------------------------

def test_set_variables_floods_are_refused_before_any_work() -> None:
    """Bounded work per message: over BytesPerMessage (65000) FormatViolation, over
    ItemsPerMessage (50) OccurrenceConstraintViolation, both before any entry is applied;
    10,000 entries (1.1 MB) exceed the websocket frame limit and close the connection
    before they are buffered. The session charges on throughout."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        item = {"component": {"name": "SampledDataCtrlr"},
                "variable": {"name": "TxUpdatedInterval"}, "attributeValue": "31"}
        frame = json.dumps([2, "flood-1", "SetVariables", {"setVariableData": [item] * 2000}])
        reply = await r.raw(frame)
        assert reply[:3] == [4, "flood-1", "FormatViolation"]
        frame = json.dumps([2, "flood-2", "SetVariables", {"setVariableData": [item] * 51}])
        reply = await r.raw(frame)
        assert reply[:3] == [4, "flood-2", "OccurrenceConstraintViolation"]
        assert r.station.model.get("SampledDataCtrlr", "TxUpdatedInterval") == "30"
        answer = await r.command("SetVariables", {"setVariableData": [item] * 50})
        assert len(answer["setVariableResult"]) == 50  # ItemsPerMessage.SetVariables
        link = r.station.link
        frame = json.dumps([2, "flood-3", "SetVariables", {"setVariableData": [item] * 10_000}])
        await r.csms.sessions[CP_ID]._send(frame)
        for _ in range(1200):
            if r.station.link not in (None, link) and r.station.online.is_set():
                break
            await r.sleep(0.1)
        assert r.station.link not in (None, link)  # closed (1009) and connected again
        await r.sleep(30)
        assert r.phase() is Phase.CHARGING
        await r.play(END)
    run_rig(body)


def test_results_for_unknown_ids_are_dropped_without_recursion() -> None:
    """1500 CALLRESULTs for ids never sent, while TransactionEvents flow: dropped and
    counted (the package's own wait recursed once per result: RecursionError), nothing
    held, nothing discarded. Then unsolicited 0.9 MB results: above the websocket frame
    limit (connection.MAX_FRAME_BYTES), so the connection closes before buffering one;
    the station reconnects and delivers everything."""
    import websockets

    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        session = r.csms.sessions[CP_ID]
        for n in range(1500):
            await session._send(_result(f"never-{n}", {"status": "Accepted"}))
        await r.sleep(60)
        link = r.station.link
        assert link is not None and link.unknown_results >= 1500
        assert link._response_queue.qsize() == 0  # nothing held for nobody
        big = _result("never-big", {"x": "y" * 900_000})
        try:
            for _ in range(50):
                await session._send(big)
        except websockets.ConnectionClosed:
            pass  # the station closed it (1009, message too big)
        for _ in range(1200):
            if r.station.link not in (None, link) and r.station.online.is_set():
                break
            await r.sleep(0.1)
        assert r.station.link not in (None, link)  # closed, connected again
        await r.play(END)
        await _delivered_all(r)
        assert r.station.queue.discarded == r.station.queue.carried == 0
        _no_gap(r)
    run_rig(body)


def test_json_nested_ten_thousand_deep_gets_rpc_framework_error() -> None:
    async def body(r: OcppRig) -> None:
        deep = "[" * 10_000 + "]" * 10_000
        for frame in (f'[2, "deep-1", "Reset", {{"type": {deep}}}]', deep,
                      f'[3, "deep-2", {{"x": {deep}}}]'):
            reply = await r.raw(frame)
            assert reply[0] == 4 and reply[2] == "RpcFrameworkError", reply
        assert await r.command("GetLocalListVersion", {}) == {"versionNumber": 0}
    run_rig(body)


def test_trigger_message_for_an_evse_that_does_not_exist_is_rejected() -> None:
    async def body(r: OcppRig) -> None:
        for message in ("StatusNotification", "MeterValues", "TransactionEvent"):
            answer = await r.command("TriggerMessage", {"requestedMessage": message,
                                                        "evse": {"id": 99}})
            assert answer == {"status": "Rejected"}, message
    run_rig(body)
