"""Reading the ISO 15118 / DIN 70121 XSD files into a small component model (generator side).

Used only by `generate.py` (by hand, `make exi-tables`), never at run time; imports
nothing from the codec. It understands the
part of XML Schema 1.0 these schemas use: global and local elements, element refs, abstract
elements and substitution groups, named and anonymous complex types (sequence, choice,
complexContent extension/restriction, simpleContent extension, mixed, wildcards), attributes,
and simple types derived by restriction (enumeration, range and length facets) from the
built-in types.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

XS = "http://www.w3.org/2001/XMLSchema"
UNBOUNDED = -1

QName = tuple[str, str]  # (namespace uri, local name)

# Built-in simple types: (representation, lower bound, upper bound); XML Schema Part 2 §3.
BUILTIN_INTEGERS: dict[str, tuple[int | None, int | None]] = {
    "integer": (None, None),
    "nonNegativeInteger": (0, None),
    "positiveInteger": (1, None),
    "long": (-(2**63), 2**63 - 1),
    "int": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-128, 127),
    "unsignedLong": (0, 2**64 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedShort": (0, 2**16 - 1),
    "unsignedByte": (0, 255),
}
BUILTIN_STRINGS = {"string", "anyURI", "ID", "IDREF", "NCName", "token", "normalizedString",
                   "Name", "NMTOKEN", "language"}
BUILTIN_BINARY = {"hexBinary", "base64Binary"}


class SchemaError(Exception):
    """The XSD uses a construct the generator does not handle."""


@dataclass
class SimpleType:
    kind: str  # "int" | "bool" | "bin" | "str" | "enum"
    lo: int | None = None
    hi: int | None = None
    min_len: int = 0
    max_len: int | None = None
    values: tuple[str, ...] = ()
    fmt: str = ""  # binary only: "hex" or "b64" (same EXI representation; kept for tools)


@dataclass
class Particle:
    kind: str  # "element" | "any" | "sequence" | "choice"
    min: int = 1
    max: int = 1
    children: list[Particle] = field(default_factory=list)
    element: Element | None = None  # for kind "element": the declaration used
    ref: QName | None = None  # for a ref to a global element (substitution group head)


@dataclass
class Attribute:
    qname: QName
    type: SimpleType
    required: bool


@dataclass
class ComplexType:
    name: QName | None
    attributes: list[Attribute] = field(default_factory=list)
    content: Particle | None = None  # element content
    simple: SimpleType | None = None  # simple content
    mixed: bool = False
    base: QName | None = None
    abstract: bool = False


@dataclass
class Element:
    qname: QName
    type: ComplexType | SimpleType | None = None
    type_name: QName | None = None
    abstract: bool = False
    subst_head: QName | None = None


class SchemaSet:
    """Every component reachable from one root XSD file (includes and imports followed)."""

    def __init__(self, root_file: str) -> None:
        self.elements: dict[QName, Element] = {}
        self._type_nodes: dict[QName, tuple[ET.Element, dict[str, str], str]] = {}
        self._types: dict[QName, ComplexType | SimpleType] = {}
        self._resolving: set[QName] = set()
        self._files: set[str] = set()
        self._pending: list[tuple[ET.Element, dict[str, str], str, str]] = []
        self._load(os.path.abspath(root_file))
        for node, _ns, tns, _qual in self._pending:
            el = Element((tns, node.get("name", "")))
            self.elements[el.qname] = el
        for node, ns, tns, qual in self._pending:
            self._fill_element(self.elements[(tns, node.get("name", ""))], node, ns, tns, qual)

    # ---- loading -------------------------------------------------------------------------
    def _load(self, path: str) -> None:
        if path in self._files:
            return
        self._files.add(path)
        ns: dict[str, str] = {}
        for _event, (prefix, uri) in ET.iterparse(path, events=("start-ns",)):
            ns.setdefault(prefix, uri)
        root = ET.parse(path).getroot()
        tns = root.get("targetNamespace", "")
        qual = root.get("elementFormDefault", "unqualified") + "/" + root.get(
            "attributeFormDefault", "unqualified")
        for child in root:
            tag = _local(child.tag)
            if tag in ("include", "import"):
                loc = child.get("schemaLocation")
                if loc:
                    self._load(_locate(os.path.dirname(path), loc))
            elif tag in ("complexType", "simpleType"):
                self._type_nodes[(tns, child.get("name", ""))] = (child, ns, tns + "|" + qual)
            elif tag == "element":
                self._pending.append((child, ns, tns, qual))
            elif tag in ("annotation",):
                continue
            else:
                raise SchemaError(f"{path}: top-level <{tag}> not handled")

    def _fill_element(self, el: Element, node: ET.Element, ns: dict[str, str], tns: str,
                      qual: str) -> None:
        el.abstract = node.get("abstract") == "true"
        if node.get("substitutionGroup"):
            el.subst_head = _resolve(node.get("substitutionGroup", ""), ns)
        if node.get("nillable") == "true":
            raise SchemaError(f"{el.qname}: nillable elements not handled")
        tname = node.get("type")
        if tname:
            el.type_name = _resolve(tname, ns)
            el.type = self.type(el.type_name)
        else:
            inline = [c for c in node if _local(c.tag) in ("complexType", "simpleType")]
            if inline:
                el.type = self._build_type(inline[0], ns, tns + "|" + qual, None)
            else:  # no type: xs:anyType; none of our schemas' elements of interest use it
                el.type = ComplexType(None, content=Particle("sequence", children=[
                    Particle("any", 0, UNBOUNDED)]), mixed=True)

    # ---- types ---------------------------------------------------------------------------
    def type(self, qname: QName) -> ComplexType | SimpleType:
        if qname[0] == XS:
            return _builtin(qname[1])
        if qname in self._types:
            return self._types[qname]
        if qname in self._resolving:
            raise SchemaError(f"recursive type {qname}")
        self._resolving.add(qname)
        node, ns, ctx = self._type_nodes[qname]
        t = self._build_type(node, ns, ctx, qname)
        self._types[qname] = t
        self._resolving.discard(qname)
        return t

    def named_types(self) -> dict[QName, ComplexType | SimpleType]:
        return {q: self.type(q) for q in self._type_nodes}

    def _build_type(self, node: ET.Element, ns: dict[str, str], ctx: str,
                    name: QName | None) -> ComplexType | SimpleType:
        if _local(node.tag) == "simpleType":
            return self._simple(node, ns)
        ct = ComplexType(name, mixed=node.get("mixed") == "true",
                         abstract=node.get("abstract") == "true")
        for child in node:
            tag = _local(child.tag)
            if tag in ("sequence", "choice"):
                ct.content = self._particle(child, ns, ctx)
            elif tag == "attribute":
                ct.attributes.append(self._attribute(child, ns, ctx))
            elif tag == "complexContent":
                self._complex_content(ct, child, ns, ctx)
            elif tag == "simpleContent":
                self._simple_content(ct, child, ns, ctx)
            elif tag == "annotation":
                continue
            else:
                raise SchemaError(f"{name}: <{tag}> in complexType not handled")
        return ct

    def _complex_content(self, ct: ComplexType, node: ET.Element, ns: dict[str, str],
                         ctx: str) -> None:
        if node.get("mixed") == "true":
            ct.mixed = True
        for der in node:
            tag = _local(der.tag)
            if tag == "annotation":
                continue
            base_name = _resolve(der.get("base", ""), ns)
            ct.base = base_name
            base = self.type(base_name) if base_name != (XS, "anyType") else ComplexType(None)
            if not isinstance(base, ComplexType):
                raise SchemaError(f"{ct.name}: complexContent over a simple type")
            own: Particle | None = None
            attrs: list[Attribute] = []
            for c in der:
                t = _local(c.tag)
                if t in ("sequence", "choice"):
                    own = self._particle(c, ns, ctx)
                elif t == "attribute":
                    attrs.append(self._attribute(c, ns, ctx))
                elif t != "annotation":
                    raise SchemaError(f"{ct.name}: <{t}> in derivation not handled")
            if tag == "extension":
                parts = [p for p in (base.content, own) if p is not None]
                ct.content = (parts[0] if len(parts) == 1 else
                              Particle("sequence", children=parts) if parts else None)
                ct.attributes = list(base.attributes) + attrs
            elif tag == "restriction":
                ct.content = own
                ct.attributes = attrs or list(base.attributes)
            else:
                raise SchemaError(f"{ct.name}: <{tag}> not handled")

    def _simple_content(self, ct: ComplexType, node: ET.Element, ns: dict[str, str],
                        ctx: str) -> None:
        for der in node:
            if _local(der.tag) == "annotation":
                continue
            if _local(der.tag) != "extension":
                raise SchemaError(f"{ct.name}: simpleContent {der.tag} not handled")
            base_name = _resolve(der.get("base", ""), ns)
            ct.base = base_name
            base = self.type(base_name)
            if isinstance(base, ComplexType):
                ct.simple = base.simple
                ct.attributes = list(base.attributes)
            else:
                ct.simple = base
            for c in der:
                if _local(c.tag) == "attribute":
                    ct.attributes.append(self._attribute(c, ns, ctx))

    def _attribute(self, node: ET.Element, ns: dict[str, str], ctx: str) -> Attribute:
        tns, qual = ctx.split("|")
        uri = tns if qual.endswith("/qualified") or node.get("form") == "qualified" else ""
        if node.get("ref"):
            raise SchemaError("attribute refs not handled")
        tname = node.get("type")
        if tname:
            t = self.type(_resolve(tname, ns))
        else:
            inline = [c for c in node if _local(c.tag) == "simpleType"]
            t = self._simple(inline[0], ns) if inline else SimpleType("str")
        if not isinstance(t, SimpleType):
            raise SchemaError("attribute of complex type")
        return Attribute((uri, node.get("name", "")), t, node.get("use") == "required")

    def _particle(self, node: ET.Element, ns: dict[str, str], ctx: str) -> Particle:
        tag = _local(node.tag)
        lo = int(node.get("minOccurs", "1"))
        mx = node.get("maxOccurs", "1")
        hi = UNBOUNDED if mx == "unbounded" else int(mx)
        if tag in ("sequence", "choice"):
            kids = [self._particle(c, ns, ctx) for c in node if _local(c.tag) != "annotation"]
            return Particle(tag, lo, hi, kids)
        if tag == "any":
            return Particle("any", lo, hi)
        if tag == "element":
            if node.get("ref"):
                return Particle("element", lo, hi, ref=_resolve(node.get("ref", ""), ns))
            tns, qual = ctx.split("|")
            uri = tns if qual.startswith("qualified") or node.get("form") == "qualified" else ""
            el = Element((uri, node.get("name", "")))
            self._fill_element(el, node, ns, uri, qual)
            return Particle("element", lo, hi, element=el)
        raise SchemaError(f"<{tag}> in content model not handled")

    def _simple(self, node: ET.Element, ns: dict[str, str]) -> SimpleType:
        for der in node:
            tag = _local(der.tag)
            if tag == "annotation":
                continue
            if tag != "restriction":
                raise SchemaError(f"simpleType <{tag}> not handled")
            base = self.type(_resolve(der.get("base", ""), ns))
            if not isinstance(base, SimpleType):
                raise SchemaError("simple type restricting a complex type")
            t = SimpleType(base.kind, base.lo, base.hi, base.min_len, base.max_len, base.values,
                           base.fmt)
            enum: list[str] = []
            for f in der:
                fname, v = _local(f.tag), f.get("value", "")
                if fname == "enumeration":
                    enum.append(v)
                elif fname == "minInclusive":
                    t.lo = max(int(v), t.lo) if t.lo is not None else int(v)
                elif fname == "maxInclusive":
                    t.hi = min(int(v), t.hi) if t.hi is not None else int(v)
                elif fname == "minExclusive":
                    t.lo = int(v) + 1
                elif fname == "maxExclusive":
                    t.hi = int(v) - 1
                elif fname == "length":
                    t.min_len = t.max_len = int(v)
                elif fname == "minLength":
                    t.min_len = int(v)
                elif fname == "maxLength":
                    t.max_len = int(v)
                elif fname in ("annotation", "totalDigits", "fractionDigits", "whiteSpace"):
                    continue
                else:
                    raise SchemaError(f"facet {fname} not handled")
            if enum:
                if t.kind != "str":
                    raise SchemaError("enumeration over a non-string type not handled")
                t = SimpleType("enum", values=tuple(enum))
            return t
        raise SchemaError("empty simpleType")

    # ---- substitution groups ---------------------------------------------------------------
    def substitutes(self, head: QName) -> list[Element]:
        """The head and every element substitutable for it (transitively), sorted by local
        name then namespace (EXI 1.0 §8.5.4.1.6). Abstract ones stay in the list: the
        independent implementation (EXIficient) counts them, so interoperable event codes do."""
        found = {head}
        changed = True
        while changed:
            changed = False
            for q, el in self.elements.items():
                if el.subst_head in found and q not in found:
                    found.add(q)
                    changed = True
        members = [self.elements[q] for q in found]
        return sorted(members, key=lambda e: (e.qname[1], e.qname[0]))


def _locate(directory: str, loc: str) -> str:
    # The wheel keeps one shared xmldsig-core-schema.xsd one directory up from the others.
    path = os.path.join(directory, loc)
    if not os.path.exists(path):
        path = os.path.join(os.path.dirname(directory), os.path.basename(loc))
    return path


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _resolve(name: str, ns: dict[str, str]) -> QName:
    prefix, _, local = name.rpartition(":")
    if prefix not in ns:
        raise SchemaError(f"unknown prefix in {name}")
    return (ns[prefix], local)


def _builtin(name: str) -> SimpleType:
    if name in BUILTIN_INTEGERS:
        lo, hi = BUILTIN_INTEGERS[name]
        return SimpleType("int", lo, hi)
    if name == "boolean":
        return SimpleType("bool")
    if name in BUILTIN_BINARY:
        return SimpleType("bin", fmt="hex" if name == "hexBinary" else "b64")
    if name in BUILTIN_STRINGS:
        return SimpleType("str")
    raise SchemaError(f"built-in type xs:{name} not handled")
