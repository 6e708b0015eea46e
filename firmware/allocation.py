"""Which output gets how many power modules: a simple fair split (pure).

Connectors that need power share the healthy modules evenly; the remainder goes to the
connector that asked first. Idle connectors get none. The full allocation policy (site
limits, priorities, MCS) replaces this later; it keeps this signature.
"""

from __future__ import annotations

from collections.abc import Sequence


def split_modules(needing: Sequence[int], healthy: int) -> dict[int, int]:
    """``needing``: outputs that need power, in the order they asked."""
    if not needing or healthy <= 0:
        return {o: 0 for o in needing}
    share, extra = divmod(healthy, len(needing))
    return {o: share + (1 if i < extra else 0) for i, o in enumerate(needing)}


def fair_share(active: int, healthy: int) -> int:
    """Modules a connector would get if it joined ``active`` others (for advertising
    EVSE maxima before it is powered)."""
    return healthy // (active + 1) if healthy > 0 else 0


class Allocator:
    """When to split anew, and who asked first: the split is redone when who needs power
    or the healthy module count changes, and once a second (derating)."""

    def __init__(self) -> None:
        self._key: object = None
        self._at = -1e9
        self._asked_at: dict[int, float] = {}  # connector -> when it began needing power

    def forget(self) -> None:
        """Split again at the next call (a connector's machine was replaced)."""
        self._key = None

    def plan(self, now: float, needs: Sequence[tuple[int, int, bool]],
             healthy: int) -> tuple[dict[int, int], int] | None:
        """``needs``: (connector, output, needs power) for every connector. Returns the
        modules per needing output and how many outputs need power, or None when
        nothing changed."""
        key = (tuple(n for _, _, n in needs), healthy)
        if key == self._key and now - self._at < 1.0:
            return None
        self._key, self._at = key, now
        order: list[tuple[float, int]] = []
        for connector, output, needing in needs:
            if needing:
                if not self._asked_at.get(connector):
                    self._asked_at[connector] = now or 1e-9
                order.append((self._asked_at[connector], output))
            else:
                self._asked_at[connector] = 0.0
        order.sort(key=lambda pair: pair[0])
        return split_modules([o for _, o in order], healthy), len(order)
