"""Documents generated from the EXI grammar tables: round trips, goldens, `make bench`.

A walk through an element's grammar: at each state one of the first-level productions is
chosen (by a chooser: deterministic "full" / "minimal", or random), so every document is
valid for the schema by construction. Runs in the product venv and in .venv-interop (stdlib
only besides the codec).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from hal.v2g.exi import _SCHEMAS
from hal.v2g.exi.codec import AT, BIN, BOOL, CH, EE, ENUM, INT, NBIT, SE, STR, UINT, Schema

Chooser = Callable[[list[tuple[Any, ...]], int], tuple[Any, ...]]
MAX_ITEMS = 3  # list items per child: enough to cross the string table and loop states
_WORDS = ("A", "urn:x", "DE*ABC*E1", "x" * 20, "Z9")


def schema(name: str) -> Schema:
    return _SCHEMAS[name]


def message_types(name: str) -> list[tuple[str, str | None]]:
    """(root element, body element or None) for every message of the schema."""
    s = schema(name)
    if name in ("DIN", "ISO2"):
        _code, gi, _qid = s.root_index["V2G_Message"]
        body_gi = s.grammars[gi].states[1].prods[0][2]
        return [("V2G_Message", p[1]) for p in s.grammars[body_gi].states[0].prods
                if p[0] == SE and p[1] != "BodyElement"]
    return [(r[0], None) for r in s.roots if r[2] and (
        name == "SAP" or r[0].endswith(("Req", "Res")))]


def document(name: str, root: str, body: str | None, chooser: Chooser,
             rnd: random.Random, avoid: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A document of message `body` (DIN/ISO2) or `root`; no child named in `avoid` when the
    schema lets it out."""
    s = schema(name)
    _code, gi, _qid = s.root_index[root]
    return {root: _element(s, gi, chooser, rnd, 0, body, avoid)}


def _element(s: Schema, gi: int, chooser: Chooser, rnd: random.Random, depth: int,
             body: str | None, avoid: frozenset[str] = frozenset()) -> object:
    g = s.grammars[gi]
    if g.simple is not None:
        return _value(g.simple, rnd)
    out: dict[str, object] = {}
    last = None
    si = 0
    st = g.states[0]
    while True:
        options = []
        for p in st.prods:
            kind, cname = p[0], p[1]
            if kind == EE:
                options.append(p)
            elif cname in avoid:
                continue
            elif kind in (SE, AT, CH) and (cname not in out or (
                    cname == last and g.children[cname][1]
                    and len(out[cname]) < MAX_ITEMS)):  # type: ignore[arg-type]
                options.append(p)
        if not options:
            raise ValueError("dead end in the grammar walk")
        p = chooser(options, depth)
        kind, cname, arg, nxt = p[:4]
        if kind == EE:
            return out
        v: object
        if kind == SE and cname == "Body" and body is not None:
            v = {body: _element(s, _body_grammar(s, gi, body), chooser, rnd, depth + 2, None,
                                avoid)}
        elif kind == SE:
            v = _element(s, arg, chooser, rnd, depth + 1, None, avoid)
        else:
            v = _value(arg, rnd)
        if g.children[cname][1]:
            items = out.setdefault(cname, [])
            assert isinstance(items, list)
            items.append(v)
        else:
            out[cname] = v
        last = cname
        si += nxt
        st = g.states[si]


def _body_grammar(s: Schema, v2g_gi: int, body: str) -> int:
    body_gi = s.grammars[v2g_gi].states[1].prods[0][2]
    for p in s.grammars[body_gi].states[0].prods:
        if p[0] == SE and p[1] == body:
            return int(p[2])
    raise KeyError(body)


def _value(dt: tuple[Any, ...], rnd: random.Random) -> object:
    kind = dt[0]
    if kind == NBIT:
        return rnd.randint(dt[1], dt[2])
    if kind in (UINT, INT):
        lo = dt[1] if dt[1] is not None else -(2**70)
        hi = dt[2] if dt[2] is not None else 2**70
        return rnd.choice((lo, hi, 0 if lo <= 0 <= hi else lo, rnd.randint(lo, hi)))
    if kind == BOOL:
        return rnd.random() < 0.5
    if kind == ENUM:
        return rnd.choice(dt[1])
    if kind == BIN:
        lo = max(dt[1], 1)
        hi = max(lo, min(dt[2] if dt[2] is not None else 40, 40))
        return bytes(rnd.randrange(256) for _ in range(rnd.randint(lo, hi)))
    assert kind == STR
    hi = dt[2] if dt[2] is not None else 30
    for _ in range(5):
        w = rnd.choice(_WORDS)
        if dt[1] <= len(w) <= hi:
            return w
    lo = max(dt[1], 1)
    n = rnd.randint(lo, max(lo, min(hi, 30)))
    return "".join(rnd.choice("abcXYZ019-äß€") for _ in range(n))


def full(options: list[tuple[Any, ...]], depth: int) -> tuple[Any, ...]:
    """Every optional child present (a new child before the end), lists up to MAX_ITEMS."""
    for p in options:
        if p[0] != EE:
            return p
    return options[0]


def minimal(options: list[tuple[Any, ...]], depth: int) -> tuple[Any, ...]:
    """Only what the schema requires."""
    for p in options:
        if p[0] == EE:
            return p
    return options[0]


def randomly(rnd: random.Random) -> Chooser:
    def choose(options: list[tuple[Any, ...]], depth: int) -> tuple[Any, ...]:
        if depth > 12:
            return minimal(options, depth)
        return rnd.choice(options)
    return choose
