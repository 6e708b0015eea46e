"""The EXI body codec: an interpreter over the generated grammar tables.

One stream = the EXI header (0x80: no cookie, no options, final version 1; EXI 1.0 §5) and
a body encoded with the schema-informed grammars of one schema (default options: bit-packed,
strict false, no fidelity options, so comments/PIs/DTD are pruned). The encoder uses only
first-level productions; a decoded second-level event code (undeclared content: xsi:type,
xsi:nil, unknown elements) and wildcard content are refused with ExiError, as the messages
of ISO 15118 / DIN 70121 never need them.

String values go through the EXI string table (EXI 1.0 §7.3): per stream, a global value
partition and one local partition per element/attribute qname; a value is sent as a local
hit, a global hit or a literal (then added to both).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from hal.v2g.exi.bits import BitReader, BitWriter, ExiError

AT, SE, SE_ANY, EE, CH = 0, 1, 2, 3, 4
_KINDS = {"AT": AT, "SE": SE, "SE*": SE_ANY, "EE": EE, "CH": CH}
NBIT, UINT, INT, BOOL, BIN, STR, ENUM = range(7)
_DT_KINDS = {"nbit": NBIT, "uint": UINT, "int": INT, "bool": BOOL, "bin": BIN, "str": STR,
             "enum": ENUM}
HEADER = 0x80  # EXI 1.0 §5: distinguishing bits 10, no options, final version 1
MAX_DEPTH = 64  # deepest ISO 15118-20 message is about 10 levels; bounds the recursion


class _State:
    __slots__ = ("prods", "width", "enc", "ee")

    def __init__(self, prods: tuple) -> None:
        self.prods = tuple((_KINDS[p[0]],) + tuple(p[1:]) for p in prods)
        # strict false: every element state also has second-level productions, so the
        # first-level code needs one value more than the production count (EXI 1.0 §6.2).
        self.width = len(self.prods).bit_length()
        self.enc: dict[str, tuple] = {}
        self.ee = -1
        for code, (kind, name, arg, nxt, qid) in enumerate(self.prods):
            if kind == EE:
                self.ee = code
            elif kind in (SE, AT, CH):
                self.enc.setdefault(name, (code, kind, arg, nxt, qid))


class _Grammar:
    __slots__ = ("children", "states", "simple")

    def __init__(self, children: dict, states: tuple) -> None:
        self.children = children
        self.states = tuple(_State(s) for s in states)
        first = states[0]
        # An element of simple type: CH then EE (EXI 1.0 §8.5.4.1.3.1).
        self.simple = first[0][2] if len(states) == 2 and first[0][0] == "CH" and len(
            first) == 1 and children == {"$": (0, False)} else -1


class Schema:
    """Ready-to-run tables of one schema (built once at import, never changed after)."""

    def __init__(self, tables: ModuleType) -> None:
        self.namespace: str = tables.NAMESPACE
        self.datatypes = tuple((_DT_KINDS[d[0]],) + tuple(d[1:]) for d in tables.DATATYPES)
        self.grammars = tuple(_Grammar(c, s) for c, s in tables.GRAMMARS)
        self.roots = tuple(tables.ROOTS)
        # DocContent: one SE per global element plus SE(*), no second level (§8.5.4.1.2).
        self.root_width = len(self.roots).bit_length()
        self.root_index: dict[str, tuple[int, int, int]] = {}
        for code, (name, g, qid, own) in enumerate(self.roots):
            if name not in self.root_index or own:
                self.root_index[name] = (code, g, qid)


class _Strings:
    """The value partitions of one stream's string table."""

    __slots__ = ("globals", "global_ids", "local", "local_ids")

    def __init__(self) -> None:
        self.globals: list[str] = []
        self.global_ids: dict[str, int] = {}
        self.local: dict[int, list[str]] = {}
        self.local_ids: dict[int, dict[str, int]] = {}

    def add(self, qid: int, value: str) -> None:
        if value not in self.global_ids:  # a value already there keeps its first id
            self.global_ids[value] = len(self.globals)
        self.globals.append(value)
        local = self.local.setdefault(qid, [])
        self.local_ids.setdefault(qid, {}).setdefault(value, len(local))
        local.append(value)


def _check_range(dt: tuple, v: int, where: str) -> None:
    lo, hi = dt[1], dt[2]
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ExiError(f"{where}: {v} outside {lo}..{hi}")


def _check_len(dt: tuple, n: int, where: str) -> None:
    if n < dt[1] or (dt[2] is not None and n > dt[2]):
        raise ExiError(f"{where}: length {n} outside {dt[1]}..{dt[2]}")


class Decoder:
    __slots__ = ("schema", "r", "strings")

    def __init__(self, schema: Schema, data: bytes) -> None:
        self.schema = schema
        self.r = BitReader(data)
        self.strings = _Strings()

    def document(self) -> dict:
        r = self.r
        if r.size < 8 or r.data[0] != HEADER:
            got = r.data[:1].hex() or "nothing"
            raise ExiError(f"EXI header: 80 expected (no cookie, no options), got {got}")
        r.pos = 8
        code = r.bits(self.schema.root_width)
        if code >= len(self.schema.roots):
            raise ExiError("document: undeclared root element (SE(*)) not supported")
        name, g, qid, _own = self.schema.roots[code]
        value = self.element(g, qid, name, 0)
        if r.left() >= 8:
            raise ExiError(f"{r.left() // 8} bytes after the end of the document")
        return {name: value}

    def element(self, gi: int, qid: int, name: str, depth: int) -> Any:
        g = self.schema.grammars[gi]
        r = self.r
        try:
            if g.simple >= 0:
                if r.bits(1):
                    raise ExiError("undeclared content (second-level event) not supported")
                value = self.value(g.simple, qid)
                if r.bits(1):
                    raise ExiError("undeclared content (second-level event) not supported")
                return value
            if depth > MAX_DEPTH:
                raise ExiError("nested too deep")
            out: dict[str, Any] = {}
            children = g.children
            st = g.states[0]
            while True:
                code = r.bits(st.width)
                if code >= len(st.prods):
                    raise ExiError("undeclared content (second-level event) not supported")
                kind, cname, arg, nxt, cqid = st.prods[code]
                if kind == SE:
                    v = self.element(arg, cqid, cname, depth + 1)
                    if children[cname][1]:
                        out.setdefault(cname, []).append(v)
                    else:
                        out[cname] = v
                elif kind == EE:
                    return out
                elif kind == AT or kind == CH:
                    if cname in out:
                        raise ExiError("mixed content not supported")
                    out[cname] = self.value(arg, cqid if kind == AT else qid)
                else:
                    raise ExiError("wildcard content not supported")
                st = g.states[nxt]
        except ExiError as e:
            raise ExiError(f"{name}/{e}") from None

    def value(self, di: int, qid: int) -> Any:
        dt = self.schema.datatypes[di]
        kind = dt[0]
        r = self.r
        if kind == NBIT:
            v = dt[1] + r.bits(dt[3])
            if v > dt[2]:
                raise ExiError(f"{v} above {dt[2]}")
            return v
        if kind == UINT:
            v = r.unsigned()
            _check_range(dt, v, "value")
            return v
        if kind == INT:
            negative = r.bits(1)
            v = r.unsigned()
            v = -v - 1 if negative else v
            _check_range(dt, v, "value")
            return v
        if kind == BOOL:
            return bool(r.bits(1))
        if kind == ENUM:
            i = r.bits(dt[2])
            if i >= len(dt[1]):
                raise ExiError(f"enumeration index {i} of {len(dt[1])}")
            return dt[1][i]
        if kind == BIN:
            n = r.unsigned()
            _check_len(dt, n, "binary")
            return r.octets(n)
        return self.string(dt, qid)

    def string(self, dt: tuple, qid: int) -> str:
        r = self.r
        n = r.unsigned()
        if n == 0:
            local = self.strings.local.get(qid, [])
            i = r.bits((len(local) - 1).bit_length()) if local else -1
            if not 0 <= i < len(local):
                raise ExiError("string: local value hit with no such entry")
            return local[i]
        if n == 1:
            table = self.strings.globals
            i = r.bits((len(table) - 1).bit_length()) if table else -1
            if not 0 <= i < len(table):
                raise ExiError("string: global value hit with no such entry")
            return table[i]
        n -= 2
        _check_len(dt, n, "string")
        if n * 8 > r.left():
            raise ExiError(f"string of {n} characters announced, fewer bits left")
        chars = []
        for _ in range(n):
            c = r.unsigned()
            if c > 0x10FFFF or 0xD800 <= c <= 0xDFFF:
                raise ExiError(f"string: {c:#x} is no Unicode scalar value")
            chars.append(chr(c))
        s = "".join(chars)
        if s:
            self.strings.add(qid, s)
        return s


class Encoder:
    __slots__ = ("schema", "w", "strings")

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.w = BitWriter()
        self.strings = _Strings()

    def document(self, document: Any) -> bytes:
        if not isinstance(document, dict) or len(document) != 1:
            raise ExiError("a document is a dict with exactly one key, the root element")
        ((name, value),) = document.items()
        root = self.schema.root_index.get(name)
        if root is None:
            raise ExiError(f"{name!r} is no global element of {self.schema.namespace}")
        code, g, qid = root
        self.w.bits(HEADER, 8)
        self.w.bits(code, self.schema.root_width)
        self.element(g, qid, name, value, 0)
        return self.w.finish()

    def element(self, gi: int, qid: int, name: str, value: Any, depth: int) -> None:
        g = self.schema.grammars[gi]
        w = self.w
        try:
            if g.simple >= 0:
                w.bits(0, 1)
                self.value(g.simple, qid, value)
                w.bits(0, 1)
                return
            if not isinstance(value, dict):
                raise ExiError(f"a dict expected, got {type(value).__name__}")
            if depth > MAX_DEPTH:
                raise ExiError("nested too deep")
            children = g.children
            try:
                keys = sorted(value, key=lambda k: children[k][0])
            except (KeyError, TypeError):
                unknown = [k for k in value if k not in children]
                raise ExiError(f"no child {unknown[0]!r} in the schema") from None
            states = g.states
            st = states[0]
            for k in keys:
                v = value[k]
                if children[k][1]:
                    if not isinstance(v, list) or not v:
                        raise ExiError(f"{k}: a non-empty list expected (maxOccurs > 1)")
                    items = v
                else:
                    items = (v,)
                for item in items:
                    p = st.enc.get(k)
                    if p is None:
                        raise ExiError(f"{k} not allowed here (order, count or a required "
                                       f"child missing before it)")
                    code, kind, arg, nxt, cqid = p
                    w.bits(code, st.width)
                    if kind == SE:
                        self.element(arg, cqid, k, item, depth + 1)
                    else:
                        self.value(arg, cqid if kind == AT else qid, item)
                    st = states[nxt]
            if st.ee < 0:
                expected = [p[1] for p in st.prods]
                raise ExiError(f"required child missing, one of {expected} expected")
            w.bits(st.ee, st.width)
        except ExiError as e:
            raise ExiError(f"{name}/{e}") from None

    def value(self, di: int, qid: int, v: Any) -> None:
        dt = self.schema.datatypes[di]
        kind = dt[0]
        w = self.w
        if kind <= INT:  # NBIT, UINT, INT
            if type(v) is not int:
                raise ExiError(f"an int expected, got {v!r}")
            _check_range(dt, v, "value")
            if kind == NBIT:
                w.bits(v - dt[1], dt[3])
            elif kind == UINT:
                w.unsigned(v)
            elif v < 0:
                w.bits(1, 1)
                w.unsigned(-v - 1)
            else:
                w.bits(0, 1)
                w.unsigned(v)
        elif kind == BOOL:
            if type(v) is not bool:
                raise ExiError(f"a bool expected, got {v!r}")
            w.bits(v, 1)
        elif kind == ENUM:
            try:
                w.bits(dt[1].index(v), dt[2])
            except ValueError:
                raise ExiError(f"{v!r} is not one of {list(dt[1])}") from None
        elif kind == BIN:
            if not isinstance(v, (bytes, bytearray)):
                raise ExiError(f"bytes expected, got {type(v).__name__}")
            _check_len(dt, len(v), "binary")
            w.unsigned(len(v))
            w.octets(bytes(v))
        else:
            self.string(dt, qid, v)

    def string(self, dt: tuple, qid: int, v: Any) -> None:
        if type(v) is not str:
            raise ExiError(f"a str expected, got {v!r}")
        _check_len(dt, len(v), "string")
        w = self.w
        strings = self.strings
        local = strings.local_ids.get(qid)
        if local is not None and v in local:
            w.unsigned(0)
            w.bits(local[v], (len(strings.local[qid]) - 1).bit_length())
            return
        gid = strings.global_ids.get(v)
        if gid is not None:
            w.unsigned(1)
            w.bits(gid, (len(strings.globals) - 1).bit_length())
            return
        w.unsigned(len(v) + 2)
        for c in v:
            cp = ord(c)
            if 0xD800 <= cp <= 0xDFFF:
                raise ExiError("string: lone surrogate")
            w.unsigned(cp)
        if v:
            strings.add(qid, v)
