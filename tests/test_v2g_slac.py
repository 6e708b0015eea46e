"""SLAC (ISO 15118-3) on frames: the EVSE machine against a simulated EV and modem."""

from __future__ import annotations

from hal.v2g import slac as s
from sim.slac_ev import SimEv, SimModem

EVSE_MAC = b"\x02\x00\x00\x00\x00\x01"


def wire(frames: list[s.Frame]) -> list[s.Frame]:
    """Every frame through bytes and back, as the raw socket would carry it."""
    return [s.parse(f.pack()) for f in frames]


def match(modem: SimModem, ev: SimEv, attenuation: int = 20) -> tuple[s.Matcher, float]:
    m = s.Matcher(EVSE_MAC)
    now = 0.0
    out = wire(m.start(now))
    while m.stage is s.Stage.SET_KEY and now < 5:
        replies = [r for f in out for r in modem.on_frame(f)]
        out = []
        for r in wire(replies):
            out += m.on_frame(r, now)
        if m.stage is s.Stage.SET_KEY:
            now += 0.1
            out = wire(m.on_time(now))
    assert m.stage is s.Stage.WAIT_PARM, m.reason
    now += 1.0
    for frame in wire([ev.parm_req()]):
        for reply in wire(m.on_frame(frame, now)):
            ev.on_frame(reply)
    for frame in wire(ev.sounding()):
        m.on_frame(frame, now)
        if frame.mmtype == s.CM_MNBC_SOUND | s.IND:
            now += 0.02
            out = m.on_frame(s.parse(modem.profile(ev.mac, attenuation).pack()), now)
            for reply in wire(out):
                for answer in wire(ev.on_frame(reply)):
                    for cnf in wire(m.on_frame(answer, now)):
                        ev.on_frame(cnf)
    return m, now


def test_a_whole_match_shares_this_sessions_key_with_the_ev() -> None:
    modem, ev = SimModem(), SimEv()
    m, _ = match(modem, ev)
    assert m.stage is s.Stage.MATCHED and m.ev_mac == ev.mac
    assert ev.key == m.key == modem.key  # the modem got the same NMK/NID the EV joins with
    assert SimEv().run_id != ev.run_id


def test_a_lost_set_key_is_retried() -> None:
    m, _ = match(SimModem(refuse_set_key=2), SimEv())
    assert m.stage is s.Stage.MATCHED


def test_no_ev_within_the_init_time_fails_the_match() -> None:
    m = s.Matcher(EVSE_MAC)
    modem = SimModem()
    for f in m.start(0.0):
        for r in modem.on_frame(f):
            m.on_frame(r, 0.0)
    assert m.stage is s.Stage.WAIT_PARM
    # ISO 15118-3: TT_EVSE_SLAC_init, at most 50 s from state B with 5 % PWM.
    assert m.on_time(49.9) == [] and m.stage is s.Stage.WAIT_PARM
    m.on_time(50.1)
    assert m.stage is s.Stage.FAILED and "CM_SLAC_PARM" in m.reason


def test_another_cables_match_request_is_ignored() -> None:
    modem, ev = SimModem(), SimEv()
    m = s.Matcher(EVSE_MAC)
    for f in m.start(0.0):
        for r in modem.on_frame(f):
            m.on_frame(r, 0.0)
    m.on_frame(ev.parm_req(), 0.1)
    stranger = SimEv(mac=b"\x02\xee\x00\x00\x00\x99")
    m.stage = s.Stage.WAIT_MATCH
    req = stranger.on_frame(s.Frame(EVSE_MAC, EVSE_MAC, s.CM_ATTEN_CHAR | s.IND, b""))[1]
    assert m.on_frame(req, 0.2) == [] and m.stage is s.Stage.WAIT_MATCH


def test_garbage_frames_are_refused_cleanly() -> None:
    for data in (b"", b"\x00" * 18, b"\x00" * 12 + b"\x08\x00" + b"\x00" * 10):
        try:
            s.parse(data)
        except s.SlacError:
            continue
        raise AssertionError(f"accepted {data!r}")
