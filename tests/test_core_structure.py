"""The core's shape: no import cycle, lower modules never import the session, each part's
state is changed only by the module that owns it, and every phase set is defined once."""

from __future__ import annotations

import ast
from pathlib import Path

from firmware.core import transitions as t
from firmware.core.transitions import Phase

CORE = Path(t.__file__).parent
# state object -> the module that owns it (the only one that assigns its fields)
OWNERS = {"vehicle": "vehicle.py", "current": "vehicle.py", "cable_check": "energize.py",
          "precharge": "energize.py", "shutdown": "shutdown.py",
          "supervision": "supervision.py"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "firmware.core":
                names |= {a.name for a in node.names}
            elif node.module.startswith("firmware.core."):
                names.add(node.module.removeprefix("firmware.core."))
    return names


def test_no_import_cycle_and_no_lower_module_imports_the_session() -> None:
    graph = {p.stem: _imports(p) & {q.stem for q in CORE.glob("*.py")}
             for p in CORE.glob("*.py")}
    assert all("session" not in deps for name, deps in graph.items() if name != "session")

    def reach(start: str, seen: set[str]) -> set[str]:
        for dep in graph[start]:
            if dep not in seen:
                seen.add(dep)
                reach(dep, seen)
        return seen

    assert all(name not in reach(name, set()) for name in graph), graph


def test_only_the_owner_assigns_a_part_s_fields() -> None:
    for path in CORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else [])
            for target in targets:
                for sub in ast.walk(target):
                    # self.<part>.<field> = ... / bay.<part>.<field> = ...
                    if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute) \
                            and sub.value.attr in OWNERS:
                        assert path.name == OWNERS[sub.value.attr], (
                            path.name, sub.value.attr, sub.attr)


def test_phase_sets_nest_as_named() -> None:
    assert t.DELIVERING < t.PACK_CONNECTED < t.ENERGIZING < t.SESSION
    assert t.SESSION == {Phase.AUTHORIZED} | t.ENERGIZING
    assert t.TALKING == t.SETUP | t.ENERGIZING and Phase.STOPPING not in t.TALKING
    assert t.ENDING < t.WINDING_DOWN and Phase.FAULTED in t.OUT_OF_SERVICE
    assert not t.IDLE & t.NEEDS_POWER and not t.ENERGIZING & t.IDLE


def test_phase_sets_are_defined_only_in_transitions() -> None:
    """No other module of the product builds its own set of phases."""
    firmware = CORE.parent
    for path in [*firmware.glob("*.py"), *CORE.glob("*.py")]:
        if path.name == "transitions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Set | ast.Tuple) and sum(
                    isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name)
                    and e.value.id == "Phase" for e in node.elts) >= 2:
                raise AssertionError(f"{path.name}:{node.lineno}: a set of phases")
