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
