"""Tests for adainfer_lib.builtin_tasks: offline, table-generated tasks (no models, fast)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from adainfer_lib import builtin_tasks as bt

MIN_SIZES: dict[str, int] = {
    "builtin_capitalize": 200,
    "builtin_first_letter": 200,
    "builtin_last_letter": 200,
    "builtin_lowercase": 200,
    "builtin_choose_first_of_3": 100,
    "builtin_choose_middle_of_3": 100,
    "builtin_choose_last_of_3": 100,
    "builtin_alphabetically_first_3": 100,
    "builtin_alphabetically_last_3": 100,
    # days 6 + months 11 + numbers 19 + letters 25: the tables cap these at 61
    "builtin_next_item": 61,
    "builtin_prev_item": 61,
    "builtin_country_capital": 80,
    "builtin_present_past": 80,
    "builtin_singular_plural": 80,
    "builtin_antonym": 60,
    "builtin_sentiment": 300,
    "builtin_topic": 200,
}
CLASSIFICATION = ("builtin_sentiment", "builtin_topic")
LIST_TASKS = (
    "builtin_choose_first_of_3",
    "builtin_choose_middle_of_3",
    "builtin_choose_last_of_3",
    "builtin_alphabetically_first_3",
    "builtin_alphabetically_last_3",
)


def test_names_match_spec() -> None:
    assert set(bt.BUILTIN_TASK_NAMES) == set(MIN_SIZES)
    assert len(bt.BUILTIN_TASK_NAMES) == len(set(bt.BUILTIN_TASK_NAMES))
    assert all(n.startswith("builtin_") for n in bt.BUILTIN_TASK_NAMES)


def test_tables_meet_minimums() -> None:
    assert len(bt.WORDS) >= 200 and len(set(bt.WORDS)) == len(bt.WORDS)
    assert all(w.isalpha() and w.islower() for w in bt.WORDS)
    assert len(bt.COUNTRY_CAPITALS) >= 80
    assert len(bt.PRESENT_PAST) >= 80
    assert len(bt.SINGULAR_PLURAL) >= 80
    assert len(bt.ANTONYM_PAIRS) >= 60
    words = [w for pair in bt.ANTONYM_PAIRS for w in pair]
    assert len(words) == len(set(words)), "each antonym word must appear in exactly one pair"


@pytest.mark.parametrize("name", bt.BUILTIN_TASK_NAMES)
def test_task_well_formed(name: str) -> None:
    examples = bt.generate(name)
    assert len(examples) >= MIN_SIZES[name]
    for ex in examples:
        assert set(ex) == {"input", "output"}
        assert isinstance(ex["input"], str) and ex["input"].strip()
        assert isinstance(ex["output"], str) and ex["output"].strip()
    outputs_by_input: dict[str, set[str]] = {}
    for ex in examples:
        outputs_by_input.setdefault(ex["input"], set()).add(ex["output"])
    conflicts = {i: o for i, o in outputs_by_input.items() if len(o) > 1}
    assert not conflicts


@pytest.mark.parametrize("name", bt.BUILTIN_TASK_NAMES)
def test_deterministic_and_fresh(name: str) -> None:
    first = bt.generate(name)
    second = bt.generate(name)
    assert first == second
    first[0]["output"] = "MUTATED"
    assert bt.generate(name)[0]["output"] != "MUTATED"


def test_groups_and_vocabulary() -> None:
    for name in bt.BUILTIN_TASK_NAMES:
        if name in CLASSIFICATION:
            assert bt.task_group(name) == "text_classification"
            vocab = bt.answer_vocabulary(name)
            assert vocab is not None
            assert sorted(vocab) == sorted({ex["output"] for ex in bt.generate(name)})
        else:
            assert bt.task_group(name) == "rule_understanding"
            assert bt.answer_vocabulary(name) is None
    assert set(bt.answer_vocabulary("builtin_sentiment") or []) == {"positive", "negative"}
    assert set(bt.answer_vocabulary("builtin_topic") or []) == {
        "World", "Sports", "Business", "Science"
    }


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classes_balanced_and_disjoint(name: str) -> None:
    examples = bt.generate(name)
    counts = Counter(ex["output"] for ex in examples)
    assert max(counts.values()) <= 1.1 * min(counts.values())
    inputs = [ex["input"] for ex in examples]
    assert len(inputs) == len(set(inputs)), "inputs must be distinct"


def test_list_task_answers() -> None:
    pickers = {
        "builtin_choose_first_of_3": lambda items: items[0],
        "builtin_choose_middle_of_3": lambda items: items[1],
        "builtin_choose_last_of_3": lambda items: items[2],
        "builtin_alphabetically_first_3": min,
        "builtin_alphabetically_last_3": max,
    }
    words = set(bt.WORDS)
    for name in LIST_TASKS:
        examples = bt.generate(name)
        assert len({ex["input"] for ex in examples}) == len(examples)
        for ex in examples:
            items = ex["input"].split(", ")
            assert len(items) == 3 and len(set(items)) == 3
            assert set(items) <= words
            assert ex["output"] == pickers[name](items)


def test_letter_task_answers() -> None:
    for ex in bt.generate("builtin_capitalize"):
        assert ex["output"] == ex["input"][0].upper() + ex["input"][1:]
    for ex in bt.generate("builtin_first_letter"):
        assert ex["output"] == ex["input"][0]
    for ex in bt.generate("builtin_last_letter"):
        assert ex["output"] == ex["input"][-1]
    for ex in bt.generate("builtin_lowercase"):
        assert ex["input"].isupper() and ex["output"] == ex["input"].lower()


def test_next_prev_items() -> None:
    nxt = {ex["input"]: ex["output"] for ex in bt.generate("builtin_next_item")}
    prev = {ex["input"]: ex["output"] for ex in bt.generate("builtin_prev_item")}
    assert nxt["Monday"] == "Tuesday" and nxt["November"] == "December"
    assert nxt["nineteen"] == "twenty" and nxt["y"] == "z"
    assert prev["Tuesday"] == "Monday" and prev["b"] == "a" and prev["two"] == "one"
    # no wrap-around: the ends are skipped
    for last in ("Sunday", "December", "twenty", "z"):
        assert last not in nxt
    for first in ("Monday", "January", "one", "a"):
        assert first not in prev
    assert all(prev[o] == i for i, o in nxt.items())


def test_table_tasks_spot_checks() -> None:
    cap = {ex["input"]: ex["output"] for ex in bt.generate("builtin_country_capital")}
    assert cap["France"] == "Paris" and cap["Japan"] == "Tokyo"
    past = {ex["input"]: ex["output"] for ex in bt.generate("builtin_present_past")}
    assert past["go"] == "went" and past["walk"] == "walked"
    plural = {ex["input"]: ex["output"] for ex in bt.generate("builtin_singular_plural")}
    assert plural["child"] == "children" and plural["city"] == "cities"
    ant = {ex["input"]: ex["output"] for ex in bt.generate("builtin_antonym")}
    assert ant["hot"] == "cold" and ant["cold"] == "hot"
    assert all(ant[o] == i for i, o in ant.items())


def test_write_builtin_tasks_round_trip(tmp_path: Path) -> None:
    dest = tmp_path / "nested" / "fv"
    paths = bt.write_builtin_tasks(dest)
    assert [p.name for p in paths] == [f"{n}.json" for n in bt.BUILTIN_TASK_NAMES]
    for name, path in zip(bt.BUILTIN_TASK_NAMES, paths):
        assert path.parent == dest
        assert json.loads(path.read_text(encoding="utf-8")) == bt.generate(name)
    # no temporary files left behind; rewriting is idempotent
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in paths)
    before = {p: p.read_bytes() for p in paths}
    bt.write_builtin_tasks(dest)
    assert {p: p.read_bytes() for p in paths} == before


def test_unknown_name_raises_keyerror() -> None:
    for fn in (bt.generate, bt.task_group, bt.answer_vocabulary):
        with pytest.raises(KeyError) as info:
            fn("builtin_nope")
        assert "builtin_capitalize" in str(info.value)
