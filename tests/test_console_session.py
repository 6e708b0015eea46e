"""The console's pure parts with the time passed in: the line discipline (editing keys,
history, completion, what a dumb terminal gets), the session (login, lock-out and its
expiry, idle logout, floods, busy), password hashes and the [console] section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from firmware.config import ConfigError
from firmware.console import passwords
from firmware.console.commands import complete
from firmware.console.line import LineEditor, Signal
from firmware.console.session import (
    FLOOD_BURST_BYTES,
    FLOOD_RATE_BYTES_S,
    Record,
    Run,
    Session,
    State,
    Verify,
)
from firmware.console.settings import parse

HASH = passwords.hash_password("secret-1", salt=b"0123456789abcdef")


def _editor() -> LineEditor:
    e = LineEditor(lambda typed: complete(typed, (1, 2)))
    e.reset("> ")
    return e


def test_backspace_ctrl_u_ctrl_w_and_ctrl_c_edit_the_line() -> None:
    e = _editor()
    out = e.feed(b"statux\x7fs\r")
    assert out.lines == ["status"]
    assert b"\b \b" in out.echo
    assert e.feed(b"reboot\x15status 1\r").lines == ["status 1"]
    assert e.feed(b"unlock 1\x17\x17log\r").lines == ["log"]
    out = e.feed(b"reboot\x03")
    assert out.signals == [Signal.INTERRUPT] and not out.lines and e.text == ""
    assert e.feed(b"a\r\nb\n").lines == ["a", "b"]  # CR LF is one Enter; LF alone too


def test_history_with_the_arrow_keys_and_swallowed_escapes() -> None:
    e = _editor()
    e.feed(b"status\rerrors\r")
    assert e.feed(b"\x1b[A\x1b[A\r").lines == ["status"]
    assert e.feed(b"\x1bOA\r").lines == ["status"]  # SS3 form (application cursor keys)
    e.feed(b"\x1b[A\x1b[B\x1b[B")
    assert e.text == ""
    out = e.feed(b"\x1b[3~\x1b[1;5C\x1bxlog\r")  # delete, ctrl-right, alt-x: swallowed
    assert out.lines == ["log"] and e.stats.escapes == 3


def test_tab_completes_commands_words_and_connectors() -> None:
    e = _editor()
    assert bytes(e.feed(b"sta\t").echo) == b"status "
    e.feed(b"\x15")
    e.feed(b"selftest c\t")
    assert e.text == "selftest contactors "
    e.feed(b"\t")
    assert e.text == "selftest contactors "  # two connectors: both listed, none chosen
    e.feed(b"\x15")
    out = e.feed(b"s\t")  # several commands: listed, the line drawn again
    assert b"selftest" in out.echo and b"session" in out.echo and b"status" in out.echo
    assert e.text == "s"


def test_only_ascii_goes_back_and_garbage_is_counted_not_typed() -> None:
    e = _editor()
    junk = bytes(range(0x80, 0x100)) + b"\x00\x01\x02\x05\x06\x0e"
    out = e.feed(junk + b"log\r")
    assert out.lines == ["log"]
    assert e.stats.garbage == len(junk)
    assert all(b < 0x80 for b in out.echo)


def test_a_line_over_the_limit_is_refused_whole_never_cut_short() -> None:
    e = LineEditor(max_line=20)
    e.reset("> ")
    out = e.feed(b"reboot" + b" " * 30 + b"\r")
    assert out.lines == ["\x00overlong"] and e.stats.overlong == 1
    assert out.echo.count(b"\a") == 1  # one bell, not one per byte
    assert e.feed(b"status\r").lines == ["status"]


def test_a_password_is_never_echoed_nor_kept() -> None:
    e = _editor()
    e.reset("password: ", secret=True)
    out = e.feed(b"hunter2\r")
    assert out.lines == ["hunter2"] and b"hunter2" not in out.echo
    assert e.history == []


# --- the session ----------------------------------------------------------------------


def _session() -> Session:
    return Session("CB-1", max_failures=3, lockout_s=60, idle_logout_s=600)


def _login(s: Session, user: str, password: str, now: float, ok: bool) -> list[object]:
    s.feed(f"{user}\r".encode(), now)
    out = s.feed(f"{password}\r".encode(), now)
    assert out.requests == [Verify(user, password)]
    assert s.state is State.CHECKING
    result = s.verified(ok, "service" if ok else None, now)
    return list(result.requests)


def test_login_then_a_command_then_logout() -> None:
    s = _session()
    assert b"login: " in s.connected(0.0).data
    requests = _login(s, "tech", "pw", 1.0, ok=True)
    assert requests == [Record("MaintenanceLoginAccepted", "console: tech (service)")]
    out = s.feed(b"status\r", 2.0)
    assert out.requests == [Run("tech", "service", "status")]
    assert s.state is State.BUSY
    assert s.feed(b"reboot\r", 2.1).requests == []  # dropped while the command runs
    assert s.counters.busy_dropped == 7
    assert b"tech@CB-1# " in s.finished("ok", 3.0).data
    out = s.feed(b"logout\r", 4.0)
    assert s.state is State.LOGIN and isinstance(out.requests[0], Record)


def test_lock_out_after_repeated_failures_and_its_expiry() -> None:
    s = _session()
    for i in range(3):
        requests = _login(s, "tech", "wrong", 10.0 + i, ok=False)
    kinds = [r.kind for r in requests if isinstance(r, Record)]
    assert kinds == ["MaintenanceLoginFailed", "ConsoleLockedOut"]
    assert s.state is State.LOCKED
    out = s.feed(b"tech\rpw\r", 20.0)
    assert out.requests == [] and b"try again in 52 s" in out.data
    assert s.tick(71.0).data == b""  # 60 s from the third failure (at 12 s): not yet
    assert b"console unlocked" in s.tick(72.0).data
    assert _login(s, "tech", "pw", 73.0, ok=True)[0] == Record(
        "MaintenanceLoginAccepted", "console: tech (service)")


def test_a_success_resets_the_failure_count() -> None:
    s = _session()
    _login(s, "tech", "wrong", 1.0, ok=False)
    _login(s, "tech", "wrong", 2.0, ok=False)
    _login(s, "tech", "pw", 3.0, ok=True)
    s.feed(b"logout\r", 4.0)
    _login(s, "tech", "wrong", 5.0, ok=False)
    _login(s, "tech", "wrong", 6.0, ok=False)
    assert s.state is State.LOGIN


def test_idle_logout() -> None:
    s = _session()
    _login(s, "tech", "pw", 0.0, ok=True)
    s.feed(b"x", 100.0)
    assert s.tick(699.0).data == b""
    out = s.tick(700.0)
    assert b"logged out" in out.data and s.state is State.LOGIN
    assert out.requests and isinstance(out.requests[0], Record)
    assert s.editor.history == []


def test_a_flood_is_dropped_and_counted_then_input_comes_back() -> None:
    s = _session()
    out = s.feed(b"a" * (FLOOD_BURST_BYTES + 1000), 0.0)
    assert s.counters.flood_dropped == 1000
    assert b"input flood" in out.data
    s.feed(b"\x15", 0.0)
    later = 2 * FLOOD_BURST_BYTES / FLOOD_RATE_BYTES_S
    s.feed(b"\x15tech\r", later)
    assert s.state is State.PASSWORD


# --- passwords and the section ------------------------------------------------------


def test_password_hashes_are_salted_and_verify() -> None:
    one, two = passwords.hash_password("pw"), passwords.hash_password("pw")
    assert one != two and one.startswith("scrypt$16384$8$1$")
    assert passwords.verify("pw", one) and not passwords.verify("pW", one)
    assert not passwords.verify("pw", "scrypt$1$1$1$AA==$AA==")  # malformed: never valid


def test_the_console_section_is_strict() -> None:
    good = {"device": "pty", "users": {"tech": {"role": "service", "password": HASH}}}
    assert parse(good).baud == 115200
    for change, key in (({"baud": 12345}, "console.baud"),
                        ({"max_failures": 0}, "console.max_failures"),
                        ({"colour": "red"}, "console.colour"),
                        ({"users": {}}, "console.users"),
                        ({"users": {"Tech!": {"role": "service", "password": HASH}}},
                         "console.users"),
                        ({"users": {"tech": {"role": "root", "password": HASH}}},
                         "console.users.tech.role"),
                        ({"users": {"tech": {"role": "viewer", "password": "secret"}}},
                         "console.users.tech.password")):
        with pytest.raises(ConfigError) as err:
            parse({**good, **change})
        assert err.value.key == key, (change, err.value)


ROOT = Path(__file__).resolve().parent.parent


def _chargebay(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "firmware.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_chargebay_passwd_prints_a_hash_the_console_accepts() -> None:
    done = _chargebay("passwd", "--stdin", stdin="correct horse\n")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert passwords.verify("correct horse", line) and "correct horse" not in line
    assert _chargebay("passwd", "--stdin", stdin="\n").returncode == 2


def test_chargebay_console_on_a_missing_port_is_one_line(tmp_path: Path) -> None:
    done = _chargebay("console", str(tmp_path / "ttyNOPE"))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "ttyNOPE" in done.stderr
