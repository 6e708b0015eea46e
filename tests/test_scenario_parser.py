"""The scenario language: every shipped scenario parses; bad lines say where and why."""

from __future__ import annotations

import pytest

from firmware.core.transitions import Phase
from sim import scenario as sc


def test_shipped_scenarios_parse() -> None:
    names = sc.available()
    assert {"break-45min", "two-trucks", "isolation-fault"} <= set(names)
    for name in names:
        assert sc.load(name)[1]


def test_parse_commands() -> None:
    steps = sc.parse("""
    # comment
    plug 2 etgx soc=40 target=90
    wait 2 charging timeout=90s
    sleep 1.5h
    fault 2 module_lost 4
    """)
    assert [s.verb for s in steps] == ["plug", "wait", "sleep", "fault"]
    assert steps[0].connector == 2 and steps[0].options == {"soc": "40", "target": "90"}
    assert steps[1].phase is Phase.CHARGING and steps[1].seconds == 90
    assert steps[2].seconds == 5400
    assert steps[3].args == ("module_lost", "4")


@pytest.mark.parametrize("line,needle", [
    ("fly 1", "unknown command"),
    ("plug eactros600", "connector number"),
    ("wait 1 Dancing", "unknown state"),
    ("sleep soon", "not a duration"),
    ("authorize 1 cash X", "authorize source"),
    ("fault 1 lightning", "fault kind"),
])
def test_bad_lines(line: str, needle: str) -> None:
    with pytest.raises(sc.ScenarioError) as err:
        sc.parse(f"sleep 1s\n{line}\n", "x.scenario")
    assert "x.scenario:2:" in str(err.value) and needle in str(err.value)
