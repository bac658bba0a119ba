"""The evaluation protocol shared by notebooks 03-05 and 08 (paper §5.1, §5.6).

- :data:`TABLE_TASKS`: the paper's test tasks in table order, and :data:`TABLE_FALLBACKS`, the
  offline task standing in for each when the data folder lacks it;
- :func:`held_out_tasks` / :func:`training_candidates`: the table tasks (and their stand-ins, every
  MMLU subject, SST-2) never train a classifier; the training pool is every other available task;
- :data:`TRAINED_POLICIES`: the exit classifiers notebook 03 fits (:func:`fit_policies`), saved
  under :func:`policy_path` with :func:`training_meta` and reused by later notebooks through
  :func:`load_policies` only when that metadata matches exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .experiments import fit
from .features import CODE_VERSION
from .paths import results_dir
from .policy_io import load_policy

# The paper's test tasks (§5.1) in table order, and the offline task standing in for each when the
# data folder lacks it (the same pairs as notebooks 01/02, so their features caches are shared).
TABLE_TASKS: tuple[str, ...] = ("mmlu", "commonsense_qa", "squad", "sentiment", "ag_news",
                                "antonym", "country-capital", "choose_first_of_3")
TABLE_FALLBACKS: tuple[str, ...] = ("builtin_alphabetically_first_3", "builtin_present_past",
                                    "builtin_choose_middle_of_3", "builtin_sentiment", "builtin_topic",
                                    "builtin_antonym", "builtin_country_capital", "builtin_choose_first_of_3")
QA_POSITIONS: slice = slice(0, 3)    # Table 2 columns: mmlu, commonsense_qa, squad (or stand-ins)
CLS_RULE_POSITIONS: slice = slice(3, None)  # Table 3 columns: sentiment, ag_news, rule tasks
# Exit classifiers trained in notebook 03: name -> (experiments.fit short name, hyper-parameters).
TRAINED_POLICIES: dict[str, tuple[str, dict]] = {
    "svm": ("svm", {}),                                   # the paper's AdaInfer (SVC defaults)
    "svm_balanced": ("svm", {"class_weight": "balanced"}),  # counters the label imbalance
    "crf": ("crf", {}),                                   # online decoding (realisable)
    "crf_offline": ("crf", {"decoding": "offline"}),      # sees later layers: comparison only
}


def held_out_tasks(available: Sequence[str]) -> list[str]:
    """Tasks never used to train a classifier: the table tasks, their offline stand-ins, every
    ``mmlu_<subject>`` and ``sst2`` (the SST-2 data behind ``sentiment``)."""
    held = set(TABLE_TASKS) | set(TABLE_FALLBACKS) | {"sst2"}
    return sorted(held | {t for t in available if t.startswith("mmlu")})


def training_candidates(available: Sequence[str]) -> list[str]:
    """The pool the training tasks are sampled from (paper §5.6: 6-9 of the task training sets):
    every available task (function-vector tasks and the offline ones) minus :func:`held_out_tasks`."""
    held = set(held_out_tasks(available))
    return sorted(t for t in available if t not in held)


def policy_path(model: str, name: str) -> Path:
    """``results/policies/<model>_<name>.json``: where notebook 03 saves a trained policy."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model)
    return results_dir() / "policies" / f"{safe}_{name}.json"


def fit_policies(train: pd.DataFrame) -> dict:
    """Fit every :data:`TRAINED_POLICIES` entry on one model's training features; name -> policy."""
    models = train["model"].unique()
    if len(models) != 1:
        raise ValueError(f"fit_policies needs the training features of one model, got {list(models)}")
    return {name: fit(kind, train, **params) for name, (kind, params) in TRAINED_POLICIES.items()}


def training_meta(profile, train_tasks: Sequence[str], n_train_tasks: int, pool_seed: int) -> dict:
    """What a trained policy depends on (saved as its ``features_meta``; JSON types only): the
    sampled tasks and how they were sampled, shots, examples per task, seeds, prompt cap, label,
    features code version and the :data:`TRAINED_POLICIES` spec. ``profile``: a :class:`profiles.Profile`."""
    return {"train_tasks": list(train_tasks), "n_train_tasks": int(n_train_tasks), "pool_seed": int(pool_seed),
            "shots": [0, *(int(k) for k in profile.few_shots)], "train_limit": int(profile.train_limit),
            "seed": int(profile.seed), "max_prompt_tokens": int(profile.max_prompt_tokens), "label": "correct",
            "features_version": CODE_VERSION,
            "policies": {name: [kind, dict(params)] for name, (kind, params) in TRAINED_POLICIES.items()}}


def load_policies(model: str, meta: dict) -> dict | None:
    """The saved :data:`TRAINED_POLICIES` of ``model`` if every file exists and was trained with
    exactly ``meta`` (the ``features_meta`` given to :func:`policy_io.save_policy`); else None."""
    paths = {name: policy_path(model, name) for name in TRAINED_POLICIES}
    for path in paths.values():
        if not path.is_file() or json.loads(path.read_text(encoding="utf-8")).get("features_meta") != meta:
            return None
    return {name: load_policy(path, model=model) for name, path in paths.items()}
