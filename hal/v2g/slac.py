"""SLAC (ISO 15118-3 clause 9 and Annex A, HomePlug Green PHY): which EV on the cable is
this connector's, and the private network key the two then share.

The EVSE's side of one plug-in, as a pure machine (``Matcher``: frames in, frames out,
the time passed in). The shell that carries its frames on the connector's modem
interface is hal/v2g/slac_port.py (raw AF_PACKET socket, EtherType 0x88E1) and
hal/v2g/slac_link.py (the pilot starts it, timers, the SECC's gate). We write the few
messages ourselves (hal/v2g/slac_messages.py): PyPI ``pyslac`` (last release 2022) needs
``marshmallow<4``, cannot share a venv with ``iso15118`` and owns its own loop and
sockets; these are fixed-layout frames.

Once the pilot shows a vehicle (state B, 5 % PWM):
  CM_SET_KEY.REQ -> local modem (a fresh NMK, its NID, per plug-in; retried; sent to the
                    modem's management address, never broadcast onto the powerline)
  <- CM_SLAC_PARM.REQ (EV, broadcast)      -> CM_SLAC_PARM.CNF
  <- CM_START_ATTEN_CHAR.IND (x3), CM_MNBC_SOUND.IND (x10)
  <- CM_ATTEN_PROFILE.IND (local modem, one per sound it heard)
  -> CM_ATTEN_CHAR.IND (averaged attenuation) <- CM_ATTEN_CHAR.RSP
  (<- CM_VALIDATE.REQ -> CNF "not required")
  <- CM_SLAC_MATCH.REQ (only from the EV that chose us) -> CM_SLAC_MATCH.CNF (NID, NMK)
  then the EV joins our modem's network and its SDP request reaches us: joined.

PLC crosstalk lets neighbouring cables' EVs be heard: each EV's run is kept apart (up to
C_EVSE_match_parallel at once) and only the one whose CM_SLAC_MATCH.REQ comes to us
wins; a run that is not chosen ends quietly and is no failure.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field

from hal.v2g import slac_messages as m
from hal.v2g.slac_messages import CNF, IND, REQ, RSP, Frame, SlacError

__all__ = ["Frame", "Matcher", "Stage", "SlacError"]

# ISO 15118-3 Annex A, Table A.1 (HomePlug Green PHY timings and constants, EVSE side).
C_EV_MATCH_MNBC = 10  # M-Sounds the EV sends; announced in CM_SLAC_PARM.CNF
C_EV_MATCH_RETRY = 2  # repeats of CM_ATTEN_CHAR.IND without its RSP
TT_EVSE_MATCH_MNBC_S = 0.6  # sounds are collected this long from the first START_ATTEN
TT_MATCH_SEQUENCE_S = 0.4  # wait for the other side's next request
TT_MATCH_RESPONSE_S = 0.2  # wait for the answer to our CM_ATTEN_CHAR.IND
TT_EVSE_MATCH_SESSION_S = 10.0  # after the sounding window: the EV's CM_SLAC_MATCH.REQ
TT_EVSE_SLAC_INIT_S = 50.0  # from state B with 5 % PWM to CM_SLAC_PARM.REQ (20-50 s)
TT_MATCH_JOIN_S = 12.0  # after CM_SLAC_MATCH.CNF the link is up within this, or reset
TT_MATCHING_REPETITION_S = 10.0  # retries of a failed matching end within this
# ISO 15118-3 clause 8, Table 3.
C_CONN_MAX_MATCH = 3  # matching attempts before "unmatched"
C_EVSE_MATCH_PARALLEL = 5  # matching runs the EVSE keeps at once
# Not from the standard: the local modem answers CM_SET_KEY in milliseconds; real
# QCA700x modems have needed a retry.
SET_KEY_WAIT_S = TT_MATCH_SEQUENCE_S
SET_KEY_TRIES = 3


class Stage(enum.Enum):
    SET_KEY = "setting the modem's key"
    LISTENING = "matching"
    MATCHED = "matched, waiting for the EV to join"
    JOINED = "joined"
    FAILED = "failed"


class Step(enum.Enum):
    WAIT_START = "waiting for CM_START_ATTEN_CHAR.IND"
    SOUNDING = "sounding"
    WAIT_ATTEN_RSP = "waiting for CM_ATTEN_CHAR.RSP"
    WAIT_MATCH = "waiting for CM_SLAC_MATCH.REQ"


@dataclass
class Run:
    """One EV's matching run (ISO 15118-3 Annex A), by its MAC and RunID."""

    ev_mac: bytes
    run_id: bytes
    step: Step
    deadline: float
    session_deadline: float = 0.0
    profiles: list[list[int]] = field(default_factory=list)
    tries: int = 0


@dataclass
class Matcher:
    """The EVSE's SLAC for one plug-in: ``start``, then ``on_frame`` / ``on_time`` (each
    returns the frames to send) until ``stage`` is JOINED or FAILED; ``deadline`` says
    when ``on_time`` is next due. ``key`` is this plug-in's (NID, NMK)."""

    evse_mac: bytes
    key: tuple[bytes, bytes] = field(default_factory=m.new_key)
    modem_mac: bytes = m.QCA_LOCAL  # where CM_SET_KEY goes: the local modem only
    stage: Stage = Stage.SET_KEY
    reason: str = ""
    ev_mac: bytes = b""  # the EV that chose us
    run_id: bytes = b""
    runs: dict[bytes, Run] = field(default_factory=dict)
    failures: int = 0  # failed matching attempts (runs not chosen do not count)
    runs_seen: int = 0
    started_at: float = 0.0
    _first_failure_at: float | None = None
    _wait_until: float = 0.0  # set-key retry or join timeout
    _tries: int = 0

    # --- the plug-in ----------------------------------------------------------------------

    def start(self, now: float) -> list[Frame]:
        self.stage, self.started_at, self._tries = Stage.SET_KEY, now, 1
        self._wait_until = now + SET_KEY_WAIT_S
        return [self._set_key(self.key)]

    def leave(self) -> list[Frame]:
        """The vehicle left (or the pilot ended digital communication): the modem gets a
        random key of no session, so it leaves this session's network."""
        if self.stage is not Stage.FAILED:
            self.stage, self.reason = Stage.FAILED, "the vehicle left"
        self.runs.clear()
        return [self._set_key(m.new_key())]

    def joined(self) -> None:
        """The matched EV reached us over IP (its SDP request): the match holds."""
        if self.stage is Stage.MATCHED:
            self.stage = Stage.JOINED

    @property
    def deadline(self) -> float | None:
        if self.stage in (Stage.JOINED, Stage.FAILED):
            return None
        times = [r.deadline for r in self.runs.values()]
        if self.stage in (Stage.SET_KEY, Stage.MATCHED):
            times.append(self._wait_until)
        if self.stage in (Stage.SET_KEY, Stage.LISTENING) and not self.runs:
            times.append(self._give_up_at())  # (a run under way is let finish first)
        return min(times)

    def _give_up_at(self) -> float:
        end = self.started_at + TT_EVSE_SLAC_INIT_S
        if self._first_failure_at is not None:
            end = min(end, self._first_failure_at + TT_MATCHING_REPETITION_S)
        return end

    def _set_key(self, key: tuple[bytes, bytes]) -> Frame:
        nid, nmk = key
        return Frame(self.modem_mac, self.evse_mac, m.CM_SET_KEY | REQ,
                     m.set_key_req(nid, nmk, os.urandom(4)))

    def _fail(self, reason: str) -> list[Frame]:
        self.stage, self.reason = Stage.FAILED, reason
        self.runs.clear()
        return []

    # --- time -------------------------------------------------------------------------------

    def on_time(self, now: float) -> list[Frame]:
        out: list[Frame] = []
        if self.stage is Stage.SET_KEY and now >= self._wait_until:
            if self._tries >= SET_KEY_TRIES:
                return self._fail(f"the local modem did not confirm CM_SET_KEY "
                                  f"({self._tries} tries)")
            self._tries += 1
            self._wait_until = now + SET_KEY_WAIT_S
            out.append(self._set_key(self.key))
        if self.stage is Stage.MATCHED and now >= self._wait_until:
            # Table A.1 TT_match_join: no link by then, the EV retries the matching and
            # the EVSE starts over (a failed attempt).
            self.stage = Stage.LISTENING
            self._failed_attempt(now, "the EV did not join within TT_match_join")
        for run in [r for r in self.runs.values() if now >= r.deadline]:
            if self.stage is Stage.FAILED:
                return out  # the last attempt failed: the other runs went with it
            out += self._run_due(run, now)
        if self.stage in (Stage.SET_KEY, Stage.LISTENING) and not self.runs and (
                now >= self._give_up_at()):
            if self.runs_seen == 0:
                return self._fail("no CM_SLAC_PARM.REQ from an EV within TT_EVSE_SLAC_init")
            return self._fail(f"not matched: {self.reason or 'no EV chose this connector'}")
        return out

    def _run_due(self, run: Run, now: float) -> list[Frame]:
        if run.step is Step.SOUNDING:
            return self._characterise(run, now)
        if run.step is Step.WAIT_ATTEN_RSP and run.tries < 1 + C_EV_MATCH_RETRY:
            run.tries += 1
            run.deadline = now + TT_MATCH_RESPONSE_S
            return [self._atten_char(run)]
        if run.step is Step.WAIT_MATCH:
            del self.runs[run.ev_mac]  # this EV chose another connector: not ours
            return []
        self._run_failed(run, now, f"timeout while {run.step.value}")
        return []

    def _run_failed(self, run: Run, now: float, reason: str) -> None:
        self.runs.pop(run.ev_mac, None)
        self._failed_attempt(now, reason)

    def _failed_attempt(self, now: float, reason: str) -> None:
        # [V2G3-A09-124/125]: a failed matching is retried, at most C_conn_max_match
        # attempts, all within TT_matching_repetition; then "unmatched".
        self.failures += 1
        self.reason = reason
        if self._first_failure_at is None:
            self._first_failure_at = now
        if self.failures >= C_CONN_MAX_MATCH:
            self._fail(f"matching failed {self.failures} times (last: {reason})")

    # --- frames -----------------------------------------------------------------------------

    def on_frame(self, frame: Frame, now: float) -> list[Frame]:
        """One frame addressed to us or broadcast. A payload too short for its type
        raises SlacError (the shell counts it and drops it)."""
        if self.stage in (Stage.FAILED, Stage.JOINED):
            return []
        base, kind, p = frame.base, frame.kind, frame.payload
        if base == m.CM_SET_KEY and kind == CNF:
            if self.stage is Stage.SET_KEY:
                # The answer's arrival is what counts: QCA700x modems report result 1
                # for a local CM_SET_KEY they did apply (seen by open implementations).
                self.stage = Stage.LISTENING
            return []
        if self.stage is Stage.MATCHED:
            return self._match_again(frame, now)
        if base == m.CM_ATTEN_PROFILE and kind == IND:
            ev_mac = m.field(p, 0, 6, "CM_ATTEN_PROFILE.IND")
            return self._profile(self.runs.get(ev_mac), p, now)
        if base == m.CM_SLAC_PARM and kind == REQ:
            return self._parm(frame, m.field(p, m.PARM_REQ_RUN_ID, m.RUN_ID_LEN,
                                             "CM_SLAC_PARM.REQ"), now)
        run = self.runs.get(frame.src)
        if run is None:
            return []  # no run of this sender: a stray or a late frame
        if base == m.CM_START_ATTEN_CHAR and kind == IND:
            rid = m.field(p, m.START_ATTEN_RUN_ID, m.RUN_ID_LEN, "CM_START_ATTEN_CHAR.IND")
            if rid == run.run_id and run.step is Step.WAIT_START:
                run.step, run.deadline = Step.SOUNDING, now + TT_EVSE_MATCH_MNBC_S
                run.session_deadline = run.deadline + TT_EVSE_MATCH_SESSION_S
            return []
        if base == m.CM_ATTEN_CHAR and kind == RSP and run.step is Step.WAIT_ATTEN_RSP:
            if m.field(p, m.ATTEN_RSP_RUN_ID, m.RUN_ID_LEN, "CM_ATTEN_CHAR.RSP") != run.run_id:
                return []
            if m.field(p, m.ATTEN_RSP_RESULT, 1, "CM_ATTEN_CHAR.RSP") != b"\x00":
                self._run_failed(run, now, "the EV refused the attenuation characterisation")
                return []
            run.step, run.deadline = Step.WAIT_MATCH, run.session_deadline
            return []
        if base == m.CM_VALIDATE and kind == REQ and run.step is Step.WAIT_MATCH:
            return [Frame(run.ev_mac, self.evse_mac, m.CM_VALIDATE | CNF,
                          m.validate_cnf_not_required())]
        if base == m.CM_SLAC_MATCH and kind == REQ:
            return self._match(run, p, now)
        return []

    def _parm(self, frame: Frame, run_id: bytes, now: float) -> list[Frame]:
        run = self.runs.get(frame.src)
        if run is None or run.run_id != run_id:
            if run is None and len(self.runs) >= C_EVSE_MATCH_PARALLEL:
                return []
            # A new run (or this EV started over with a new RunID).
            self.runs[frame.src] = Run(frame.src, run_id, Step.WAIT_START,
                                       now + TT_MATCH_SEQUENCE_S)
            self.runs_seen += 1
        # A repeated request (our CNF was lost) gets the same answer.
        return [Frame(frame.src, self.evse_mac, m.CM_SLAC_PARM | CNF,
                      m.slac_parm_cnf(frame.src, run_id, C_EV_MATCH_MNBC,
                                      round(TT_EVSE_MATCH_MNBC_S * 10)))]

    def _profile(self, run: Run | None, p: bytes, now: float) -> list[Frame]:
        if run is None or run.step is not Step.SOUNDING:
            return []
        groups = m.field(p, m.PROFILE_GROUPS, 1, "CM_ATTEN_PROFILE.IND")[0]
        if not 0 < groups <= m.ATTEN_GROUPS:
            raise SlacError(f"CM_ATTEN_PROFILE.IND with {groups} groups")
        run.profiles.append(list(m.field(p, 8, groups, "CM_ATTEN_PROFILE.IND")))
        if len(run.profiles) >= C_EV_MATCH_MNBC:
            return self._characterise(run, now)
        return []

    def _characterise(self, run: Run, now: float) -> list[Frame]:
        if not run.profiles:
            self._run_failed(run, now, "no sounds from the EV reached the modem")
            return []
        run.step, run.tries = Step.WAIT_ATTEN_RSP, 1
        run.deadline = now + TT_MATCH_RESPONSE_S
        return [self._atten_char(run)]

    def _atten_char(self, run: Run) -> Frame:
        groups = min(len(x) for x in run.profiles)
        avg = [round(sum(x[g] for x in run.profiles) / len(run.profiles))
               for g in range(groups)]
        return Frame(run.ev_mac, self.evse_mac, m.CM_ATTEN_CHAR | IND,
                     m.atten_char_ind(run.ev_mac, run.run_id, len(run.profiles), avg))

    def _match(self, run: Run, p: bytes, now: float) -> list[Frame]:
        if run.step not in (Step.WAIT_ATTEN_RSP, Step.WAIT_MATCH) or (
                self.stage is not Stage.LISTENING):
            return []
        if m.field(p, m.MATCH_REQ_RUN_ID, m.RUN_ID_LEN, "CM_SLAC_MATCH.REQ") != run.run_id:
            return []
        nid, nmk = self.key
        self.stage, self.ev_mac, self.run_id = Stage.MATCHED, run.ev_mac, run.run_id
        self.runs.clear()  # the other runs' EVs chose elsewhere (or will retry)
        self._wait_until = now + TT_MATCH_JOIN_S
        return [Frame(run.ev_mac, self.evse_mac, m.CM_SLAC_MATCH | CNF,
                      m.slac_match_cnf(run.ev_mac, self.evse_mac, run.run_id, nid, nmk))]

    def _match_again(self, frame: Frame, now: float) -> list[Frame]:
        """Our CM_SLAC_MATCH.CNF was lost and the EV asks again: the same answer."""
        if frame.base != m.CM_SLAC_MATCH or frame.kind != REQ or frame.src != self.ev_mac:
            return []
        if m.field(frame.payload, m.MATCH_REQ_RUN_ID, m.RUN_ID_LEN,
                   "CM_SLAC_MATCH.REQ") != self.run_id:
            return []
        nid, nmk = self.key
        return [Frame(self.ev_mac, self.evse_mac, m.CM_SLAC_MATCH | CNF,
                      m.slac_match_cnf(self.ev_mac, self.evse_mac, self.run_id, nid, nmk))]
