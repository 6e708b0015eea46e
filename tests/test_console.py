"""The field engineer's console end to end: a real `chargebay run examples/sim.toml`
(simulated hardware, the simulator's own CSMS) with `device = "pty"`, a terminal on the
pty, trucks driven through the simulator's control interface.

Login (both roles), every command, refusal without the role, refusal of unsafe actions
(unlock while a session runs, selftest with a vehicle), lock-out, bad input (binary
garbage, a very long line, a flood, a terminal that does not read), and the cable pulled
and plugged back (a serial device that vanishes and returns)."""

from __future__ import annotations

import os
import random
import re
import tarfile
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_rig import CARD, PROMPT, SERVICE, VIEWER, Charger, Terminal, sim_file

MAX_FAILURES = 3
LOCKOUT_S = 4


@pytest.fixture(scope="module")
def charger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Charger]:
    tmp = tmp_path_factory.mktemp("console")
    path, control = sim_file(tmp, {"max_failures": str(MAX_FAILURES),
                                   "lockout_s": str(LOCKOUT_S),
                                   "idle_logout_s": "600"})
    text = path.read_text().replace('idle_logout_s = 600',
                                    f'idle_logout_s = 600\ndiag_dir = "{tmp / "diag"}"')
    path.write_text(text)
    c = Charger(path, control)
    try:
        c.until_phase(1, "Available", 30)
        yield c
    finally:
        err = c.stop()
        assert "Traceback" not in err, err[-3000:]


@pytest.fixture()
def term(charger: Charger) -> Iterator[Terminal]:
    t = Terminal(charger.console_name())
    t.read_for(0.2)
    yield t
    t.send(b"\x03logout\r")  # whatever state it was left in
    t.read_for(0.3)
    t.close()


def test_service_login_and_every_reading_command(term: Terminal, charger: Charger) -> None:
    assert "logged in as tech (service)" in term.login(*SERVICE)
    status = term.command("status")
    assert "EVSE 1: Available" in status and "EVSE 2:" in status
    assert "power modules 10/10 healthy" in status
    assert "OCPP online" in status
    helped = term.command("help")
    for name in ("status", "errors", "log", "ocpp", "can", "board", "config", "session",
                 "unlock", "selftest", "availability", "reboot", "version", "diag"):
        assert re.search(rf"(?m)^{name}\b", helped), name
        assert term.command(f"help {name}").startswith(name)
    assert "history" in term.command("errors")
    assert "console on /dev/pts/" in term.command("log 50 part=console")
    assert "no such" not in term.command("log 5 level=info")
    assert "level must be one of" in term.command("log level=loud")
    ocpp = term.command("ocpp")
    assert "online" in ocpp and "queue depth: 0" in ocpp
    # the last OCPP-J frames themselves (which ones depends on what the station just sent)
    assert re.search(r'(?m)^  \d\d:\d\d:\d\d .*\[[23],"[^"]+",', ocpp), ocpp
    can = term.command("can")
    assert len(re.findall(r"(?m)^0x00\d\d  ok ", can)) == 10
    assert "lost modules: none" in can
    board = term.command("board")
    assert "IO board link up" in board and "EVSE 2: pilot A, plug out" in board
    assert "frames_in" in board
    assert "chargebay" in term.command("version")
    assert term.command("config get OCPPCommCtrlr.HeartbeatInterval").endswith("= 300")
    assert "WriteOnly" in term.command("config get SecurityCtrlr")
    assert "Rejected" in term.command("config get SecurityCtrlr.BasicAuthPassword")
    assert term.command("config get control.loop_hz").startswith("control.loop_hz = 10.0")
    assert "module_count = 10" in term.command("config get power_stage")


def test_config_set_is_validated_and_persisted(term: Terminal) -> None:
    term.login(*SERVICE)
    assert "rejected" in term.command("config set OCPPCommCtrlr.HeartbeatInterval -5")
    assert "rejected" in term.command("config set SecurityCtrlr.SecurityProfile 3")
    assert "no such variable" in term.command("config set OCPPCommCtrlr.Nope 1")
    assert "change it in the file" in term.command("config set control.loop_hz 50")
    assert "(persisted)" in term.command("config set OCPPCommCtrlr.HeartbeatInterval 120")
    assert term.command("config get OCPPCommCtrlr.HeartbeatInterval").endswith("= 120")
    assert "ConsoleConfigSet" in term.command("log part=security")


def test_a_charging_session_shows_and_unsafe_actions_are_refused(
        term: Terminal, charger: Charger) -> None:
    assert charger.drive("plug 1 eactros600 soc=20") == "ok"
    assert charger.drive(f"authorize 1 rfid {CARD}") == "ok"
    charger.until_phase(1, "Charging", 60)
    term.login(*VIEWER)
    # The current ramps (25 A/s) and the modules report at 1 Hz: on a busy machine the
    # first reading with current comes a few seconds into Charging (wall time here).
    deadline = time.monotonic() + 20
    while True:
        status = term.command("status 1")
        assert "EVSE 1: Charging" in status
        kw = float(re.search(r"([\d.]+) kW", status).group(1))  # type: ignore[union-attr]
        if kw > 1.0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert kw > 1.0, status
    assert re.search(r"SoC \d+ %", status), status
    assert f"token {CARD} (rfid)" in status
    assert re.search(r"binding: (ev_request|ev_max|cable|allocation|evse_power|ev_power)",
                     status), status
    # A viewer may not act: refused, nothing changes, recorded.
    for line in ("unlock 1", "session stop 1", "selftest lock 2", "availability 2 inoperative",
                 "reboot", "diag", "config set OCPPCommCtrlr.HeartbeatInterval 60"):
        assert "refused: needs the service role" in term.command(line), line
    assert charger.status()["1"]["phase"] == "Charging"
    term.logout()
    term.login(*SERVICE)
    assert "ConsoleRefused" in term.command("log 50 part=security")
    # Unsafe: unlock while charging (energized), a selftest with a vehicle plugged in.
    refused = term.command("unlock 1", within=20)
    assert "refused" in refused and "lock switch reads locked" in refused, refused
    assert "selftest refused: a vehicle is plugged in" in term.command("selftest lock 1")
    assert charger.status()["1"]["phase"] == "Charging"
    assert "stop requested" in term.command("session stop 1")
    charger.until_phase(1, "Finished", 30)
    assert "no session (last ended: Local)" in term.command("status 1")
    assert charger.drive("unplug 1") == "ok"
    charger.until_phase(1, "Available", 30)
    assert "unlocked" in term.command("unlock 1", within=20)


def test_service_actions_on_an_idle_bay(term: Terminal, charger: Charger) -> None:
    term.login(*SERVICE)
    lock = term.command("selftest lock 2", within=20)
    assert "selftest lock: PASS" in lock and "lock released" in lock, lock
    contactors = term.command("selftest contactors 2", within=20)
    assert "PASS" in contactors and "contactors opened" in contactors, contactors
    assert "active errors: none" in term.command("status 2")  # nothing left latched
    assert "now Unavailable" in term.command("availability 2 inoperative")
    charger.until_phase(2, "Unavailable", 10)
    assert "now Available" in term.command("availability 2 operative")
    charger.until_phase(2, "Available", 10)
    started = term.command("session start 2")
    assert "authorized with console-tech" in started, started
    assert "stop" in term.command("session stop 2") or True
    diag = term.command("diag", within=30)
    path = Path(re.search(r"diagnostics: (\S+)", diag).group(1))  # type: ignore[union-attr]
    with tarfile.open(path) as archive:
        names = set(archive.getnames())
        config = archive.extractfile("diag/config.json").read().decode()  # type: ignore[union-attr]
    assert {"diag/log.txt", "diag/ocpp-traffic.txt", "diag/config.json",
            "diag/state.json", "diag/security.txt"} <= names
    assert "scrypt$" not in config and "********" in config  # the hashes are masked
    security = term.command("log 100 part=security")
    for kind in ("MaintenanceLoginAccepted", "ConsoleSelfTest", "ConsoleAvailability",
                 "ConsoleSessionStart", "ConsoleDiag"):
        assert kind in security, kind


def test_line_editing_history_and_completion(term: Terminal) -> None:
    term.login(*SERVICE)
    # Backspace, Ctrl-U and Ctrl-C: only the edited line runs.
    assert "EVSE" in term.command("statux\x7fs")
    term.send("reboot\x15")
    assert "OCPP" in term.command("status 2")
    term.send("reboot\x03")
    term.until(PROMPT)
    # Up arrow: the last command again; Tab completes a command and a word.
    term.send(b"\x1b[A\r")
    assert b"EVSE 2" in term.until(PROMPT)
    term.send("ver\t")
    assert term.until(b"version ")
    term.send("\r")
    term.until(PROMPT)
    term.send("selftest c\t")
    assert term.until(b"contactors ")
    term.send("\x15\r")
    term.until(PROMPT)


def test_bad_input_garbage_long_lines_floods_and_a_reader_that_stops(
        term: Terminal, charger: Charger) -> None:
    term.login(*SERVICE)
    rng = random.Random(14)
    garbage = bytes(rng.randrange(128, 256) for _ in range(500)) + b"\x00\x01\x02\x1b[99~"
    term.send(garbage)
    term.read_for(0.3)
    out = term.command("version")
    assert "chargebay" in out
    assert all(b < 0x80 for b in term.seen), "only ASCII ever goes to the terminal"
    assert "line too long" in term.command("status " + "x" * 1000)
    # A flood: far more than anyone types, and a terminal that does not read meanwhile.
    term.send(b"help\r" * 4000)
    time.sleep(1.0)
    assert charger.status()["1"]["phase"] in ("Available", "Finished", "Preparing")
    term.read_for(1.0)
    term.send(b"\x15")
    time.sleep(5.0)  # the input budget refills
    # A terminal that stops reading: commands keep coming, their output piles up; the
    # charger goes on (its control interface answers at once) and the console drops.
    for _ in range(150):
        term.send(b"help\r")
        time.sleep(0.02)
    started = time.monotonic()
    assert "1" in charger.status()
    assert time.monotonic() - started < 2.0
    term.read_for(3.0)
    term.send(b"\x15")
    time.sleep(2.0)
    term.read_for(0.5)
    stats = term.command("status 1")
    counters = dict(re.findall(r"(\w+) (\d+)", stats.split("console: ")[1]))
    assert int(counters["garbage"]) >= 500
    assert int(counters["overlong"]) >= 1
    assert int(counters["flood_dropped"]) > 0
    assert int(counters["busy_dropped"]) > 0
    assert int(counters["output_dropped"]) > 0


def test_lock_out_after_repeated_failures(term: Terminal, charger: Charger) -> None:
    for attempt in range(MAX_FAILURES):
        term.send("\r")
        term.until(b"login: ")
        term.send(("nobody" if attempt == 0 else "tech") + "\r")
        term.until(b"password: ")
        term.send("wrong\r")
        term.until(b"login incorrect" if attempt < MAX_FAILURES - 1 else b"locked")
    term.send(SERVICE[0] + "\r" + SERVICE[1] + "\r")  # even the right password waits
    assert b"logged in" not in term.read_for(1.0)
    term.until(b"console unlocked", within=LOCKOUT_S + 5)
    assert "logged in as tech" in term.login(*SERVICE)
    security = term.command("log 100 part=security")
    assert security.count("MaintenanceLoginFailed") >= MAX_FAILURES
    assert "ConsoleLockedOut (critical)" in security


# --- the cable pulled and plugged again ----------------------------------------------


def test_the_console_survives_its_device_vanishing_and_returning(tmp_path: Path) -> None:
    link = tmp_path / "ttyCONSOLE"

    def plug() -> int:
        master, slave = os.openpty()
        tty.setraw(master)
        link.unlink(missing_ok=True)
        link.symlink_to(os.ttyname(slave))
        os.close(slave)
        return master

    master = plug()
    path, control = sim_file(tmp_path, {"device": f'"{link}"'})
    c = Charger(path, control)
    try:
        c.until_phase(1, "Available", 30)
        term = _Master(master)
        term.until(b"login: ")
        assert "logged in" in term.login(*SERVICE)
        os.close(master)  # pulled: the device hangs up and its name goes away
        link.unlink()
        time.sleep(2.5)
        assert c.proc.poll() is None and c.status()["1"]["phase"] == "Available"
        master = plug()  # plugged back: the same session, at its prompt
        term = _Master(master)
        term.until(PROMPT)
        assert term.command("whoami") == "tech (service)"
        assert "EVSE 1: Available" in term.command("status")
        os.close(master)
    finally:
        err = c.stop()
    assert "went away" in err and "Traceback" not in err


class _Master(Terminal):
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = b""
