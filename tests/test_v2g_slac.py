"""SLAC (ISO 15118-3) on frames: the EVSE's matcher against a simulated EV and modem,
the time passed in as values (virtual time: a 50 s timer costs nothing)."""

from __future__ import annotations

import hashlib

import pytest

from hal.v2g import slac as s
from hal.v2g import slac_messages as m
from sim.slac_ev import SimEv, SimModem

EVSE_MAC = b"\x02\x00\x00\x00\x00\x0a"


def wire(frames: list[m.Frame]) -> list[m.Frame]:
    """Every frame through bytes and back (padded to 60 bytes), as the socket carries it."""
    return [m.parse(f.pack()) for f in frames]


def keyed(modem: SimModem, now: float = 0.0) -> s.Matcher:
    mt = s.Matcher(EVSE_MAC)
    out = wire(mt.start(now))
    while mt.stage is s.Stage.SET_KEY and now < 5:
        for reply in wire([r for f in out for r in modem.on_frame(f)]):
            mt.on_frame(reply, now)
        if mt.stage is s.Stage.SET_KEY:
            now += 0.1
            out = wire(mt.on_time(now))
    return mt


def play(mt: s.Matcher, modem: SimModem, ev: SimEv, now: float,
         attenuation: int = 20) -> float:
    """One EV's run against the matcher, frame by frame; returns the time it ended."""
    for frame in wire([ev.parm_req()]):
        for reply in wire(mt.on_frame(frame, now)):
            ev.on_frame(reply)
    for frame in wire(ev.sounding()):
        now += 0.02  # TP_EV_batch_msg_interval 20-50 ms
        mt.on_frame(frame, now)
        if frame.mmtype == m.CM_MNBC_SOUND | m.IND:
            for reply in wire(mt.on_frame(m.parse(modem.profile(ev.mac, attenuation).pack()),
                                          now)):
                for answer in wire(ev.on_frame(reply)):
                    for cnf in wire(mt.on_frame(answer, now)):
                        ev.on_frame(cnf)
    return now


def test_a_whole_match_shares_this_sessions_key_with_the_ev() -> None:
    modem, ev = SimModem(), SimEv()
    mt = keyed(modem)
    assert mt.stage is s.Stage.LISTENING
    cnf = mt.on_frame(m.parse(ev.parm_req().pack()), 0.5)[0]
    # Table A.2: CM_SLAC_PARM.CNF announces NUM_SOUNDS (C_EV_match_MNBC = 10) and
    # Time_Out 6 (x 100 ms: TT_EVSE_match_MNBC), RESP_TYPE 1, the EV as FORWARDING_STA.
    assert cnf.payload[:9] == m.BROADCAST + bytes([10, 6, 1]) and cnf.payload[9:15] == ev.mac
    play(mt, modem, ev, 1.0)
    assert mt.stage is s.Stage.MATCHED and mt.ev_mac == ev.mac
    assert ev.key == mt.key == modem.key  # the modem got the same NMK/NID the EV joins with
    mt.joined()
    assert mt.stage is s.Stage.JOINED and mt.deadline is None


def test_the_nid_follows_from_the_nmk_as_homeplug_av_derives_it() -> None:
    nid, nmk = m.new_key()
    digest = hashlib.sha256(nmk).digest()
    for _ in range(4):
        digest = hashlib.sha256(digest).digest()
    assert nid[:6] == digest[:6] and nid[6] == digest[6] >> 4  # security level 0
    assert nid[6] & 0xC0 == 0  # the two top bits of the 54-bit NID stay 0
    assert m.new_key()[1] != nmk


def test_a_lost_set_key_is_retried() -> None:
    modem = SimModem(refuse_set_key=2)
    mt = keyed(modem)
    assert mt.stage is s.Stage.LISTENING and modem.keys_set == 1


def test_a_modem_that_never_confirms_the_key_fails_the_match() -> None:
    mt = s.Matcher(EVSE_MAC)
    mt.start(0.0)
    sent = 1
    now = 0.0
    while mt.stage is s.Stage.SET_KEY:
        now += 0.1
        sent += len(mt.on_time(now))
    assert sent == s.SET_KEY_TRIES and "CM_SET_KEY" in mt.reason


def test_no_ev_within_the_init_time_fails_the_match() -> None:
    mt = keyed(SimModem())
    # ISO 15118-3 Table A.1: TT_EVSE_SLAC_init, 20-50 s from state B with 5 % PWM.
    assert mt.deadline == pytest.approx(50.0)
    assert mt.on_time(49.9) == [] and mt.stage is s.Stage.LISTENING
    mt.on_time(50.0)
    assert mt.stage is s.Stage.FAILED and "CM_SLAC_PARM" in mt.reason


def test_sounds_are_collected_for_tt_evse_match_mnbc_then_characterised() -> None:
    modem, ev = SimModem(), SimEv()
    mt = keyed(modem)
    for frame in wire([ev.parm_req()]):
        for reply in mt.on_frame(frame, 1.0):
            ev.on_frame(reply)
    mt.on_frame(ev.sounding()[0], 1.05)  # the first START_ATTEN_CHAR.IND opens the window
    for _ in range(4):  # 4 of 10 sounds heard, then silence
        mt.on_frame(modem.profile(ev.mac, 30), 1.1)
    # Table A.1: TT_EVSE_match_MNBC 600 ms from the first CM_START_ATTEN_CHAR.IND.
    assert mt.on_time(1.64) == []
    out = mt.on_time(1.65)
    assert [f.mmtype for f in out] == [m.CM_ATTEN_CHAR | m.IND]
    assert out[0].payload[2:8] == ev.mac and out[0].payload[50] == 4  # NumSounds
    assert list(out[0].payload[52:52 + m.ATTEN_GROUPS]) == [30] * m.ATTEN_GROUPS


def test_atten_char_is_repeated_c_ev_match_retry_times_then_the_attempt_fails() -> None:
    modem, ev = SimModem(), SimEv(answer_atten_char=False)
    mt = keyed(modem)
    end = play(mt, modem, ev, 1.0)
    sent = 1
    now = end
    while mt.runs:
        now += 0.05
        sent += sum(f.mmtype == m.CM_ATTEN_CHAR | m.IND for f in mt.on_time(now))
    # Table A.1: TT_match_response 200 ms, C_EV_match_retry 2: three INDs in all.
    assert sent == 3
    assert now - end == pytest.approx(0.6, abs=0.051)
    assert mt.failures == 1 and mt.stage is s.Stage.LISTENING  # the EV may try again


def test_failed_attempts_are_retried_then_unmatched_after_c_conn_max_match() -> None:
    modem = SimModem()
    mt = keyed(modem)
    now = 1.0
    for attempt in (1, 2, 3):
        ev = SimEv(answer_atten_char=False)
        now = play(mt, modem, ev, now)
        while ev.mac in mt.runs:
            now += 0.1
            mt.on_time(now)
        assert mt.failures == attempt
        if attempt < 3:
            assert mt.stage is s.Stage.LISTENING
        now += 0.4  # TT_matching_rate before the EV starts over
    # Table 3: C_conn_max_match 3 attempts.
    assert mt.stage is s.Stage.FAILED and "3 times" in mt.reason


def test_retries_end_tt_matching_repetition_after_the_first_failure() -> None:
    modem = SimModem()
    mt = keyed(modem)
    ev = SimEv(answer_atten_char=False)
    now = play(mt, modem, ev, 1.0)
    while mt.runs:
        now += 0.1
        mt.on_time(now)
    failed_at = now
    assert mt.failures == 1
    # Table A.1: TT_matching_repetition 10 s: no second attempt came in that time.
    assert mt.deadline == pytest.approx(failed_at + 10.0)
    mt.on_time(failed_at + 9.9)
    assert mt.stage is s.Stage.LISTENING
    mt.on_time(failed_at + 10.0)
    assert mt.stage is s.Stage.FAILED


def test_an_ev_that_chose_another_connector_is_no_failure() -> None:
    modem = SimModem()
    mt = keyed(modem)
    neighbour = SimEv(mac=b"\x02\xee\x00\x00\x00\x99", ask_match=False)
    now = play(mt, modem, neighbour, 1.0, attenuation=60)  # crosstalk from the next cable
    assert mt.runs[neighbour.mac].step is s.Step.WAIT_MATCH
    # Table A.1: TT_EVSE_match_session 10 s after the sounding window for the MATCH.REQ.
    mt.on_time(now + 10.7)
    assert not mt.runs and mt.failures == 0 and mt.stage is s.Stage.LISTENING
    ours = SimEv()
    play(mt, modem, ours, now + 11.0)
    assert mt.stage is s.Stage.MATCHED and mt.ev_mac == ours.mac


def test_parallel_runs_the_ev_that_asks_for_the_match_wins() -> None:
    modem = SimModem()
    mt = keyed(modem)
    neighbour = SimEv(mac=b"\x02\xee\x00\x00\x00\x99", ask_match=False)
    ours = SimEv()
    for ev in (neighbour, ours):  # both PARM.REQs heard before either sounds
        for reply in mt.on_frame(ev.parm_req(), 1.0):
            ev.on_frame(reply)
    assert set(mt.runs) == {neighbour.mac, ours.mac}
    play(mt, modem, ours, 1.0)
    assert mt.stage is s.Stage.MATCHED and mt.ev_mac == ours.mac and not mt.runs


def test_another_evs_match_request_is_ignored() -> None:
    modem, ev = SimModem(), SimEv(ask_match=False)
    mt = keyed(modem)
    play(mt, modem, ev, 1.0)
    stranger = SimEv(mac=b"\x02\xee\x00\x00\x00\x77", evse_mac=EVSE_MAC, run_id=ev.run_id)
    assert mt.on_frame(stranger.match_req(), 2.0) == []
    assert mt.stage is s.Stage.LISTENING


def test_a_match_that_no_ev_joins_starts_over_after_tt_match_join() -> None:
    modem, ev = SimModem(), SimEv()
    mt = keyed(modem)
    now = play(mt, modem, ev, 1.0)
    assert mt.stage is s.Stage.MATCHED
    # Table A.1: TT_match_join 12 s; then the EVSE resets (a failed attempt).
    mt.on_time(now + 11.9)
    assert mt.stage is s.Stage.MATCHED
    mt.on_time(now + 12.0)
    assert mt.stage is s.Stage.LISTENING and mt.failures == 1


def test_a_lost_match_confirmation_is_answered_again() -> None:
    modem, ev = SimModem(), SimEv()
    mt = keyed(modem)
    now = play(mt, modem, ev, 1.0)
    again = mt.on_frame(m.parse(ev.match_req().pack()), now + 0.2)
    assert [f.mmtype for f in again] == [m.CM_SLAC_MATCH | m.CNF]


def test_leaving_sets_a_key_of_no_session() -> None:
    modem, ev = SimModem(), SimEv()
    mt = keyed(modem)
    play(mt, modem, ev, 1.0)
    for frame in wire(mt.leave()):
        modem.on_frame(frame)
    assert modem.key is not None and modem.key != mt.key and modem.keys_set == 2
    assert mt.stage is s.Stage.FAILED and mt.deadline is None


@pytest.mark.parametrize("data", [
    b"", b"\x00" * 18, b"\x00" * 12 + b"\x08\x00" + b"\x00" * 46,  # IPv4, not HomePlug
    b"\xff" * 12 + b"\x88\xe1" + b"\x00" + b"\x00" * 45,  # MMV 0 (vendor), not SLAC
    b"\xff" * 12 + b"\x88\xe1" + b"\x01" + b"\x00" * 1600,  # longer than Ethernet allows
])
def test_garbage_frames_are_refused_cleanly(data: bytes) -> None:
    with pytest.raises(m.SlacError):
        m.parse(data)


@pytest.mark.parametrize("mmtype", [m.CM_SLAC_PARM | m.REQ, m.CM_ATTEN_PROFILE | m.IND,
                                    m.CM_START_ATTEN_CHAR | m.IND, m.CM_ATTEN_CHAR | m.RSP,
                                    m.CM_SLAC_MATCH | m.REQ])
def test_truncated_payloads_are_a_slac_error_not_a_crash(mmtype: int) -> None:
    modem, ev = SimModem(), SimEv()
    mt = keyed(modem)
    for reply in mt.on_frame(ev.parm_req(), 1.0):
        ev.on_frame(reply)
    run = mt.runs[ev.mac]
    run.step = {m.CM_ATTEN_CHAR | m.RSP: s.Step.WAIT_ATTEN_RSP,
                m.CM_SLAC_MATCH | m.REQ: s.Step.WAIT_MATCH,
                m.CM_ATTEN_PROFILE | m.IND: s.Step.SOUNDING}.get(mmtype, run.step)
    body = ev.mac if mmtype == m.CM_ATTEN_PROFILE | m.IND else b"\x00"
    with pytest.raises(m.SlacError):
        mt.on_frame(m.Frame(EVSE_MAC, ev.mac, mmtype, body), 1.1)


def test_at_most_five_runs_at_once() -> None:
    mt = keyed(SimModem())
    evs = [SimEv(mac=bytes([2, 0xEE, 0, 0, 1, n])) for n in range(6)]
    answered = [bool(mt.on_frame(ev.parm_req(), 1.0)) for ev in evs]
    # ISO 15118-3 Table 3: C_EVSE_match_parallel 5.
    assert answered == [True] * 5 + [False] and len(mt.runs) == 5


def test_no_start_atten_char_within_tt_match_sequence_fails_the_attempt() -> None:
    mt = keyed(SimModem())
    ev = SimEv()
    mt.on_frame(ev.parm_req(), 1.0)
    # Table A.1: TT_match_sequence 400 ms for the EV's next message.
    mt.on_time(1.39)
    assert ev.mac in mt.runs
    mt.on_time(1.4)
    assert ev.mac not in mt.runs and mt.failures == 1


def test_a_run_under_way_at_the_give_up_time_is_let_finish_without_a_busy_timer() -> None:
    modem = SimModem()
    mt = keyed(modem)
    ev = SimEv()
    mt.on_frame(ev.parm_req(), 49.8)
    mt.on_time(50.0)  # TT_EVSE_SLAC_init is over, but this EV's run is under way
    assert mt.stage is s.Stage.LISTENING
    assert mt.deadline is not None and mt.deadline > 50.0  # no timer due in the past
    mt.on_time(mt.deadline)  # its START_ATTEN_CHAR never came: the run ends, then we do
    assert mt.stage is s.Stage.FAILED
