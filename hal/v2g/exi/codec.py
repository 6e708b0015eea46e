"""The EXI body codec: an interpreter over the generated grammar tables.

One stream = the EXI header (0x80: no cookie, no options, final version 1; EXI 1.0 §5) and
a body encoded with the schema-informed grammars of one schema (default options: bit-packed,
strict false, no fidelity options, so comments/PIs/DTD are pruned). The encoder uses only
first-level productions; a decoded second-level event code (undeclared content: xsi:type,
xsi:nil, unknown elements) and wildcard content are refused with ExiError, as the messages
of ISO 15118 / DIN 70121 never need them.

String values and the string table (EXI 1.0 §7.3): see strings.py.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from hal.v2g.exi.bits import SMALL, BitReader, ExiError, SmallBitReader
from hal.v2g.exi.strings import Values

AT, SE, SE_ANY, EE, CH = 0, 1, 2, 3, 4
_KINDS = {"AT": AT, "SE": SE, "SE*": SE_ANY, "EE": EE, "CH": CH}
NBIT, UINT, INT, BOOL, BIN, STR, ENUM = range(7)
_DT_KINDS = {"nbit": NBIT, "uint": UINT, "int": INT, "bool": BOOL, "bin": BIN, "str": STR,
             "enum": ENUM}
HEADER = 0x80  # EXI 1.0 §5: distinguishing bits 10, no options, final version 1
MAX_DEPTH = 64  # deepest ISO 15118-20 message is about 10 levels; bounds the recursion


class _State:
    """One grammar state. Productions resolved for speed: (kind, name, arg, next, simple,
    fixed, qid) where arg is the child grammar (SE) or the datatype tuple (AT, CH), simple is
    the datatype of a simple-typed child element (or None): its CH and EE are inlined, fixed
    is the bit width of its value when that is fixed (n-bit integer, boolean, enumeration;
    else -1): then event, CH, value and EE are one read or write; qid is the qname id of the
    element or attribute (its local value partition)."""

    __slots__ = ("prods", "width", "enc", "ee")

    def __init__(self, prods: tuple[Any, ...], datatypes: tuple[Any, ...],
                 simple: list[int]) -> None:
        resolved = []
        for kind_name, name, arg, nxt, qid in prods:
            kind = _KINDS[kind_name]
            sdt = None
            fixed = -1
            if kind == SE and simple[arg] >= 0:
                sdt = datatypes[simple[arg]]
                fixed = {NBIT: sdt[3] if sdt[0] == NBIT else 0, BOOL: 1,
                         ENUM: sdt[2] if sdt[0] == ENUM else 0}.get(sdt[0], -1)
            elif kind in (AT, CH):
                arg = datatypes[arg]
            resolved.append((kind, name, arg, nxt, sdt, fixed, qid))
        self.prods = tuple(resolved)
        # strict false: every element state also has second-level productions, so the
        # first-level code needs one value more than the production count (EXI 1.0 §6.2).
        self.width = len(self.prods).bit_length()
        self.enc: dict[str, tuple[Any, ...]] = {}
        self.ee = -1
        for code, (kind, name, arg, nxt, sdt, fixed, qid) in enumerate(self.prods):
            if kind == EE:
                self.ee = code
            elif kind in (SE, AT, CH):
                self.enc.setdefault(name, (code, kind, arg, nxt, sdt, fixed, qid))


def _simple_dt(children: dict[str, Any], runs: tuple[Any, ...], pool: tuple[Any, ...]) -> int:
    # An element of simple type: CH then EE (EXI 1.0 §8.5.4.1.3.1).
    states = [pool[i] for i, count in runs for _ in range(count)]
    first = states[0]
    if len(states) == 2 and len(first) == 1 and first[0][0] == "CH" and children == {
            "$": (0, False)}:
        return int(first[0][2])
    return -1


class _Grammar:
    __slots__ = ("children", "order", "lists", "states", "simple")

    def __init__(self, children: dict[str, Any], runs: tuple[Any, ...],
                 pool: tuple[_State, ...], datatypes: tuple[Any, ...], own: int) -> None:
        self.children = children
        self.order = tuple(sorted(children, key=lambda k: children[k][0]))
        self.lists = frozenset(k for k, (_rank, many) in children.items() if many)
        # shared state objects; the walk moves by each production's relative next state
        self.states = tuple(pool[i] for i, count in runs for _ in range(count))
        self.simple = datatypes[own] if own >= 0 else None


class Schema:
    """Ready-to-run tables of one schema (built once at import, never changed after)."""

    def __init__(self, tables: ModuleType) -> None:
        self.namespace: str = tables.NAMESPACE
        self.datatypes = tuple((_DT_KINDS[d[0]],) + tuple(d[1:]) for d in tables.DATATYPES)
        simple = [_simple_dt(c, r, tables.STATES) for c, r in tables.GRAMMARS]
        pool = tuple(_State(s, self.datatypes, simple) for s in tables.STATES)
        self.grammars = tuple(_Grammar(c, r, pool, self.datatypes, own)
                              for (c, r), own in zip(tables.GRAMMARS, simple, strict=True))
        self.roots = tuple(tables.ROOTS)
        self.qnames: tuple[tuple[str, str], ...] = tuple(tables.QNAMES)
        # DocContent: one SE per global element plus SE(*), no second level (§8.5.4.1.2).
        self.root_width = len(self.roots).bit_length()
        self.root_index: dict[str, tuple[int, int, int]] = {}
        for code, (name, g, own, qid) in enumerate(self.roots):
            if name not in self.root_index or own:
                self.root_index[name] = (code, g, qid)


def _fixed_value(dt: Any, raw: int, where: str) -> Any:
    kind = dt[0]
    if kind == NBIT:
        v = dt[1] + raw
        if v > dt[2]:
            raise ExiError(f"{where}: {v} above {dt[2]}")
        return v
    if kind == BOOL:
        return raw == 1
    if raw >= len(dt[1]):
        raise ExiError(f"{where}: enumeration index {raw} of {len(dt[1])}")
    return dt[1][raw]


def _fixed_raw(dt: tuple[Any, ...], v: Any, where: str) -> int:
    kind = dt[0]
    if kind == NBIT:
        if type(v) is not int:
            raise ExiError(f"{where}: an int expected, got {v!r}")
        if not dt[1] <= v <= dt[2]:
            raise ExiError(f"{where}: {v} outside {dt[1]}..{dt[2]}")
        return int(v - dt[1])
    if kind == BOOL:
        if type(v) is not bool:
            raise ExiError(f"{where}: a bool expected, got {v!r}")
        return int(v)
    try:
        return int(dt[1].index(v))
    except ValueError:
        raise ExiError(f"{where}: {v!r} is not one of {list(dt[1])}") from None


def _check_range(dt: tuple[Any, ...], v: int, where: str) -> None:
    lo, hi = dt[1], dt[2]
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ExiError(f"{where}: {v} outside {lo}..{hi}")


def _check_len(dt: tuple[Any, ...], n: int, where: str) -> None:
    if n < dt[1] or (dt[2] is not None and n > dt[2]):
        raise ExiError(f"{where}: length {n} outside {dt[1]}..{dt[2]}")


class Decoder:
    __slots__ = ("schema", "r", "values")

    def __init__(self, schema: Schema, data: bytes) -> None:
        self.schema = schema
        self.r = SmallBitReader(data) if len(data) <= SMALL else BitReader(data)
        self.values: Values | None = None  # made at the first string value

    def document(self) -> dict[str, Any]:
        r = self.r
        if r.size < 8 or r.data[0] != HEADER:
            got = r.data[:1].hex() or "nothing"
            raise ExiError(f"EXI header: 80 expected (no cookie, no options), got {got}")
        r.pos = 8
        code = r.bits(self.schema.root_width)
        if code >= len(self.schema.roots):
            raise ExiError("document: undeclared root element (SE(*)) not supported")
        name, g, _own, qid = self.schema.roots[code]
        value = self.element(g, name, 0, qid)
        if r.left() >= 8:
            raise ExiError(f"{r.left() // 8} bytes after the end of the document")
        return {name: value}

    def element(self, gi: int, name: str, depth: int, qid: int) -> Any:
        g = self.schema.grammars[gi]
        r = self.r
        try:
            if g.simple is not None:
                return self.simple(g.simple, qid)
            if depth > MAX_DEPTH:
                raise ExiError("nested too deep")
            out: dict[str, Any] = {}
            lists = g.lists
            states = g.states
            si = 0
            st = states[0]
            whole = r.whole if type(r) is SmallBitReader else None
            size = r.size
            while True:
                if whole is not None:  # r.bits inlined: the step taken most often
                    end = r.pos + st.width
                    if end > size:
                        raise ExiError(f"stream ends at bit {size}, event code at bit {r.pos}")
                    r.pos = end
                    code = (whole >> (size - end)) & ((1 << st.width) - 1)
                else:
                    code = r.bits(st.width)
                if code >= len(st.prods):
                    raise ExiError("undeclared content (second-level event) not supported")
                kind, cname, arg, nxt, sdt, fixed, cq = st.prods[code]  # sdt set if fixed >= 0
                if kind == SE:
                    if fixed >= 0:  # CH (0), the value, EE (0) in one read
                        x = r.bits(fixed + 2)
                        if x >> (fixed + 1) or x & 1:
                            raise ExiError(f"{cname}/undeclared content (second-level "
                                           f"event) not supported")
                        v = _fixed_value(sdt, (x >> 1) & ((1 << fixed) - 1), cname)
                    elif sdt is not None:  # CH (0), the value, EE (0)
                        try:
                            v = self.simple(sdt, cq)
                        except ExiError as e:
                            raise ExiError(f"{cname}/{e}") from None
                    else:
                        v = self.element(arg, cname, depth + 1, cq)
                    if cname in lists:
                        out.setdefault(cname, []).append(v)
                    else:
                        out[cname] = v
                elif kind == EE:
                    return out
                elif kind == AT or kind == CH:
                    if cname in out:
                        raise ExiError("mixed content not supported")
                    # an attribute's value is keyed by its own qname, simple content by the
                    # element's (§7.3.3)
                    out[cname] = self.value(arg, cq if kind == AT else qid)
                else:
                    raise ExiError("wildcard content not supported")
                si += nxt
                st = states[si]
        except ExiError as e:
            raise ExiError(f"{name}/{e}") from None

    def simple(self, dt: tuple[Any, ...], qid: int) -> Any:
        r = self.r
        if r.bits(1):  # CH is the only first-level production
            # An empty string or binary element from an XML-based encoder has no CH: its EE
            # is a second-level event, 1.0 (strict false, EXI 1.0 §8.5.4.4.1: EE, AT(xsi:type),
            # AT(xsi:nil), AT(*), SE(*), CH [untyped]: 6 codes, 3 bits; as EXIficient sends).
            if r.bits(3) != 0 or dt[0] not in (STR, BIN):
                raise ExiError("undeclared content (second-level event) not supported")
            _check_len(dt, 0, "empty content")
            return "" if dt[0] == STR else b""
        value = self.value(dt, qid)
        if r.bits(1):  # EE likewise
            raise ExiError("undeclared content (second-level event) not supported")
        return value

    def value(self, dt: tuple[Any, ...], qid: int) -> Any:
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

    def string(self, dt: tuple[Any, ...], qid: int) -> str:
        r = self.r
        n = r.unsigned()
        t = self.values
        if t is None:
            t = self.values = Values()
        if n < 2:  # a value hit (§7.3.3): 0 local, 1 global, then the compact id
            part = t.local.get(qid, []) if n == 0 else t.globals
            where = "local" if n == 0 else "global"
            if not part:
                raise ExiError(f"string: {where} value hit, but that partition is empty")
            i = r.bits((len(part) - 1).bit_length())  # n-bit id, n = ceil(log2 m)
            if i >= len(part):
                raise ExiError(f"string: {where} value hit {i}, the partition has {len(part)}")
            v = part[i]
            _check_len(dt, len(v), "string")  # the same qname may have another type here
            return v
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
        v = "".join(chars)
        if n:
            t.add(qid, v)
        return v


def _unsigned(v: int) -> tuple[int, int]:
    """EXI 1.0 §7.1.6 unsigned integer as (bits, count): 7-bit groups, least significant
    first, high bit set on all but the last octet."""
    if v < 0x80:
        return v, 8
    bits = 0
    n = 0
    while v > 0x7F:
        bits = (bits << 8) | (v & 0x7F) | 0x80
        v >>= 7
        n += 8
    return (bits << 8) | v, n + 8


class Encoder:
    """Each element returns its bits as (int, count), merged by its parent: local integer
    arithmetic instead of a writer call per event."""

    __slots__ = ("schema", "values")

    def __init__(self, schema: Schema, value_hits: bool = False) -> None:
        self.schema = schema
        # the string table, kept only to send value hits (see the module docstring)
        self.values = Values() if value_hits else None

    def document(self, document: Any) -> bytes:
        if not isinstance(document, dict) or len(document) != 1:
            raise ExiError("a document is a dict with exactly one key, the root element")
        ((name, value),) = document.items()
        root = self.schema.root_index.get(name)
        if root is None:
            raise ExiError(f"{name!r} is no global element of {self.schema.namespace}")
        code, g, qid = root
        width = self.schema.root_width
        bits, n = self.element(g, name, value, 0, qid)
        n += 8 + width
        bits |= ((HEADER << width) | code) << (n - 8 - width)
        pad = -n % 8  # EXI 1.0 §5.2 / §8: the stream ends on a byte boundary
        return (bits << pad).to_bytes((n + pad) // 8, "big")

    def element(self, gi: int, name: str, value: Any, depth: int, qid: int
                ) -> tuple[int, int]:
        g = self.schema.grammars[gi]
        try:
            if g.simple is not None:
                vb, vn = self.value(g.simple, value, qid)
                return vb << 1, vn + 2  # CH (code 0), the value, EE (code 0)
            if type(value) is not dict:
                raise ExiError(f"a dict expected, got {type(value).__name__}")
            if depth > MAX_DEPTH:
                raise ExiError("nested too deep")
            keys = [k for k in g.order if k in value]
            if len(keys) != len(value):
                unknown = [k for k in value if k not in g.children]
                raise ExiError(f"no child {unknown[0]!r} in the schema")
            lists = g.lists
            states = g.states
            si = 0
            st = states[0]
            acc = 0
            n = 0
            for k in keys:
                v = value[k]
                if k in lists:
                    if type(v) is not list or not v:
                        raise ExiError(f"{k}: a non-empty list expected (maxOccurs > 1)")
                    items = v
                else:
                    items = [v]
                for item in items:
                    p = st.enc.get(k)
                    if p is None:
                        expected = [q[1] or "end" for q in st.prods]
                        raise ExiError(f"{k} not allowed here (too many, or a required child "
                                       f"missing before it): expected one of {expected}")
                    code, kind, arg, nxt, sdt, fixed, cq = p
                    if fixed >= 0:  # event, CH (0), the value, EE (0) in one step
                        width = st.width + fixed + 2
                        acc = (acc << width) | (code << (fixed + 2)) | (
                            _fixed_raw(sdt, item, k) << 1)
                        n += width
                    else:
                        if sdt is not None:
                            try:
                                cb, cn = self.value(sdt, item, cq)
                            except ExiError as e:
                                raise ExiError(f"{k}/{e}") from None
                            cb <<= 1  # CH (0) before, EE (0) after
                            cn += 2
                        elif kind == SE:
                            cb, cn = self.element(arg, k, item, depth + 1, cq)
                        else:  # AT: its own qname; CH (simple content): the element's
                            cb, cn = self.value(arg, item, cq if kind == AT else qid)
                        acc = (((acc << st.width) | code) << cn) | cb
                        n += st.width + cn
                    si += nxt
                    st = states[si]
            if st.ee < 0:
                expected = [q[1] for q in st.prods]
                raise ExiError(f"required child missing, one of {expected} expected")
            return (acc << st.width) | st.ee, n + st.width
        except ExiError as e:
            raise ExiError(f"{name}/{e}") from None

    def value(self, dt: tuple[Any, ...], v: Any, qid: int) -> tuple[int, int]:
        kind = dt[0]
        if kind <= INT:  # NBIT, UINT, INT
            if type(v) is not int:
                raise ExiError(f"an int expected, got {v!r}")
            _check_range(dt, v, "value")
            if kind == NBIT:
                return v - dt[1], dt[3]
            if kind == UINT:
                return _unsigned(v)
            ub, un = _unsigned(-v - 1 if v < 0 else v)
            return ((1 << un) | ub if v < 0 else ub), un + 1  # sign bit first
        if kind == BOOL:
            if type(v) is not bool:
                raise ExiError(f"a bool expected, got {v!r}")
            return int(v), 1
        if kind == ENUM:
            try:
                return dt[1].index(v), dt[2]
            except ValueError:
                raise ExiError(f"{v!r} is not one of {list(dt[1])}") from None
        if kind == BIN:
            if not isinstance(v, (bytes, bytearray)):
                raise ExiError(f"bytes expected, got {type(v).__name__}")
            _check_len(dt, len(v), "binary")
            lb, ln = _unsigned(len(v))
            return (lb << (8 * len(v))) | int.from_bytes(v, "big"), ln + 8 * len(v)
        return self.string(dt, v, qid)

    def string(self, dt: tuple[Any, ...], v: Any, qid: int) -> tuple[int, int]:
        if type(v) is not str:
            raise ExiError(f"a str expected, got {v!r}")
        _check_len(dt, len(v), "string")
        t = self.values
        if t is not None:  # §7.3.3: a local hit, else a global hit, else a literal (added)
            local = t.local_ids.get(qid)
            if local is not None and v in local:
                return local[v], 8 + (len(t.local[qid]) - 1).bit_length()  # 0x00, id
            i = t.global_ids.get(v)
            if i is not None:
                width = (len(t.globals) - 1).bit_length()
                return (1 << width) | i, 8 + width  # 0x01, id
            if v:
                t.add(qid, v)
        bits, n = _unsigned(len(v) + 2)  # literal: length + 2
        for c in v:
            cp = ord(c)
            if 0xD800 <= cp <= 0xDFFF:
                raise ExiError("string: lone surrogate")
            cb, cn = _unsigned(cp)
            bits = (bits << cn) | cb
            n += cn
        return bits, n
