"""firmware/schema.py: every config section reports its first problem as one named key."""

from typing import Annotated

import pytest
from pydantic import Field, ValidationError

from firmware.config import ConfigError
from firmware.schema import Section, parse_section


class Row(Section):
    current_a: Annotated[float, Field(gt=0, le=500)]
    label: str = "x"


class Table(Section):
    rows: list[Row]
    count: int = 1


@pytest.mark.parametrize("data, key, reason", [
    ({"rows": [{"current_a": True}]}, "t.rows[0].current_a", "valid number"),
    ({"rows": [{"current_a": "10"}]}, "t.rows[0].current_a", "valid number"),
    ({"rows": [{"current_a": float("inf")}]}, "t.rows[0].current_a", "finite"),
    ({"rows": [{"current_a": 600}]}, "t.rows[0].current_a", "less than or equal to 500"),
    ({"rows": [{"current_a": 1}, {"current_a": 1, "lable": "y"}]}, "t.rows[1].lable",
     "unknown key"),
    ({"rows": [{}]}, "t.rows[0].current_a", "is required"),
    ({"rows": [{"current_a": 1}], "count": False}, "t.count", "valid integer"),
])
def test_first_problem_names_the_key(data, key, reason):
    with pytest.raises(ConfigError) as err:
        parse_section(Table, data, "t")
    assert err.value.key == key
    assert reason in err.value.reason


def test_a_good_table_is_frozen_and_typed():
    table = parse_section(Table, {"rows": [{"current_a": 250}]}, "t")
    assert table.rows[0].current_a == 250.0 and isinstance(table.rows[0].current_a, float)
    with pytest.raises(ValidationError):
        table.count = 2  # type: ignore[misc]


def test_a_non_table_is_refused():
    with pytest.raises(ConfigError, match="must be a table"):
        parse_section(Table, [1, 2], "t")
