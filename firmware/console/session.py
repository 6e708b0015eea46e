"""One console session as a pure machine: login, roles, lock-out, idle logout, floods.

Bytes and the time come in as values; what to send back and what to do come out as
values (``Out``): ``Verify`` a password (slow: scrypt, the shell runs it off the event
loop), ``Run`` a command line, ``Record`` a security event. The shell feeds the answers
back (``verified``, ``finished``). Nobody waits on anybody.

States: LOGIN (user name) -> PASSWORD (nothing echoed) -> CHECKING -> SHELL -> BUSY (a
command runs; input is dropped and counted) -> SHELL; LOCKED after ``max_failures``
failed logins in a row, for ``lockout_s``. A shell idle for ``idle_logout_s`` logs out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from firmware.console.line import OVERLONG, Completer, Edited, LineEditor, Signal

# Input budget: a person types a few bytes a second and a paste is a line or two; more
# than this is a flood (a babbling cable, a cat of a binary file) and is dropped.
FLOOD_BURST_BYTES = 4096
FLOOD_RATE_BYTES_S = 1024.0
PASSWORD_PROMPT_S = 60.0  # an abandoned password prompt goes back to the login prompt
MAX_NAME = 32


class State(enum.Enum):
    LOGIN = "login"
    PASSWORD = "password"
    CHECKING = "checking"
    LOCKED = "locked"
    SHELL = "shell"
    BUSY = "busy"


@dataclass(frozen=True, slots=True)
class Verify:
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class Run:
    user: str
    role: str
    line: str


@dataclass(frozen=True, slots=True)
class Record:
    """A security event (firmware/security_log.py); kinds named as OCPP's where one fits."""

    kind: str
    tech_info: str
    critical: bool = False


Request = Verify | Run | Record


@dataclass
class Out:
    data: bytearray = field(default_factory=bytearray)
    requests: list[Request] = field(default_factory=list)

    def say(self, text: str) -> None:
        """Text for the terminal: ASCII only, CR LF line ends."""
        ascii_text = text.encode("ascii", "replace").decode("ascii")
        self.data += ascii_text.replace("\r\n", "\n").replace("\n", "\r\n").encode("ascii")


@dataclass
class Counters:
    flood_dropped: int = 0  # input bytes over the budget
    busy_dropped: int = 0  # input bytes while a command ran
    locked_dropped: int = 0  # input bytes while locked out
    logins: int = 0
    failures: int = 0
    lockouts: int = 0


class Session:
    def __init__(self, station_id: str, max_failures: int, lockout_s: float,
                 idle_logout_s: float, complete: Completer | None = None) -> None:
        self.station_id = station_id
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self.idle_logout_s = idle_logout_s
        self.editor = LineEditor(complete)
        self.state = State.LOGIN
        self.user: str | None = None
        self.role: str | None = None
        self.counters = Counters()
        self._name = ""
        self._failures = 0  # in a row, whoever tried
        self._locked_until = 0.0
        self._last_input = 0.0
        self._prompt_at = 0.0
        self._budget = float(FLOOD_BURST_BYTES)
        self._budget_at: float | None = None
        self._flooding = False

    # --- from the shell ----------------------------------------------------------------

    def connected(self, now: float) -> Out:
        """The device is open (again): a banner and the login prompt."""
        out = Out()
        out.say(f"\nchargebay {self.station_id} service console\n")
        if self.state in (State.SHELL, State.BUSY):
            out.data += b"\r\n" + self.editor.redraw()
        elif self.state is State.LOCKED:
            self._locked_notice(now, out)
        else:
            self._to_login(now, out)
        return out

    def feed(self, data: bytes, now: float) -> Out:
        out = Out()
        data = self._within_budget(data, now, out)
        if not data:
            return out
        if self.state is State.BUSY or self.state is State.CHECKING:
            self.counters.busy_dropped += len(data)
            return out
        if self.state is State.LOCKED:
            self.counters.locked_dropped += len(data)
            if any(b in (0x0D, 0x0A) for b in data):
                self._locked_notice(now, out)
            return out
        self._last_input = now
        edited = self.editor.feed(data)
        self._apply(edited, now, out)
        return out

    def verified(self, ok: bool, role: str | None, now: float) -> Out:
        out = Out()
        if self.state is not State.CHECKING:
            return out
        user = self._name
        if ok and role is not None:
            self._failures = 0
            self.user, self.role = user, role
            self.counters.logins += 1
            self.state = State.SHELL
            self._last_input = now
            out.requests.append(Record("MaintenanceLoginAccepted",
                                       f"console: {user} ({role})"))
            out.say(f"logged in as {user} ({role}); `help` lists the commands\n")
            out.data += self.editor.reset(self._shell_prompt())
            return out
        self._failures += 1
        self.counters.failures += 1
        out.requests.append(Record("MaintenanceLoginFailed",
                                   f"console: user {user!r}, failure {self._failures} in a row"))
        if self._failures >= self.max_failures:
            self.state = State.LOCKED
            self._locked_until = now + self.lockout_s
            self.counters.lockouts += 1
            out.requests.append(Record(
                "ConsoleLockedOut", f"console: {self._failures} failed logins in a row; "
                f"locked for {self.lockout_s:.0f} s", critical=True))
            self._locked_notice(now, out)
            return out
        out.say("login incorrect\n")
        self._to_login(now, out)
        return out

    def finished(self, text: str, now: float) -> Out:
        """A command's output; back to the prompt."""
        out = Out()
        if self.state is not State.BUSY:
            return out
        if text:
            out.say(text if text.endswith("\n") else text + "\n")
        self.state = State.SHELL
        self._last_input = now  # a long command is not idleness
        out.data += self.editor.reset(self._shell_prompt())
        return out

    def tick(self, now: float) -> Out:
        out = Out()
        if self.state is State.LOCKED and now >= self._locked_until:
            self._failures = 0
            out.say("\nconsole unlocked\n")
            self._to_login(now, out)
        elif self.state is State.SHELL and now - self._last_input >= self.idle_logout_s:
            out.requests.append(Record("ConsoleLogout",
                                       f"console: {self.user} idle {self.idle_logout_s:.0f} s"))
            out.say(f"\nidle for {self.idle_logout_s:.0f} s: logged out\n")
            self._logout(now, out)
        elif self.state is State.PASSWORD and now - self._prompt_at >= PASSWORD_PROMPT_S:
            out.say("\n")
            self._to_login(now, out)
        return out

    # --- inside --------------------------------------------------------------------------

    def _within_budget(self, data: bytes, now: float, out: Out) -> bytes:
        if self._budget_at is not None:
            self._budget = min(float(FLOOD_BURST_BYTES),
                               self._budget + (now - self._budget_at) * FLOOD_RATE_BYTES_S)
        self._budget_at = now
        take = min(len(data), int(self._budget))
        self._budget -= take
        if take < len(data):
            self.counters.flood_dropped += len(data) - take
            if not self._flooding:
                self._flooding = True
                out.say("\n[input flood: dropping input]\n")
                out.data += self.editor.redraw()
        elif self._flooding and take:
            self._flooding = False
        return data[:take]

    def _apply(self, edited: Edited, now: float, out: Out) -> None:
        out.data += edited.echo
        for signal in edited.signals:
            if signal is Signal.INTERRUPT:
                if self.state is State.PASSWORD:
                    self._to_login(now, out)
                else:
                    out.data += self.editor.reset(self.editor.prompt)
            elif signal is Signal.END and self.state is State.SHELL:
                self._logout(now, out, record=True)
        for line in edited.lines:
            if self.state is State.LOGIN:
                self._on_name(line, now, out)
            elif self.state is State.PASSWORD:
                self.state = State.CHECKING
                out.requests.append(Verify(self._name, line))
            elif self.state is State.SHELL:
                self._on_command(line, now, out)
            else:  # a command started by an earlier line of the same paste
                self.counters.busy_dropped += len(line) + 1

    def _on_name(self, line: str, now: float, out: Out) -> None:
        name = line.strip()
        if line == OVERLONG or len(name) > MAX_NAME:
            out.say("user name too long\n")
            out.data += self.editor.reset("login: ")
        elif not name:
            out.data += self.editor.reset("login: ")
        else:
            self._name = name
            self.state = State.PASSWORD
            self._prompt_at = now
            out.data += self.editor.reset("password: ", secret=True)

    def _on_command(self, line: str, now: float, out: Out) -> None:
        if line == OVERLONG:
            out.say(f"line too long (at most {self.editor.max_line} characters): "
                    "not run\n")
            out.data += self.editor.reset(self._shell_prompt())
            return
        words = line.split()
        if not words:
            out.data += self.editor.reset(self._shell_prompt())
        elif words[0] in ("logout", "exit", "quit"):
            self._logout(now, out, record=True)
        elif words[0] == "whoami":
            out.say(f"{self.user} ({self.role})\n")
            out.data += self.editor.reset(self._shell_prompt())
        else:
            assert self.user is not None and self.role is not None
            self.state = State.BUSY
            out.requests.append(Run(self.user, self.role, line.strip()))

    def _logout(self, now: float, out: Out, record: bool = False) -> None:
        if record:
            out.requests.append(Record("ConsoleLogout", f"console: {self.user} logged out"))
            out.say("logged out\n")
        self.user = self.role = None
        self.editor.history.clear()  # the next engineer does not see this one's commands
        self._to_login(now, out)

    def _to_login(self, now: float, out: Out) -> None:
        self.state = State.LOGIN
        self._name = ""
        out.data += self.editor.reset("login: ")

    def _locked_notice(self, now: float, out: Out) -> None:
        left = max(0.0, self._locked_until - now)
        out.say(f"\nconsole locked after {self.max_failures} failed logins; "
                f"try again in {left:.0f} s\n")

    def _shell_prompt(self) -> str:
        mark = "#" if self.role == "service" else ">"
        return f"{self.user}@{self.station_id}{mark} "
