"""The seam between version-neutral OCPP and 2.0.1, pinned: firmware/ocpp/*.py never
imports a version (so 1.6J can sit beside v201/ without copying), authorization knows
no OCPP, and no module of either takes part in an import cycle (every import counts,
also those inside functions or under TYPE_CHECKING)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in FIRMWARE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name}
            for name, path in modules.items()}


def test_neutral_ocpp_modules_import_no_version() -> None:
    for path in (FIRMWARE / "ocpp").glob("*.py"):
        bad = {m for m in _imports(path)
               if m.startswith(("firmware.ocpp.v", "ocpp.v16", "ocpp.v201", "ocpp.v21"))}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_authorization_knows_no_ocpp() -> None:
    imports = _imports(FIRMWARE / "authorization.py")
    assert not {m for m in imports if m.startswith(("firmware.ocpp", "ocpp"))}


def test_no_import_cycle_through_ocpp_or_authorization() -> None:
    graph = _graph()
    assert "firmware.ocpp.v201.handlers" in graph["firmware.ocpp.v201.station"]  # parsed

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph[start])
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen:
                seen.add(m)
                todo.extend(graph.get(m, ()))
        return False

    ours = [m for m in graph if m.startswith(("firmware.ocpp", "firmware.authorization",
                                              "firmware.tasks"))]
    assert len(ours) >= 15
    cycles = sorted(m for m in ours if reaches(m, m))
    assert not cycles, f"import cycles through {cycles}"
    # The edge that used to close a cycle: the handlers do not import the station.
    assert "firmware.ocpp.v201.station" not in graph["firmware.ocpp.v201.handlers"]
    assert "firmware.config" not in graph["firmware.ocpp.settings"]


def test_files_stay_under_500_lines() -> None:
    for path in [*(FIRMWARE / "ocpp").rglob("*.py"), FIRMWARE / "authorization.py",
                 FIRMWARE / "tasks.py"]:
        lines = len(path.read_text().splitlines())
        assert lines < 500, f"{path.relative_to(ROOT)}: {lines} lines"
