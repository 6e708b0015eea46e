"""The line discipline of the console: bytes from the terminal in, bytes to echo out.

Pure (no I/O, no clock). Works on any terminal, down to a dumb one: it only ever sends
printable ASCII, CR LF, backspace-space-backspace to erase and BEL; it understands the
VT100 arrow keys (ESC [ A / ESC O A) for history and swallows every other escape sequence
whole. The line is edited at its end only (no cursor movement to get wrong).

Bad input never reaches a command: bytes that are neither printable ASCII nor an editing
key are dropped and counted (``stats.garbage``); a line longer than ``max_line`` is
refused whole on Enter (never run cut short) and counted (``stats.overlong``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_LINE = 200  # longest command line; a `config set` value fits, a paste of junk does not
HISTORY = 50
MAX_ESCAPE = 16  # bytes of one escape sequence before it is dropped as garbage

BS, DEL, CR, LF, TAB, ESC, BEL = 0x08, 0x7F, 0x0D, 0x0A, 0x09, 0x1B, b"\a"
CTRL_C, CTRL_D, CTRL_L, CTRL_U, CTRL_W = 0x03, 0x04, 0x0C, 0x15, 0x17
ERASE = b"\b \b"
NEWLINE = b"\r\n"

Completer = Callable[[str], list[str]]


class Signal(enum.Enum):
    INTERRUPT = "interrupt"  # Ctrl-C
    END = "end"  # Ctrl-D on an empty line


@dataclass
class Stats:
    garbage: int = 0  # bytes that were neither text nor an editing key
    overlong: int = 0  # lines refused for their length
    escapes: int = 0  # escape sequences swallowed (not arrow keys)


@dataclass
class Edited:
    """What one ``feed`` produced: bytes to send back, and what was entered."""

    echo: bytearray = field(default_factory=bytearray)
    lines: list[str] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)


class _Esc(enum.Enum):
    NONE = 0
    START = 1  # after ESC
    SEQUENCE = 2  # after ESC [ or ESC O


class LineEditor:
    def __init__(self, complete: Completer | None = None, max_line: int = MAX_LINE,
                 history: int = HISTORY) -> None:
        self.complete = complete
        self.max_line = max_line
        self.history: list[str] = []
        self.history_size = history
        self.prompt = ""
        self.secret = False  # a password: nothing echoed, nothing kept in history
        self.stats = Stats()
        self._buf = bytearray()
        self._too_long = False
        self._esc = _Esc.NONE
        self._esc_len = 0
        self._after_cr = False
        self._browse: int | None = None  # index into history while browsing with arrows

    @property
    def text(self) -> str:
        return self._buf.decode("ascii")

    def reset(self, prompt: str, secret: bool = False) -> bytes:
        """A fresh line with ``prompt`` (returned, to be sent)."""
        self.prompt, self.secret = prompt, secret
        self._buf.clear()
        self._too_long = False
        self._browse = None
        return prompt.encode("ascii", "replace")

    def redraw(self) -> bytes:
        """The prompt and the line typed so far, on a new line (after other output)."""
        shown = b"" if self.secret else bytes(self._buf)
        return self.prompt.encode("ascii", "replace") + shown

    def feed(self, data: bytes) -> Edited:
        out = Edited()
        for byte in data:
            self._byte(byte, out)
        return out

    # --- one byte -----------------------------------------------------------------------

    def _byte(self, b: int, out: Edited) -> None:
        after_cr, self._after_cr = self._after_cr, False
        if self._esc is not _Esc.NONE:
            self._escape(b, out)
        elif b == CR or b == LF:
            if b == LF and after_cr:
                return  # CR LF is one Enter
            self._after_cr = b == CR
            self._enter(out)
        elif 0x20 <= b < 0x7F:
            self._insert(b, out)
        elif b in (BS, DEL):
            if self._buf:
                self._buf.pop()
                if not self.secret:
                    out.echo += ERASE
        elif b == CTRL_U:
            self._erase_line(out)
        elif b == CTRL_W:
            while self._buf and self._buf[-1] == 0x20:
                self._pop(out)
            while self._buf and self._buf[-1] != 0x20:
                self._pop(out)
        elif b == CTRL_C:
            out.echo += b"^C" + NEWLINE
            self._buf.clear()
            self._too_long = False
            out.signals.append(Signal.INTERRUPT)
        elif b == CTRL_D:
            if not self._buf:
                out.signals.append(Signal.END)
        elif b == CTRL_L:
            out.echo += NEWLINE + self.redraw()
        elif b == TAB:
            self._tab(out)
        elif b == ESC:
            self._esc, self._esc_len = _Esc.START, 0
        else:
            self.stats.garbage += 1

    def _pop(self, out: Edited) -> None:
        self._buf.pop()
        if not self.secret:
            out.echo += ERASE

    def _insert(self, b: int, out: Edited) -> None:
        if len(self._buf) >= self.max_line:
            if not self._too_long:
                out.echo += BEL  # once: the line will be refused on Enter
            self._too_long = True
            return
        self._buf.append(b)
        if not self.secret:
            out.echo.append(b)

    def _erase_line(self, out: Edited) -> None:
        if not self.secret:
            out.echo += ERASE * len(self._buf)
        self._buf.clear()
        self._too_long = False

    def _enter(self, out: Edited) -> None:
        out.echo += NEWLINE
        if self._too_long:
            self.stats.overlong += 1
            out.lines.append(OVERLONG)
        else:
            line = self.text
            out.lines.append(line)
            if line.strip() and not self.secret and (
                    not self.history or self.history[-1] != line):
                self.history.append(line)
                del self.history[:-self.history_size]
        self._buf.clear()
        self._too_long = False
        self._browse = None

    def _escape(self, b: int, out: Edited) -> None:
        self._esc_len += 1
        if self._esc is _Esc.START:
            if b in (ord("["), ord("O")):
                self._esc = _Esc.SEQUENCE
            else:  # ESC and one byte (Alt-key): swallowed
                self._esc = _Esc.NONE
                self.stats.escapes += 1
            return
        if 0x40 <= b <= 0x7E:  # the final byte of a CSI / SS3 sequence
            self._esc = _Esc.NONE
            if b == ord("A"):
                self._history_move(-1, out)
            elif b == ord("B"):
                self._history_move(+1, out)
            else:
                self.stats.escapes += 1
        elif self._esc_len > MAX_ESCAPE or not 0x20 <= b < 0x40:
            self._esc = _Esc.NONE  # not a sequence after all
            self.stats.garbage += self._esc_len

    def _history_move(self, step: int, out: Edited) -> None:
        if self.secret or not self.history:
            return
        at = len(self.history) if self._browse is None else self._browse
        at = max(0, min(len(self.history), at + step))
        self._browse = at
        self._erase_line(out)
        entry = self.history[at] if at < len(self.history) else ""
        self._buf += entry.encode("ascii")
        out.echo += entry.encode("ascii")

    def _tab(self, out: Edited) -> None:
        if self.secret or self.complete is None:
            return
        typed = self.text
        word = typed.split(" ")[-1]
        options = self.complete(typed)
        if not options:
            out.echo += BEL
            return
        common = _common_prefix(options)
        if len(options) == 1:
            common += " "
        if len(common) > len(word):
            rest = common[len(word):]
            if len(self._buf) + len(rest) <= self.max_line:
                self._buf += rest.encode("ascii")
                out.echo += rest.encode("ascii")
            return
        out.echo += NEWLINE + "  ".join(options).encode("ascii") + NEWLINE + self.redraw()


# What a refused overlong line turns into: not a command anyone can type (a control byte).
OVERLONG = "\x00overlong"


def _common_prefix(words: list[str]) -> str:
    first, last = min(words), max(words)
    n = 0
    while n < len(first) and n < len(last) and first[n] == last[n]:
        n += 1
    return first[:n]
