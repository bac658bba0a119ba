"""adainfer_lib.tasks and adainfer_lib.prompts: loading, clear one-line errors, seeded splits and the
paper's k-shot template. Offline; the real-data checks skip when ``../shared/data`` is absent."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

from adainfer_lib import builtin_tasks, tasks
from adainfer_lib.prompts import (DEMO_TEMPLATE, QUERY_TEMPLATE, answer_token_ids, build_prompts, render,
                                  target_token_id)
from adainfer_lib.tasks import Task, TaskError, load_task
from tiny_models import tiny_tokenizer

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEMO_RE = re.compile(r"Q: (.*)\nA: (.*)", re.S)


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """An empty ADAINFER_DATA_DIR with the function-vector folders."""
    monkeypatch.setenv("ADAINFER_DATA_DIR", str(tmp_path))
    (tmp_path / "function_vectors" / "abstractive").mkdir(parents=True)
    (tmp_path / "function_vectors" / "extractive").mkdir(parents=True)
    return tmp_path


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def _examples(n: int) -> list[dict[str, str]]:
    return [{"input": f"word{i}", "output": f"Out{i}"} for i in range(n)]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _error(spec: str) -> str:
    with pytest.raises(TaskError) as err:
        load_task(spec)
    msg = str(err.value)
    assert "\n" not in msg, f"not one line: {msg!r}"
    return msg


# ---------------------------------------------------------------------------------------------
# task loading errors


def test_missing_json_file(data_dir):
    path = data_dir / "nope.json"
    msg = _error(str(path))
    assert str(path) in msg and "not found" in msg


def test_unknown_task_name_lists_choices(data_dir):
    msg = _error("no_such_task")
    assert "'no_such_task'" in msg and "builtin_capitalize" in msg and str(data_dir) in msg


@pytest.mark.parametrize("registry", [False, True], ids=["path", "registry-name"])
def test_malformed_json_names_file_line_and_column(data_dir, registry):
    text = '[{"input": "a", "output": "b"},\n {"input": "c" "output": "d"}]\n'
    path = _write(data_dir / "function_vectors" / "abstractive" / "broken.json", text)
    msg = _error("broken" if registry else str(path))
    assert str(path) in msg
    assert "malformed JSON" in msg and "line 2 column 16" in msg


def test_non_list_json(data_dir):
    path = _write(data_dir / "obj.json", json.dumps({"input": "a", "output": "b"}))
    msg = _error(str(path))
    assert str(path) in msg and "expected a JSON list" in msg and "dict" in msg


def test_empty_list(data_dir):
    path = _write(data_dir / "function_vectors" / "extractive" / "empty.json", "[]")
    msg = _error("empty")
    assert str(path) in msg and "empty" in msg


@pytest.mark.parametrize("item, what", [
    ({"input": "c"}, "'output'"),
    ({"output": "d"}, "'input'"),
    ({"input": "c", "output": 3}, "'output'"),
    ("just a string", "object"),
    ({"input": "c", "output": "   "}, "empty 'output'"),
])
def test_bad_item(data_dir, item, what):
    path = _write(data_dir / "bad.json", json.dumps([{"input": "a", "output": "b"}, item]))
    msg = _error(str(path))
    assert str(path) in msg and "item 1" in msg and what in msg


def test_task_without_examples_or_with_unknown_group():
    with pytest.raises(TaskError, match="no examples"):
        Task("t", [], tasks.RULE, "here")
    with pytest.raises(TaskError, match="unknown group"):
        Task("t", _examples(3), "poetry", "here")


class _SpaceBlindTokenizer:
    """Stub tokenizer: one id per non-space ASCII character, so " " + "é" tokenizes to nothing."""

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [ord(c) for c in text if c.isascii() and not c.isspace()]}


def test_answer_that_tokenizes_to_nothing(tmp_path):
    stub = _SpaceBlindTokenizer()
    with pytest.raises(TaskError, match="tokenizes to nothing"):
        target_token_id(stub, "é")
    assert target_token_id(stub, "ok") == ord("o")
    path = _write(tmp_path / "accents.json", json.dumps(_examples(9) + [{"input": "x", "output": "é"}]))
    task = load_task(str(path))
    with pytest.raises(TaskError) as err:
        build_prompts(task, stub, shots=0, split="train")
    msg = str(err.value)
    assert "'accents'" in msg and "example 9" in msg and "tokenizes to nothing" in msg and "\n" not in msg


def test_more_shots_than_the_pool(tok, tmp_path):
    path = _write(tmp_path / "small.json", json.dumps(_examples(10)))
    task = load_task(str(path))
    train, _ = task.split(0)
    build_prompts(task, tok, shots=len(train))                    # the whole pool: fine
    with pytest.raises(TaskError) as err:
        build_prompts(task, tok, shots=len(train) + 1)
    msg = str(err.value)
    assert "'small'" in msg and f"{len(train) + 1} shots" in msg and f"only {len(train)}" in msg
    assert "\n" not in msg
    with pytest.raises(TaskError, match="only"):                   # train queries: the pool minus itself
        build_prompts(task, tok, shots=len(train), split="train")
    with pytest.raises(TaskError, match="shots must be >= 0"):
        build_prompts(task, tok, shots=-1)


# ---------------------------------------------------------------------------------------------
# builtin tasks and splits


def test_builtin_tasks_load_without_data(data_dir):
    assert tasks.available_tasks() == list(builtin_tasks.BUILTIN_TASK_NAMES)
    for name in builtin_tasks.BUILTIN_TASK_NAMES:
        task = load_task(name)
        assert task.name == name and task.group in tasks.GROUPS and len(task.examples) >= 50
        assert all(set(e) == {"input", "output"} for e in task.examples)
        if task.group == tasks.CLASSIFICATION:
            assert task.answer_vocab and len(task.answer_vocab) >= 2
            assert {e["output"] for e in task.examples} <= set(task.answer_vocab)


def test_json_path_task(tmp_path):
    path = _write(tmp_path / "my_task.json", json.dumps(_examples(12)))
    task = load_task(str(path))
    assert (task.name, task.group, task.source) == ("my_task", tasks.RULE, str(path.resolve()))
    assert task.examples == _examples(12) and task.answer_vocab is None
    cls = [{"input": f"s{i}", "output": "yes" if i % 2 else "no"} for i in range(20)]
    assert load_task(str(_write(tmp_path / "cls.json", json.dumps(cls)))).answer_vocab == ["no", "yes"]


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101])
def test_split_is_seeded_deterministic_and_disjoint(n):
    task = Task("t", _examples(n), tasks.RULE, "here")
    train, test = task.split(seed=3)
    assert (train, test) == task.split(seed=3)
    assert not set(train) & set(test)
    assert sorted(train + test) == list(range(n))
    assert test, "the test split is never empty"
    if n >= 2:
        assert train
    if n >= 10:
        assert abs(len(test) - 0.3 * n) <= 1
        assert any(task.split(seed=s)[1] != test for s in range(4, 8))


def test_limited_sample_is_random_not_the_lowest_ids(tok):
    """A file sorted by label (AG News starts with a block of one class) must not give a one-class
    sample under ``limit``: the first n ids of the split follow the seeded permutation."""
    rows = [{"input": f"s{i}", "output": "yes" if i >= 50 else "no"} for i in range(100)]
    task = Task("sorted", rows, tasks.CLASSIFICATION, "here", answer_vocab=["no", "yes"])
    _, test = task.split(seed=0)
    assert test != sorted(test)
    items = build_prompts(task, tok, shots=0, seed=0, limit=10)
    assert [i.example_id for i in items] == test[:10]
    assert {i.answer for i in items} == {"no", "yes"}


# ---------------------------------------------------------------------------------------------
# prompts


def _demos_of(prompt: str, query: str) -> list[tuple[str, str]]:
    """Split a rendered prompt back into its demonstrations; checks the query ends it."""
    suffix = QUERY_TEMPLATE.format(x=query)
    assert prompt.endswith(suffix)
    head = prompt[: -len(suffix)]
    if not head:
        return []
    assert head.endswith("\n\n")
    blocks = head[:-2].split("\n\n")
    return [DEMO_RE.fullmatch(b).groups() for b in blocks]


def test_template_is_exact():
    demos = [{"input": "a b", "output": "X"}, {"input": "c", "output": "Y Z"}]
    assert DEMO_TEMPLATE == "Q: {x}\nA: {y}\n\n" and QUERY_TEMPLATE == "Q: {x}\nA:"
    assert render(demos, "q") == "Q: a b\nA: X\n\nQ: c\nA: Y Z\n\nQ: q\nA:"
    assert render([], "q") == "Q: q\nA:"


def test_build_prompts(tok):
    task = Task("t", _examples(40), tasks.RULE, "here")
    train, test = task.split(seed=1)
    items = build_prompts(task, tok, shots=3, seed=1, limit=5)
    assert [i.example_id for i in items] == test[:5]
    pool = {(task.examples[j]["input"], task.examples[j]["output"]) for j in train}
    for it in items:
        ex = task.examples[it.example_id]
        demos = _demos_of(it.prompt, ex["input"])
        assert it.prompt == render([{"input": x, "output": y} for x, y in demos], ex["input"])
        assert len(demos) == len(set(demos)) == it.shots == it.shots_used == 3
        assert set(demos) <= pool
        assert (ex["input"], ex["output"]) not in demos
        assert it.answer == ex["output"]
        assert it.target_id == tok(" " + ex["output"], add_special_tokens=False)["input_ids"][0]
        assert tok.convert_ids_to_tokens(it.target_id) == " O"         # the first token of " Out<i>"
        assert it.n_tokens == len(tok(it.prompt)["input_ids"])
    assert build_prompts(task, tok, shots=3, seed=1, limit=5) == items     # deterministic
    other = build_prompts(task, tok, shots=3, seed=2, limit=5)
    assert [i.prompt for i in other] != [i.prompt for i in items]
    zero = build_prompts(task, tok, shots=0, seed=1, limit=5)
    assert all(i.prompt == QUERY_TEMPLATE.format(x=task.examples[i.example_id]["input"]) for i in zero)


def test_query_never_among_its_demonstrations(tok):
    """Train-split queries with every other pool example as a demonstration; duplicated rows too."""
    ex = _examples(20)
    ex += [dict(ex[0]), dict(ex[1])]          # duplicate rows (as in product-company.json)
    task = Task("t", ex, tasks.RULE, "here")
    train, _ = task.split(0)
    distinct = {(ex[j]["input"], ex[j]["output"]) for j in train}
    for shots in (1, 5):
        for it in build_prompts(task, tok, shots=shots, split="train"):
            q = ex[it.example_id]
            demos = _demos_of(it.prompt, q["input"])
            assert (q["input"], q["output"]) not in demos
            assert len(demos) == shots
    most = len(distinct) - 1
    items = build_prompts(task, tok, shots=most - 1, split="train")
    for it in items:
        assert (ex[it.example_id]["input"], ex[it.example_id]["output"]) not in \
            _demos_of(it.prompt, ex[it.example_id]["input"])


def test_demos_pool_is_used(tok):
    demos = [{"input": f"dev{i}", "output": f"D{i}"} for i in range(5)]
    task = Task("t", _examples(4), tasks.QA, "here", demos=demos)
    items = build_prompts(task, tok, shots=5, seed=0)
    used = {d for it in items for d in _demos_of(it.prompt, task.examples[it.example_id]["input"])}
    assert any(x.startswith("dev") for x, _ in used)


def test_length_control_drops_demonstrations_not_the_query(tok):
    task = Task("t", _examples(40), tasks.RULE, "here")
    full = build_prompts(task, tok, shots=6, limit=4)
    n_query = len(tok(QUERY_TEMPLATE.format(x="word10"))["input_ids"])
    n_demo = len(tok(DEMO_TEMPLATE.format(x="word10", y="Out10"), add_special_tokens=False)["input_ids"])
    limit = n_query + 2 * n_demo + 1                                 # room for two demonstrations
    with pytest.warns(UserWarning, match=r"dropped \d+ demonstrations from 4 of 4 prompts"):
        short = build_prompts(task, tok, shots=6, limit=4, max_prompt_tokens=limit)
    for f, s in zip(full, short):
        q = task.examples[s.example_id]["input"]
        assert s.n_tokens <= limit and s.shots == 6 and s.shots_used == 2
        assert f.prompt.endswith(s.prompt)                            # dropped from the front
        assert len(_demos_of(s.prompt, q)) == 2
        assert (s.target_id, s.answer, s.example_id) == (f.target_id, f.answer, f.example_id)
    with pytest.warns(UserWarning, match="dropped 24 demonstrations"):    # even the query is too long
        tiny = build_prompts(task, tok, shots=6, limit=4, max_prompt_tokens=3)
    assert all(i.shots_used == 0 and i.prompt.startswith("Q: word") and i.n_tokens > 3 for i in tiny)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                               # no warning when nothing is dropped
        build_prompts(task, tok, shots=6, limit=4, max_prompt_tokens=full[0].n_tokens + 100)


def test_answer_token_ids(tok):
    a = tok(" a", add_special_tokens=False)["input_ids"][0]
    b = tok(" b", add_special_tokens=False)["input_ids"][0]
    assert answer_token_ids(tok, ["apple", "banana", "avocado"]) == [a, b]  # first tokens, deduplicated
    assert answer_token_ids(tok, ["apple", "avocado"]) is None              # one distinct first token
    assert answer_token_ids(tok, None) is None and answer_token_ids(tok, []) is None


@pytest.mark.slow
def test_target_is_first_token_of_spaced_answer_smollm2(smollm2):
    t = smollm2.tokenizer
    for answer in ("positive", "Paris", "World", " B "):
        ids = t(" " + answer.strip(), add_special_tokens=False)["input_ids"]
        got = target_token_id(t, answer)
        assert got == ids[0]
        assert t.decode([got]).startswith(" ")                       # the space belongs to the token
    assert len(set(answer_token_ids(t, ["positive", "negative"]))) == 2


# ---------------------------------------------------------------------------------------------
# the real data (../shared/data), skipped when absent

needs_data = pytest.mark.skipif(not (SHARED_DATA / "function_vectors").is_dir(),
                                reason=f"no function-vector data at {SHARED_DATA}")


@needs_data
@pytest.mark.parametrize("name, group, vocab", [
    ("sentiment", tasks.CLASSIFICATION, ["positive", "negative"]),
    ("ag_news", tasks.CLASSIFICATION, ["World", "Sports", "Business", "Science"]),
    ("commonsense_qa", tasks.QA, ["a", "b", "c", "d", "e"]),
    ("mmlu_anatomy", tasks.QA, ["A", "B", "C", "D"]),
    ("mmlu", tasks.QA, ["A", "B", "C", "D"]),
    ("sst2", tasks.CLASSIFICATION, ["positive", "negative"]),
    ("squad", tasks.QA, None),
])
def test_real_tasks_resolve(monkeypatch, name, group, vocab, tok):
    monkeypatch.setenv("ADAINFER_DATA_DIR", str(SHARED_DATA))
    task = load_task(name)
    assert task.name == name and task.group == group and task.answer_vocab == vocab
    assert len(task.examples) >= 100
    if vocab:
        assert {e["output"] for e in task.examples} <= set(vocab)
    if name.startswith("mmlu"):
        assert task.demos and all(e["output"] in "ABCD" for e in task.demos)
        assert len(task.meta["subjects"]) == (57 if name == "mmlu" else 1)
    assert name in tasks.available_tasks()
    items = build_prompts(task, tok, shots=2, limit=2, max_prompt_tokens=100_000)
    assert len(items) == 2 and all(i.shots_used == 2 for i in items)


@needs_data
def test_resolve_tasks_substitutes_missing(monkeypatch, capsys):
    monkeypatch.setenv("ADAINFER_DATA_DIR", str(SHARED_DATA))
    got = tasks.resolve_tasks(["sentiment", "no_such"], ["builtin_sentiment", "builtin_antonym"])
    assert got == ["sentiment", "builtin_antonym"]
    assert "'no_such'" in capsys.readouterr().out
