"""Generate the EXI grammar tables (`tables_*.py`) from the ISO 15118 / DIN 70121 XSD files.

Run by hand (`make exi-tables`) when the schemas change; the tables are committed, the XSD
files (ISO text) are not. Usage:

    python hal/v2g/exi/generate.py SCHEMA_DIR

(a script, not `-m`: importing the package would load the tables this rewrites)

SCHEMA_DIR is `iso15118/shared/schemas` from the unzipped `iso15118==0.31.2` wheel.

Why tables and not generated code: one small interpreter (`codec.py`) over plain data is
easier to review than thousands of generated lines, and measured fast enough (`make bench`).

The grammars follow W3C EXI 1.0 §8.5.4 (schema-informed grammars): a type grammar is its
attribute uses sorted by qname, then its content model built from particle grammars
(§8.5.4.1.5-8.5.4.1.8: required copies, then optional copies or a loop), ε productions
eliminated and the result made deterministic (§8.5.4.2), event codes in the order of §8.5.4.3
(AT by qname, SE in schema order, EE, CH). Only first-level productions are tabled: ISO 15118
and DIN 70121 use the default options (strict false), so every element state also has
second-level productions (undeclared content), which the codec reserves but never encodes.
"""

from __future__ import annotations

import argparse
import os
import pprint
import sys
from collections import OrderedDict
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xsd import (  # noqa: E402
    UNBOUNDED,
    Attribute,
    ComplexType,
    Element,
    Particle,
    QName,
    SchemaSet,
    SimpleType,
)

# schema name -> (root XSD relative to the schema directory, namespace of its messages)
SCHEMA_FILES = {
    "SAP": ("V2G_CI_AppProtocol.xsd", "urn:iso:15118:2:2010:AppProtocol"),
    "DIN": ("din_spec/V2G_CI_MsgDef.xsd", "urn:din:70121:2012:MsgDef"),
    "ISO2": ("iso15118_2/V2G_CI_MsgDef.xsd", "urn:iso:15118:2:2013:MsgDef"),
    "ISO20_CM": ("iso15118_20/V2G_CI_CommonMessages.xsd",
                 "urn:iso:std:iso:15118:-20:CommonMessages"),
    "ISO20_DC": ("iso15118_20/V2G_CI_DC.xsd", "urn:iso:std:iso:15118:-20:DC"),
}

# Bounded integer ranges up to this many values use the n-bit unsigned representation
# (EXI 1.0 §7.1.9 "Integer": bounded range of 4096 or smaller).
NBIT_RANGE_LIMIT = 4096

EPS = None
# ("AT", qname, attribute) | ("SE", qname, element) | ("SE*",) | ("EE",) | ("CH", type)
Terminal = tuple[Any, ...]


class Builder:
    """Grammars of one schema set, keyed by type; data ready to be written as a module."""

    def __init__(self, schemas: SchemaSet) -> None:
        self.s = schemas
        self.datatypes: list[tuple[Any, ...]] = []
        self._dt_index: dict[tuple[Any, ...], int] = {}
        self.qnames: list[QName] = []
        self._q_index: dict[QName, int] = {}
        self.grammars: list[tuple[Any, ...] | None] = []
        self._g_index: dict[object, int] = {}
        self._keep: list[object] = []  # keeps anonymous types alive so id() stays unique

    # ---- datatypes -----------------------------------------------------------------------
    def dt(self, t: SimpleType) -> int:
        if t.kind == "int":
            if t.lo is not None and t.hi is not None and t.hi - t.lo < NBIT_RANGE_LIMIT:
                d: tuple[Any, ...] = ("nbit", t.lo, t.hi, (t.hi - t.lo).bit_length())
            elif t.lo is not None and t.lo >= 0:
                d = ("uint", t.lo, t.hi)
            else:
                d = ("int", t.lo, t.hi)
        elif t.kind == "bool":
            d = ("bool",)
        elif t.kind == "bin":
            d = ("bin", t.min_len, t.max_len, t.fmt)
        elif t.kind == "str":
            d = ("str", t.min_len, t.max_len)
        elif t.kind == "enum":
            d = ("enum", t.values, max(len(t.values) - 1, 0).bit_length())
        else:
            raise ValueError(t.kind)
        if d not in self._dt_index:
            self._dt_index[d] = len(self.datatypes)
            self.datatypes.append(d)
        return self._dt_index[d]

    def qid(self, q: QName) -> int:
        if q not in self._q_index:
            self._q_index[q] = len(self.qnames)
            self.qnames.append(q)
        return self._q_index[q]

    # ---- grammars ------------------------------------------------------------------------
    def grammar(self, el: Element) -> int:
        t = el.type
        key: object = ("simple", self.dt(t)) if isinstance(t, SimpleType) else id(t)
        if key in self._g_index:
            return self._g_index[key]
        idx = len(self.grammars)
        self._g_index[key] = idx
        self._keep.append(t)
        self.grammars.append(None)  # placeholder: child grammars may be built meanwhile
        assert t is not None
        self.grammars[idx] = (self._simple_grammar(t) if isinstance(t, SimpleType)
                              else self._complex_grammar(t))
        return idx

    def _simple_grammar(self, t: SimpleType) -> tuple[Any, ...]:
        states = ((("CH", "$", self.dt(t), 1, -1),), (("EE", "", 0, -1, -1),))
        return ({"$": (0, False)}, states)

    def _complex_grammar(self, ct: ComplexType) -> tuple[Any, ...]:
        nfa = _Nfa()
        s = nfa.new()
        start = s
        children: dict[str, tuple[int, bool]] = OrderedDict()
        for a in sorted(ct.attributes, key=lambda a: (a.qname[1], a.qname[0])):
            n = nfa.new()
            nfa.edge(s, ("AT", a.qname, a), n)
            if not a.required:
                nfa.edge(s, EPS, n)
            children["@" + a.qname[1]] = (len(children), False)
            s = n
        first_content = len(nfa.edges)
        if ct.simple is not None:
            n = nfa.new()
            nfa.edge(s, ("CH", ct.simple), n)
            children["$"] = (len(children), False)
            s = n
        elif ct.content is not None:
            s = self._particle(nfa, ct.content, s)
            counts: dict[str, float] = OrderedDict()
            _occurrences(ct.content, 1, counts, self.s)
            for name, count in counts.items():
                if name in children:
                    raise ValueError(f"{ct.name}: child {name} appears twice")
                children[name] = (len(children), count > 1)
        if ct.mixed:
            children.setdefault("$", (len(children), False))
            for st in range(first_content, len(nfa.edges)):
                nfa.edge(st, ("CH", SimpleType("str")), st)
        nfa.edge(s, ("EE",), -1)
        return (dict(children), self._tabulate(nfa, start))

    def _term(self, nfa: _Nfa, p: Particle, entry: int) -> int:
        if p.kind == "element":
            out = nfa.new()
            members = self.s.substitutes(p.ref) if p.ref else [p.element]
            for el in members:
                assert el is not None
                nfa.edge(entry, ("SE", el.qname, el), out)
            return out
        if p.kind == "any":
            out = nfa.new()
            nfa.edge(entry, ("SE*",), out)
            return out
        if p.kind == "sequence":
            s = entry
            for c in p.children:
                s = self._particle(nfa, c, s)
            return s
        if p.kind == "choice":
            out = nfa.new()
            if not p.children:
                nfa.edge(entry, EPS, out)
            for c in p.children:
                cs = nfa.new()
                nfa.edge(entry, EPS, cs)
                nfa.edge(self._particle(nfa, c, cs), EPS, out)
            return out
        raise ValueError(p.kind)

    def _particle(self, nfa: _Nfa, p: Particle, entry: int) -> int:
        s = entry
        for _ in range(p.min):
            s = self._term(nfa, p, s)
        if p.max == UNBOUNDED:
            nfa.edge(self._term(nfa, p, s), EPS, s)
            out = nfa.new()
            nfa.edge(s, EPS, out)
            return out
        optional_starts = []
        for _ in range(p.max - p.min):
            optional_starts.append(s)
            s = self._term(nfa, p, s)
        for o in optional_starts:
            nfa.edge(o, EPS, s)
        return s

    def _tabulate(self, nfa: _Nfa, start: int) -> tuple[Any, ...]:
        """ε elimination, subset construction, event-code order; productions as tuples
        (kind, name, arg, next state, qname id)."""
        expanded = [nfa.expand(i) for i in range(len(nfa.edges))]
        keys: dict[tuple[int, ...], int] = {(start,): 0}
        order: list[tuple[int, ...]] = [(start,)]
        states = []
        i = 0
        while i < len(order):
            merged: dict[object, list[int]] = OrderedDict()
            terms: dict[object, Terminal] = {}
            for s in order[i]:
                for t, tgt in expanded[s]:
                    k = _term_key(t)
                    terms.setdefault(k, t)
                    tl = merged.setdefault(k, [])
                    if tgt not in tl:
                        tl.append(tgt)
            prods = []
            for k, tgts in merged.items():
                t = terms[k]
                nxt = -1
                if t[0] != "EE":
                    tk = tuple(tgts)
                    if tk not in keys:
                        keys[tk] = len(order)
                        order.append(tk)
                    nxt = keys[tk]
                prods.append(self._production(t, nxt))
            prods.sort(key=_event_order)
            states.append(tuple(prods))
            i += 1
        return tuple(states)

    def _production(self, t: Terminal, nxt: int) -> tuple[Any, ...]:
        kind = t[0]
        if kind == "AT":
            a: Attribute = t[2]
            return ("AT", "@" + a.qname[1], self.dt(a.type), nxt, self.qid(a.qname), a.qname)
        if kind == "SE":
            el: Element = t[2]
            return ("SE", el.qname[1], self.grammar(el), nxt, self.qid(el.qname), el.qname)
        if kind == "SE*":
            return ("SE*", "", 0, nxt, -1, ("", ""))
        if kind == "CH":
            return ("CH", "$", self.dt(t[1]), nxt, -1, ("", ""))
        return ("EE", "", 0, -1, -1, ("", ""))


class _Nfa:
    def __init__(self) -> None:
        self.edges: list[list[tuple[Terminal | None, int]]] = []

    def new(self) -> int:
        self.edges.append([])
        return len(self.edges) - 1

    def edge(self, a: int, t: Terminal | None, b: int) -> None:
        self.edges[a].append((t, b))

    def expand(self, s: int) -> list[tuple[Terminal, int]]:
        out: list[tuple[Terminal, int]] = []
        seen = {s}

        def walk(st: int) -> None:
            for t, tgt in self.edges[st]:
                if t is EPS:
                    if tgt not in seen:
                        seen.add(tgt)
                        walk(tgt)
                elif (t, tgt) not in out:
                    out.append((t, tgt))

        walk(s)
        return out


def _term_key(t: Terminal) -> object:
    if t[0] == "SE":
        return ("SE", t[1], id(t[2].type))
    if t[0] == "AT":
        return ("AT", t[1])
    if t[0] == "CH":
        return ("CH",)
    return (t[0],)


def _event_order(p: tuple[Any, ...]) -> tuple[Any, ...]:
    # EXI 1.0 §8.5.4.3: AT(qname) sorted by local name then uri, then SE in schema order,
    # then SE(*), EE, CH.
    rank = {"AT": 0, "SE": 2, "SE*": 3, "EE": 4, "CH": 5}[p[0]]
    return (rank, (p[5][1], p[5][0]) if p[0] == "AT" else ("", ""))


def _occurrences(p: Particle, factor: float, out: dict[str, float], s: SchemaSet) -> None:
    mult = factor * (float("inf") if p.max == UNBOUNDED else p.max)
    if p.kind == "element":
        members = s.substitutes(p.ref) if p.ref else [p.element]
        for el in members:
            assert el is not None
            out[el.qname[1]] = out.get(el.qname[1], 0) + mult
    for c in p.children:
        _occurrences(c, mult, out, s)


def build(schema_dir: str, name: str) -> str:
    """The text of the tables module for one schema."""
    root_file, namespace = SCHEMA_FILES[name]
    schemas = SchemaSet(os.path.join(schema_dir, root_file))
    b = Builder(schemas)
    # EXI 1.0 §8.5.4.1.2: DocContent lists every global element sorted by local name, then
    # uri, followed by SE(*).
    roots = []
    for el in sorted(schemas.elements.values(), key=lambda e: (e.qname[1], e.qname[0])):
        roots.append((el.qname[1], b.grammar(el), el.qname[0] == namespace, b.qid(el.qname)))
    # States as indices into one pool of distinct states, runs collapsed: with the next
    # state relative, the copies a bounded repetition unrolls to (maxOccurs 1024) are one.
    pool: dict[tuple[Any, ...], int] = {}
    grammars = []
    for g in b.grammars:
        assert g is not None
        runs: list[list[int]] = []
        for si, st in enumerate(g[1]):
            rel = tuple((p[0], p[1], p[2], p[3] - si if p[3] >= 0 else 0, p[4]) for p in st)
            idx = pool.setdefault(rel, len(pool))
            if runs and runs[-1][0] == idx:
                runs[-1][1] += 1
            else:
                runs.append([idx, 1])
        grammars.append((g[0], tuple(tuple(r) for r in runs)))
    lines = [
        f'"""EXI grammar tables for {namespace} (schema {name}).',
        "",
        "Generated by hal/v2g/exi/generate.py from the schema files; do not edit.",
        '"""',
        "",
        "# ruff: noqa: E501",
        "# mypy: ignore-errors",
        f"NAMESPACE = {namespace!r}",
        "# (uri, local name) per qname id: the local value partitions of the string table",
        "# are per qname (EXI 1.0 §7.3.1), so a value is keyed by the id of its element or",
        "# attribute",
        "QNAMES = " + pprint.pformat(tuple(b.qnames), width=100, compact=True),
        "# (local name, grammar, in the message namespace, qname id) per global element",
        "ROOTS = " + pprint.pformat(tuple(roots), width=100, compact=True),
        "DATATYPES = " + pprint.pformat(tuple(b.datatypes), width=100, compact=True),
        "# distinct states: ((kind, name, grammar or datatype, next state - this state,",
        "# qname id or -1), ...)",
        "STATES = " + pprint.pformat(tuple(pool), width=100, compact=True),
        "# (children: name -> (rank, is_list), states as runs: ((index in STATES, count), ...))",
        "GRAMMARS = " + pprint.pformat(tuple(grammars), width=100, compact=True),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("schema_dir")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    for name in SCHEMA_FILES:
        text = build(args.schema_dir, name)
        path = os.path.join(args.out, f"tables_{name.lower()}.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"{path}: {len(text)} bytes")


if __name__ == "__main__":
    main()
