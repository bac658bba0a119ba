"""Task registry: tasks are data (cf. lm-evaluation-harness), one small record each.

Every task is a list of ``{"input": str, "output": str}`` examples (the function-vector format of
Todd et al. 2024) plus metadata: its group in the paper's tables (§5.1: question answering, text
classification, rule understanding), its answer vocabulary when it is a classification task, and
an optional separate pool of demonstrations (MMLU's dev rows).

Names resolve, in order: ``builtin_*`` (generated offline by :mod:`builtin_tasks`), ``mmlu`` /
``mmlu_<subject>``, ``sst2``, ``squad``, any function-vector file stem under
``<data>/function_vectors/{abstractive,extractive}/`` (``sentiment``, ``ag_news``,
``commonsense_qa``, ``antonym``, ...), and finally a path to a JSON file in that format.
Raw data lives in ``ADAINFER_DATA_DIR`` (see :mod:`paths`) and is never committed.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import builtin_tasks
from .paths import data_dir

QA, CLASSIFICATION, RULE = "question_answering", "text_classification", "rule_understanding"
GROUPS: tuple[str, ...] = (QA, CLASSIFICATION, RULE)
_KNOWN_VOCAB: dict[str, list[str]] = {
    "sentiment": ["positive", "negative"],
    "sst2": ["positive", "negative"],
    "ag_news": ["World", "Sports", "Business", "Science"],
    "commonsense_qa": ["a", "b", "c", "d", "e"],
    "mmlu": ["A", "B", "C", "D"],
}
_QA_NAMES = {"commonsense_qa", "squad"}
_CLASSIFICATION_NAMES = {"sentiment", "sst2", "ag_news"}


class TaskError(ValueError):
    """Bad task input: the message names the file or task and what is wrong."""


@dataclass
class Task:
    """One task: examples, and where demonstrations come from.

    ``demos`` (if not None) is a pool used for demonstrations before the seeded train split.
    """

    name: str
    examples: list[dict[str, str]]
    group: str
    source: str
    answer_vocab: list[str] | None = None
    demos: list[dict[str, str]] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.examples:
            raise TaskError(f"task {self.name!r} ({self.source}) has no examples")
        if self.group not in GROUPS:
            raise TaskError(f"task {self.name!r}: unknown group {self.group!r}")

    def split(self, seed: int = 0, test_fraction: float = 0.3) -> tuple[list[int], list[int]]:
        """Seeded train/test split of example indices: (train_ids, test_ids), both non-empty if n>=2.

        Both lists keep the seeded permutation's order (they are NOT sorted), so the first ``n`` ids of
        either are a uniform random sample: ``build_prompts(limit=n)`` relies on this. Files are often
        ordered by label (AG News starts with a block of Sports items), so sorted ids would bias every
        limited run."""
        n = len(self.examples)
        order = np.random.default_rng(seed).permutation(n)
        n_test = max(1, int(round(n * test_fraction))) if n > 1 else 1
        n_test = min(n_test, n - 1) if n > 1 else n_test
        test = [int(i) for i in order[:n_test]]
        train = [int(i) for i in order[n_test:]]
        return train, test


def read_fv_json(path: Path) -> list[dict[str, str]]:
    """Read a function-vector JSON file, with a one-line error naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise TaskError(f"{path}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    if not isinstance(data, list):
        raise TaskError(f"{path}: expected a JSON list of {{\"input\": ..., \"output\": ...}} objects, "
                        f"got {type(data).__name__}")
    if not data:
        raise TaskError(f"{path}: the task is empty (no examples)")
    for i, row in enumerate(data):
        if not isinstance(row, dict) or not isinstance(row.get("input"), str) \
                or not isinstance(row.get("output"), str):
            raise TaskError(f"{path}: item {i} must be an object with string fields 'input' and 'output'")
        if not row["output"].strip():
            raise TaskError(f"{path}: item {i} has an empty 'output'")
    return [{"input": r["input"], "output": r["output"]} for r in data]


def _infer_vocab(examples: list[dict[str, str]]) -> list[str] | None:
    """Classification if there are few distinct answers, each used several times."""
    outs = sorted({e["output"] for e in examples})
    if len(outs) <= 10 and len(examples) >= 5 * len(outs):
        return outs
    return None


def _fv_dirs() -> list[Path]:
    root = data_dir() / "function_vectors"
    return [root / "abstractive", root / "extractive"]


def _mmlu_rows(path: Path, subject: str) -> list[dict[str, str]]:
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            choices = "\n".join(f"{L}. {r[f'choice{i}']}" for i, L in enumerate("ABCD"))
            rows.append({"input": f"{r['question']}\n{choices}", "output": "ABCD"[int(r["answer"])],
                         "subject": subject})
    return rows


def mmlu_subjects() -> list[str]:
    """The MMLU subjects present in the data folder (57 with the full data)."""
    test = data_dir() / "mmlu" / "test"
    return sorted(p.name[: -len("_test.csv")] for p in test.glob("*_test.csv")) if test.is_dir() else []


def _load_mmlu(name: str) -> Task:
    subjects = mmlu_subjects() if name == "mmlu" else [name[len("mmlu_"):]]
    root = data_dir() / "mmlu"
    examples: list[dict[str, str]] = []
    demos: list[dict[str, str]] = []
    for s in subjects:
        test, dev = root / "test" / f"{s}_test.csv", root / "dev" / f"{s}_dev.csv"
        if not test.is_file():
            raise TaskError(f"{test}: file not found (MMLU subject {s!r}; run `adainfer data download` "
                            f"or set ADAINFER_DATA_DIR)")
        examples += _mmlu_rows(test, s)
        if dev.is_file():
            demos += _mmlu_rows(dev, s)
    return Task(name, examples, QA, str(root), _KNOWN_VOCAB["mmlu"], demos or None,
                meta={"subjects": subjects})


def _load_sst2() -> Task:
    path = data_dir() / "sst2" / "dev.tsv"
    if not path.is_file():
        raise TaskError(f"{path}: file not found (task 'sst2'; set ADAINFER_DATA_DIR)")
    with open(path, newline="", encoding="utf-8") as f:
        rows = [{"input": r["sentence"].strip(), "output": "positive" if r["label"] == "1" else "negative"}
                for r in csv.DictReader(f, delimiter="\t")]
    return Task("sst2", rows, CLASSIFICATION, str(path), _KNOWN_VOCAB["sst2"])


def _group_for(name: str) -> str:
    if name.startswith("mmlu") or name in _QA_NAMES:
        return QA
    if name in _CLASSIFICATION_NAMES:
        return CLASSIFICATION
    return RULE


def available_tasks() -> list[str]:
    """Every registry name that resolves with the current data folder."""
    names = list(builtin_tasks.BUILTIN_TASK_NAMES)
    for d in _fv_dirs():
        names += sorted(p.stem for p in d.glob("*.json")) if d.is_dir() else []
    if (data_dir() / "squad" / "squad_val_fv_format.json").is_file():
        names.append("squad")
    if (data_dir() / "sst2" / "dev.tsv").is_file():
        names.append("sst2")
    subjects = mmlu_subjects()
    if subjects:
        names += ["mmlu"] + [f"mmlu_{s}" for s in subjects]
    return names


def load_task(spec: str) -> Task:
    """Resolve a registry name or a JSON path (function-vector format) to a :class:`Task`."""
    if spec in builtin_tasks.BUILTIN_TASK_NAMES:
        return Task(spec, builtin_tasks.generate(spec), builtin_tasks.task_group(spec),
                    "adainfer_lib.builtin_tasks", builtin_tasks.answer_vocabulary(spec))
    if spec == "mmlu" or spec.startswith("mmlu_"):
        return _load_mmlu(spec)
    if spec == "sst2":
        return _load_sst2()
    if spec == "squad":
        path = data_dir() / "squad" / "squad_val_fv_format.json"
        return Task("squad", read_fv_json(path), QA, str(path))
    for d in _fv_dirs():
        path = d / f"{spec}.json"
        if path.is_file():
            ex = read_fv_json(path)
            return Task(spec, ex, _group_for(spec), str(path), _KNOWN_VOCAB.get(spec) or _infer_vocab(ex))
    path = Path(spec).expanduser()
    if path.suffix == ".json" or path.exists():
        ex = read_fv_json(path)
        return Task(path.stem, ex, RULE, str(path.resolve()), _infer_vocab(ex))
    raise TaskError(f"unknown task {spec!r} (data folder {data_dir()}): use a path to a JSON file of "
                    f"{{\"input\", \"output\"}} items or one of: {', '.join(available_tasks()[:40])} ...")


def resolve_tasks(wanted: list[str], fallback: list[str]) -> list[str]:
    """The wanted task names that resolve here, each missing one replaced by its fallback (same
    position). Prints what was substituted, so a notebook says which tasks it really ran."""
    have = set(available_tasks())
    out = []
    for w, f in zip(wanted, fallback):
        if w in have:
            out.append(w)
        else:
            print(f"task {w!r} is not in {data_dir()}: using the offline task {f!r} instead")
            out.append(f)
    return out
