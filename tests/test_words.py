"""The driver's words live in firmware/words.py, outside the core; every fact the core can
put on the screen has a text."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from firmware import words
from firmware.core import events as ev
from firmware.core.events import StopReason
from firmware.core.transitions import Phase
from firmware.errors import CATALOGUE, ErrorCode


@pytest.mark.parametrize("lang", sorted(words.HEADLINES))
def test_every_phase_code_and_reason_has_a_text(lang: str) -> None:
    assert set(words.HEADLINES[lang]) == set(Phase)
    assert set(words.FAULTS[lang]) == set(ErrorCode) == set(CATALOGUE)
    assert set(words.STOP_REASONS[lang]) == set(StopReason)
    for table in (words.HEADLINES[lang], words.FAULTS[lang], words.STOP_REASONS[lang]):
        assert all(text.strip() for text in table.values())
    assert lang in words.STOPPED and lang in words.CARD_REJECTED


def test_english_is_there() -> None:
    assert words.DEFAULT_LANGUAGE == "en" and "en" in words.HEADLINES


def test_screen_text_from_facts() -> None:
    assert words.screen_text(ev.Screen(Phase.CHARGING)) == ("Charging.", "")
    done = ev.Screen(Phase.FINISHED, StopReason.LOCAL, energy_wh=4480)
    assert words.screen_text(done) == ("Finished. You may unplug.",
                                       "Stopped at the bay. 4.5 kWh.")
    faulted = ev.Screen(Phase.FINISHED, StopReason.FAULT, ErrorCode.LOCK_FAILURE,
                        energy_wh=1000)
    assert words.screen_text(faulted)[1].startswith("Connector could not be locked")
    warn = ev.Screen(Phase.CHARGING, worst_fault=ErrorCode.MODULE_LOST)
    assert words.screen_text(warn)[1] == words.fault_text(ErrorCode.MODULE_LOST)
    refused = ev.Screen(Phase.PREPARING, card_rejected="Blocked")
    assert words.screen_text(refused) == ("Card not accepted.", "Blocked")


def test_the_core_holds_no_sentences() -> None:
    """No string literal in firmware/core reads like a sentence (docstrings aside)."""
    core = Path(words.__file__).parent / "core"
    for path in core.glob("*.py"):
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)
                and n.body and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in docs:
                assert not (" " in node.value and node.value.rstrip().endswith(".")), (
                    path.name, node.value)
