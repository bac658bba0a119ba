"""The PAPER'S OWN numbers (Fan et al., "Not all Layers of LLMs are Necessary during Inference"),
copied by hand from its Tables 2-9 for comparison with ours. Nothing here is a result of this
project: every frame carries ``source = "paper Table N"``.

:func:`paper_table` returns one table as a tidy DataFrame:

- Tables 2, 3, 4, 5, 8, 9 (accuracy and FLOPs per task and setting), columns
  ``table, model, policy, task, setting, accuracy, flops, source``. ``policy`` is ``"full"`` (the
  plain model row, e.g. "Llama2-13B"), ``"svm"`` (plain "AdaInfer"), ``"crf"`` ("AdaInfer w. CRF")
  or ``"rule"`` ("AdaInfer w. Rule", gap > 0.8). ``task`` is one of :data:`PAPER_TASKS`: the five
  tasks, ``rule_understanding`` (the paper reports only the average over its rule tasks) and the
  group averages ``avg(question_answering)`` (Table 2/8 "Avg") and ``avg(text_classification)``
  (Table 3/9 "Avg", over sentiment and AG News), named as :func:`experiments.group_average` names
  ours. ``setting`` is ``"zero-shot"`` or ``"few-shot"`` (the paper's mean over k = 5/10/15/20).
  ``accuracy`` is top-1 accuracy in percent, ``flops`` the FLOPs ratio of Eq. 2 in percent.
- Table 6 (generalization of the classifier, sentiment on Llama2-7B): ``classifier, generalization,
  model, task, accuracy, layers, variance, flops, source``.
- Table 7 (SVM with incremental features): ``feature_set`` (keys of :data:`policies.FEATURE_SETS`:
  base / attn / hidden / mlp), ``features`` (the paper's row label), ``task``, ``accuracy``, ``source``.

Transcription notes (the paper's text, not its PDF, was copied):

- Table 3's zero-shot rows print one "0.00" for the two sentiment accuracies of a model; Table 9
  gives both (0.00 and 0.00), which we use.
- Every row of Tables 2/3/4/5 equals the row of Tables 8/9 for the same model, classifier and
  setting (``tests/test_paper_results.py`` checks this, which guards the transcription).
- Table 7 does not name its model; its base-feature sentiment accuracy (94.90) equals Table 6's
  SVM intra-task row on Llama2-7B, so we record Llama2-7B. Its MMLU column is "MMLU/anatomy".
"""

from __future__ import annotations

import pandas as pd

from .tasks import CLASSIFICATION, QA, RULE

PAPER: str = "Fan et al., Not all Layers of LLMs are Necessary during Inference"
AVG_QA: str = f"avg({QA})"                  # Table 2/8 "Avg": MMLU, CommonsenseQA, SQuAD
AVG_CLS: str = f"avg({CLASSIFICATION})"     # Table 3/9 "Avg": sentiment, AG News
PAPER_TASKS: tuple[str, ...] = ("mmlu", "commonsense_qa", "squad", AVG_QA, "sentiment", "ag_news", AVG_CLS,
                                "rule_understanding")
PAPER_POLICIES: tuple[str, ...] = ("full", "svm", "crf", "rule")
SETTINGS: tuple[str, ...] = ("zero-shot", "few-shot")
# The model each of our comparisons uses: Llama2-13B for the main tables, Llama2-7B for Table 5.
COMPARISON_MODEL: dict[int, str] = {2: "Llama2-13B", 3: "Llama2-13B", 4: "Llama2-13B", 5: "Llama2-7B",
                                    8: "Llama2-13B", 9: "Llama2-13B"}

_QA_TASKS = ("mmlu", "commonsense_qa", "squad", AVG_QA)
_CLS_TASKS = ("sentiment", "ag_news", AVG_CLS, "rule_understanding")
# Row label in the paper -> our policy name.
_POLICY = {"AdaInfer": "svm", "AdaInfer w. CRF": "crf", "AdaInfer w. Rule": "rule"}

# ----------------------------------------------------------------------------- Tables 8 and 9
# (setting, model, row label, acc/FLOPs pairs in the paper's column order). A model name as row
# label is the full-model baseline. Copied from Appendix D.
_T8 = [  # MMLU, CommonsenseQA, SQuAD, Avg
    ("zero-shot", "OPT-13B", "OPT-13B", [7.95, 100, 8.20, 100, 20.00, 100, 12.05, 100]),
    ("zero-shot", "OPT-13B", "AdaInfer w. Rule", [3.21, 89.58, 0.60, 85.17, 20.72, 87.98, 8.18, 87.58]),
    ("zero-shot", "OPT-13B", "AdaInfer w. CRF", [7.14, 96.57, 4.60, 93.26, 24.36, 93.22, 12.03, 94.35]),
    ("zero-shot", "OPT-13B", "AdaInfer", [8.67, 97.55, 2.80, 97.55, 23.00, 97.55, 11.49, 97.55]),
    ("few-shot", "OPT-13B", "OPT-13B", [23.60, 100, 21.45, 100, 26.12, 100, 23.72, 100]),
    ("few-shot", "OPT-13B", "AdaInfer w. Rule", [20.99, 79.54, 20.72, 80.00, 24.20, 82.93, 21.97, 80.82]),
    ("few-shot", "OPT-13B", "AdaInfer w. CRF", [24.44, 97.43, 21.18, 97.55, 25.98, 97.11, 24.81, 97.37]),
    ("few-shot", "OPT-13B", "AdaInfer", [22.59, 83.94, 21.62, 86.05, 25.95, 88.31, 23.39, 86.10]),
    ("zero-shot", "Llama2-7B", "Llama2-7B", [4.19, 100, 5.30, 100, 20.40, 100, 9.96, 100]),
    ("zero-shot", "Llama2-7B", "AdaInfer w. Rule", [4.69, 95.69, 4.60, 94.90, 23.90, 89.48, 11.06, 93.36]),
    ("zero-shot", "Llama2-7B", "AdaInfer w. CRF", [4.86, 95.32, 2.00, 95.01, 18.80, 91.17, 8.55, 93.83]),
    ("zero-shot", "Llama2-7B", "AdaInfer", [4.63, 96.13, 4.80, 95.26, 23.80, 89.98, 11.08, 93.79]),
    ("few-shot", "Llama2-7B", "Llama2-7B", [43.05, 100, 53.50, 100, 48.08, 100, 48.21, 100]),
    ("few-shot", "Llama2-7B", "AdaInfer w. Rule", [44.03, 93.69, 52.83, 90.23, 45.68, 86.72, 47.51, 90.21]),
    ("few-shot", "Llama2-7B", "AdaInfer w. CRF", [41.38, 94.23, 53.60, 91.61, 43.62, 88.10, 46.20, 91.31]),
    ("few-shot", "Llama2-7B", "AdaInfer", [43.73, 93.76, 53.00, 90.46, 45.82, 87.06, 47.52, 90.43]),
    ("zero-shot", "Llama2-13B", "Llama2-13B", [2.54, 100, 1.00, 100, 19.20, 100, 7.58, 100]),
    ("zero-shot", "Llama2-13B", "AdaInfer w. Rule", [5.35, 90.84, 1.10, 92.78, 24.60, 73.17, 10.35, 85.60]),
    ("zero-shot", "Llama2-13B", "AdaInfer w. CRF", [4.77, 97.40, 1.40, 97.28, 23.10, 93.03, 9.76, 95.90]),
    ("zero-shot", "Llama2-13B", "AdaInfer", [2.48, 98.14, 0.70, 98.37, 25.90, 85.34, 9.69, 93.95]),
    ("few-shot", "Llama2-13B", "Llama2-13B", [53.31, 100, 64.92, 100, 52.90, 100, 57.04, 100]),
    ("few-shot", "Llama2-13B", "AdaInfer w. Rule", [47.09, 84.10, 55.33, 79.57, 43.43, 71.19, 48.62, 78.29]),
    ("few-shot", "Llama2-13B", "AdaInfer w. CRF", [52.72, 97.15, 65.72, 96.40, 51.75, 89.94, 56.73, 94.50]),
    ("few-shot", "Llama2-13B", "AdaInfer", [52.44, 93.55, 62.48, 89.10, 48.35, 80.66, 54.42, 87.77]),
]
_T9 = [  # Sentiment, AG News, Avg, Rule Understanding
    ("zero-shot", "OPT-13B", "OPT-13B", [0.00, 100, 0.10, 100, 0.05, 100, 3.38, 100]),
    ("zero-shot", "OPT-13B", "AdaInfer w. Rule", [0.00, 90.61, 0.10, 92.03, 0.05, 91.32, 3.64, 87.55]),
    ("zero-shot", "OPT-13B", "AdaInfer w. CRF", [0.00, 97.55, 0.10, 97.55, 0.05, 97.55, 4.11, 97.55]),
    ("zero-shot", "OPT-13B", "AdaInfer", [0.00, 96.87, 0.10, 100, 0.05, 98.44, 3.86, 92.52]),
    ("few-shot", "OPT-13B", "OPT-13B", [92.58, 100, 72.83, 100, 82.71, 100, 58.48, 100]),
    ("few-shot", "OPT-13B", "AdaInfer w. Rule", [94.20, 78.30, 12.95, 82.54, 53.58, 80.42, 48.20, 85.50]),
    ("few-shot", "OPT-13B", "AdaInfer w. CRF", [92.88, 97.50, 71.27, 97.55, 82.08, 97.53, 55.33, 97.50]),
    ("few-shot", "OPT-13B", "AdaInfer", [92.97, 80.28, 72.83, 100, 82.90, 90.14, 52.83, 89.74]),
    ("zero-shot", "Llama2-7B", "Llama2-7B", [0.00, 100, 0.10, 100, 0.05, 100, 5.47, 100]),
    ("zero-shot", "Llama2-7B", "AdaInfer w. Rule", [0.00, 96.08, 0.10, 91.05, 0.05, 93.57, 5.41, 91.20]),
    ("zero-shot", "Llama2-7B", "AdaInfer w. CRF", [0.00, 96.07, 0.10, 92.20, 0.05, 94.14, 3.62, 92.08]),
    ("zero-shot", "Llama2-7B", "AdaInfer", [0.00, 96.37, 0.10, 91.36, 0.05, 93.87, 5.32, 91.55]),
    ("few-shot", "Llama2-7B", "Llama2-7B", [95.20, 100, 79.65, 100, 87.43, 100, 66.80, 100]),
    ("few-shot", "Llama2-7B", "AdaInfer w. Rule", [95.30, 67.78, 79.72, 94.38, 87.51, 81.08, 66.80, 87.99]),
    ("few-shot", "Llama2-7B", "AdaInfer w. CRF", [94.90, 69.91, 61.62, 96.38, 78.26, 83.15, 62.36, 89.60]),
    ("few-shot", "Llama2-7B", "AdaInfer", [95.30, 68.05, 79.72, 94.51, 87.51, 81.28, 66.92, 88.41]),
    ("zero-shot", "Llama2-13B", "Llama2-13B", [0.00, 100, 0.10, 100, 0.05, 100, 2.32, 100]),
    ("zero-shot", "Llama2-13B", "AdaInfer w. Rule", [0.00, 88.25, 0.10, 77.82, 0.05, 83.04, 9.90, 74.80]),
    ("zero-shot", "Llama2-13B", "AdaInfer w. CRF", [0.00, 97.27, 0.10, 94.04, 0.05, 95.66, 3.43, 90.29]),
    ("zero-shot", "Llama2-13B", "AdaInfer", [0.00, 97.43, 0.10, 88.37, 0.05, 92.90, 6.14, 85.76]),
    ("few-shot", "Llama2-13B", "Llama2-13B", [95.90, 100, 77.53, 100, 86.72, 100, 69.36, 100]),
    ("few-shot", "Llama2-13B", "AdaInfer w. Rule", [91.45, 51.25, 69.17, 70.65, 80.31, 60.95, 53.78, 70.38]),
    ("few-shot", "Llama2-13B", "AdaInfer w. CRF", [95.60, 73.07, 76.77, 93.08, 86.19, 83.08, 65.82, 90.29]),
    ("few-shot", "Llama2-13B", "AdaInfer", [92.65, 59.70, 76.43, 87.69, 84.54, 73.70, 61.87, 80.61]),
]

# ----------------------------------------------------------------------------- Tables 2 and 3 (§5.3)
_T2 = [  # MMLU, CommonsenseQA, SQuAD, Avg
    ("zero-shot", "OPT-13B", "OPT-13B", [7.95, 100, 8.20, 100, 20.00, 100, 12.05, 100]),
    ("zero-shot", "OPT-13B", "AdaInfer", [8.67, 97.55, 2.80, 97.55, 23.00, 97.55, 11.49, 97.55]),
    ("few-shot", "OPT-13B", "OPT-13B", [23.60, 100, 21.45, 100, 26.12, 100, 23.72, 100]),
    ("few-shot", "OPT-13B", "AdaInfer", [22.59, 83.94, 21.62, 86.05, 25.95, 88.31, 23.39, 86.10]),
    ("zero-shot", "Llama2-13B", "Llama2-13B", [2.54, 100, 1.00, 100, 19.20, 100, 7.58, 100]),
    ("zero-shot", "Llama2-13B", "AdaInfer", [2.48, 98.14, 0.70, 98.37, 25.90, 85.34, 9.69, 93.95]),
    ("few-shot", "Llama2-13B", "Llama2-13B", [53.31, 100, 64.92, 100, 52.90, 100, 57.04, 100]),
    ("few-shot", "Llama2-13B", "AdaInfer", [52.44, 93.55, 62.48, 89.10, 48.35, 80.66, 54.42, 87.77]),
]
_T3 = [  # Sentiment, AG News, Avg, Rule Understanding
    ("zero-shot", "OPT-13B", "OPT-13B", [0.00, 100, 0.10, 100, 0.05, 100, 3.38, 100]),
    ("zero-shot", "OPT-13B", "AdaInfer", [0.00, 96.87, 0.10, 100, 0.05, 98.44, 3.86, 92.52]),
    ("few-shot", "OPT-13B", "OPT-13B", [92.58, 100, 72.83, 100, 82.71, 100, 58.48, 100]),
    ("few-shot", "OPT-13B", "AdaInfer", [92.97, 80.28, 72.83, 100, 82.90, 90.14, 52.83, 89.74]),
    ("zero-shot", "Llama2-13B", "Llama2-13B", [0.00, 100, 0.10, 100, 0.05, 100, 2.32, 100]),
    ("zero-shot", "Llama2-13B", "AdaInfer", [0.00, 97.43, 0.10, 88.37, 0.05, 92.90, 6.14, 85.76]),
    ("few-shot", "Llama2-13B", "Llama2-13B", [95.90, 100, 77.53, 100, 86.72, 100, 69.36, 100]),
    ("few-shot", "Llama2-13B", "AdaInfer", [92.65, 59.70, 76.43, 87.69, 84.54, 73.70, 61.87, 80.61]),
]

# ----------------------------------------------------------------------------- Tables 4 and 5
# (task, setting, [policy A acc, FLOPs, policy B acc, FLOPs])
_T4 = [  # Llama2-13B: AdaInfer w. Rule, AdaInfer w. CRF
    ("mmlu", "zero-shot", [5.35, 90.84, 4.77, 97.40]),
    ("mmlu", "few-shot", [47.09, 84.10, 52.72, 97.15]),
    ("commonsense_qa", "zero-shot", [1.10, 92.78, 1.40, 97.28]),
    ("commonsense_qa", "few-shot", [55.33, 79.57, 65.72, 96.40]),
    ("squad", "zero-shot", [24.60, 73.17, 23.10, 93.03]),
    ("squad", "few-shot", [43.43, 71.19, 51.75, 89.94]),
    ("sentiment", "zero-shot", [0.00, 88.25, 0.00, 97.27]),
    ("sentiment", "few-shot", [91.45, 51.25, 95.60, 73.07]),
    ("ag_news", "zero-shot", [0.10, 77.82, 0.10, 94.04]),
    ("ag_news", "few-shot", [69.17, 70.65, 76.77, 93.08]),
    ("rule_understanding", "zero-shot", [9.90, 74.80, 3.43, 90.29]),
    ("rule_understanding", "few-shot", [53.78, 70.38, 65.82, 90.29]),
]
_T5 = [  # Llama2-7B: the full model, AdaInfer
    ("mmlu", "zero-shot", [4.19, 100, 4.63, 96.13]),
    ("mmlu", "few-shot", [43.05, 100, 43.73, 93.76]),
    ("commonsense_qa", "zero-shot", [5.30, 100, 4.80, 95.26]),
    ("commonsense_qa", "few-shot", [53.50, 100, 53.00, 90.46]),
    ("squad", "zero-shot", [20.40, 100, 23.80, 89.98]),
    ("squad", "few-shot", [48.08, 100, 45.82, 87.06]),
    ("sentiment", "zero-shot", [0.00, 100, 0.00, 96.37]),
    ("sentiment", "few-shot", [95.20, 100, 95.30, 68.05]),
    ("ag_news", "zero-shot", [0.10, 100, 0.10, 91.36]),
    ("ag_news", "few-shot", [79.65, 100, 79.72, 94.51]),
    ("rule_understanding", "zero-shot", [5.47, 100, 5.32, 91.55]),
    ("rule_understanding", "few-shot", [66.80, 100, 66.92, 88.41]),
]

# ----------------------------------------------------------------------------- Tables 6 and 7
_T6 = [  # sentiment on Llama2-7B (inter-model: Llama2-13B); Acc, Layers, Variance, FLOPs
    ("svm", "intra-task", [94.90, 18.15, 0.45, 60.58]),
    ("crf", "intra-task", [0.00, 0.00, 0.00, 0.00]),
    ("svm", "inter-task", [95.50, 19.20, 4.40, 63.80]),
    ("crf", "inter-task", [94.90, 20.20, 4.55, 66.87]),
    ("svm", "inter-model", [90.70, 20.60, 3.70, 54.55]),
    ("crf", "inter-model", [87.75, 19.20, 2.75, 51.09]),
]
_T7 = [  # (feature set, the paper's row label, sentiment acc, MMLU/anatomy acc)
    ("base", "Base Features (gap, top prob)", 94.90, 41.13),
    ("attn", "+attn", 94.90, 41.13),
    ("hidden", "+hidden state", 67.53, 41.13),
    ("mlp", "+mlp", 67.88, 41.93),
]
TIDY_COLUMNS: tuple[str, ...] = ("table", "model", "policy", "task", "setting", "accuracy", "flops", "source")


def _policy(label: str, model: str) -> str:
    return "full" if label == model else _POLICY[label]


def _wide_rows(n: int, rows: list, tasks: tuple[str, ...]) -> list[dict]:
    out = []
    for setting, model, label, values in rows:
        if len(values) != 2 * len(tasks):
            raise AssertionError(f"Table {n}: row {model}/{label}/{setting} has {len(values)} numbers")
        for i, task in enumerate(tasks):
            out.append({"table": n, "model": model, "policy": _policy(label, model), "task": task,
                        "setting": setting, "accuracy": float(values[2 * i]), "flops": float(values[2 * i + 1])})
    return out


def _pair_rows(n: int, rows: list, model: str, policies: tuple[str, str]) -> list[dict]:
    return [{"table": n, "model": model, "policy": p, "task": task, "setting": setting,
             "accuracy": float(v[2 * i]), "flops": float(v[2 * i + 1])}
            for task, setting, v in rows for i, p in enumerate(policies)]


def paper_table(n: int) -> pd.DataFrame:
    """Table ``n`` (2-9) of the paper as a tidy DataFrame (see the module docstring for columns).

    These are the paper's published numbers (Llama2 / OPT, 7B-13B), copied for comparison only.
    """
    if n in (2, 3, 8, 9):
        rows = {2: _T2, 3: _T3, 8: _T8, 9: _T9}[n]
        tasks = _QA_TASKS if n in (2, 8) else _CLS_TASKS
        df = pd.DataFrame(_wide_rows(n, rows, tasks))
    elif n == 4:
        df = pd.DataFrame(_pair_rows(4, _T4, "Llama2-13B", ("rule", "crf")))
    elif n == 5:
        df = pd.DataFrame(_pair_rows(5, _T5, "Llama2-7B", ("full", "svm")))
    elif n == 6:
        df = pd.DataFrame([{"classifier": c, "generalization": g, "model": "Llama2-7B", "task": "sentiment",
                            "accuracy": v[0], "layers": v[1], "variance": v[2], "flops": v[3]}
                           for c, g, v in _T6])
        df.loc[df.generalization == "inter-model", "model"] = "Llama2-13B"
    elif n == 7:
        df = pd.DataFrame([{"feature_set": key, "features": label, "model": "Llama2-7B", "task": task,
                            "accuracy": acc}
                           for key, label, sent, mmlu in _T7 for task, acc in (("sentiment", sent), ("mmlu", mmlu))])
    else:
        raise ValueError(f"paper table {n!r} is not transcribed: use one of 2, 3, 4, 5, 6, 7, 8, 9")
    df["source"] = f"paper Table {n}"
    return df


def paper_reference(model: str = "Llama2-13B") -> pd.DataFrame:
    """Every (policy, task, setting) the paper reports for ``model`` (Tables 8 and 9 together)."""
    df = pd.concat([paper_table(8), paper_table(9)], ignore_index=True)
    if model not in set(df.model):
        raise ValueError(f"the paper has no model {model!r}: use one of {sorted(set(df.model))}")
    return df[df.model == model].reset_index(drop=True)


_SENTIMENT = {"sentiment", "sst2", "builtin_sentiment"}
_AG_NEWS = {"ag_news", "builtin_topic"}


def paper_task(task: str, group: str | None = None) -> str | None:
    """The paper's task (one of :data:`PAPER_TASKS`) that our task ``task`` is compared with.

    sentiment / sst2 / builtin_sentiment -> "sentiment"; ag_news / builtin_topic -> "ag_news";
    mmlu, mmlu_<subject> -> "mmlu"; commonsense_qa, squad as they are; our group averages
    ``avg(question_answering)`` / ``avg(text_classification)`` as they are and
    ``avg(rule_understanding)`` -> "rule_understanding"; any other task of the rule-understanding
    group (or of unknown group) -> "rule_understanding" (the paper reports only the group's
    average); anything else -> None (no comparison).
    """
    if task in _SENTIMENT:
        return "sentiment"
    if task in _AG_NEWS:
        return "ag_news"
    if task == "mmlu" or task.startswith("mmlu_"):
        return "mmlu"
    if task in ("commonsense_qa", "squad", AVG_QA, AVG_CLS):
        return task
    if task == f"avg({RULE})":
        return "rule_understanding"
    if task.startswith("avg("):
        return None
    return "rule_understanding" if group in (None, RULE) else None
