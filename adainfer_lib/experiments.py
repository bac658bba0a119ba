"""Experiment glue shared by the CLI and the notebooks: training pools, fitting, scoring with FLOPs.

- :func:`sample_training_pool`: the paper (§5.6) trains the classifier on 6-9 tasks sampled from the
  pool of task training sets; we sample ``n`` names with a recorded seed, excluding test tasks.
- :func:`training_frame`: features of the TRAIN split of each training task (never the test split).
- :func:`score`: simulate a policy on a features table and report accuracy, exit-layer statistics
  and the FLOPs ratios (paper Eq. 2 and the honest count, :mod:`flops`).
- :func:`run_engine`: the same policy through the real early-exit engine, with wall-clock time.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import flops
from .arch import model_dims
from .engine import lens_need, run_early_exit
from .features import extract_many
from .lens import model_inputs
from .models import LM, load_config
from .policies import make_policy, simulate, summarize
from .prompts import answer_token_ids, build_prompts
from .tasks import Task, load_task



# Upper bound on a classification task's answer tokens, used to charge answer-restricted checks
# (A/V < 1e-3 of a full lens check for every model here: negligible either way).
MAX_ANSWER_TOKENS = 10


def sample_training_pool(candidates: list[str], n: int, seed: int, exclude: tuple[str, ...] = ()) -> list[str]:
    """``n`` task names sampled without replacement (seeded) from ``candidates`` minus ``exclude``."""
    pool = sorted(set(candidates) - set(exclude))
    if not pool:
        raise ValueError(f"no training tasks left after excluding {list(exclude)}")
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(pool, size=min(n, len(pool)), replace=False).tolist())


def training_frame(model: str | LM, tasks: list[str], shots: list[int], *, limit: int, seed: int = 0,
                   **kwargs) -> pd.DataFrame:
    """Classifier training data (Appendix B): features of the train split of every task x shots."""
    return extract_many(model, tasks, shots, limit=limit, seed=seed, split="train", **kwargs)


def fit(name: str, train: pd.DataFrame, **params):
    """A fitted policy by short name (``svm``, ``crf``, ``rule``, ``static``, ``full``, ``oracle``)."""
    return make_policy(name, **params).fit(train)


def flops_columns(sim: pd.DataFrame, config, policy) -> pd.DataFrame:
    """Add per-example ``flops_ratio_paper`` and ``flops_ratio_honest`` to a simulation table."""
    dims = model_dims(config)
    exit_layer = sim["exit_layer"].to_numpy()
    seq = sim["seq_len"].to_numpy()
    need = lens_need(policy)
    if need == "full":
        checks = exit_layer.astype(float)          # the full lens at every layer up to the exit
    elif need == "answer":  # answer-token logits per layer (charged as MAX_ANSWER_TOKENS rows) + one full lens
        checks = 1.0 + exit_layer * MAX_ANSWER_TOKENS / dims.vocab_size
    else:
        checks = np.ones_like(exit_layer, dtype=float)
    out = sim.copy()
    out["flops_ratio_paper"] = flops.paper_flops_ratio(exit_layer, dims.num_layers, dims.hidden_size, seq,
                                                       dims.vocab_size)
    out["flops_ratio_honest"] = flops.honest_flops_ratio(dims, seq, exit_layer, checks)
    return out


def _config_for(test: pd.DataFrame, config):
    if config is not None:
        return config
    models = test["model"].unique()
    if len(models) != 1:
        raise ValueError(f"features of several models {list(models)}: score them one model at a time")
    return load_config(str(models[0]))


def score(policy, test: pd.DataFrame, config=None) -> tuple[dict, pd.DataFrame]:
    """Simulate ``policy`` on a features table; (summary dict, per-example table).

    ``config``: the model's HF config (for FLOPs); None reads it for the table's ``model`` column.
    The summary holds n, accuracy (0-1), mean_exit_layer, exit_layer_variance, num_layers and the
    mean per-example FLOPs ratios (paper Eq. 2 and honest), as fractions of the full model.
    """
    sim = flops_columns(simulate(policy, test), _config_for(test, config), policy)
    summary = summarize(sim)
    summary["flops_ratio_paper"] = flops.mean_ratio(sim["flops_ratio_paper"].to_numpy())
    summary["flops_ratio_honest"] = flops.mean_ratio(sim["flops_ratio_honest"].to_numpy())
    return summary, sim


def run_engine(lm: LM, task: str | Task, policy, *, shots: int, limit: int | None, seed: int = 0,
               batch_size: int = 1, max_prompt_tokens: int = 1024, progress: bool = True
               ) -> tuple[pd.DataFrame, float]:
    """Run the real early-exit engine over a task's test prompts; (per-example table, seconds)."""
    task = load_task(task) if isinstance(task, str) else task
    items = build_prompts(task, lm.tokenizer, shots=shots, seed=seed, limit=limit,
                          max_prompt_tokens=max_prompt_tokens)
    ans = answer_token_ids(lm.tokenizer, task.answer_vocab)
    outs, seconds = [], 0.0
    for s in tqdm(range(0, len(items), batch_size), desc=f"engine {task.name} k={shots}", disable=not progress):
        b = items[s:s + batch_size]
        t0 = time.perf_counter()
        outs.append(run_early_exit(lm, [i.prompt for i in b], policy, target_ids=[i.target_id for i in b],
                                   answer_ids=ans, example_ids=[i.example_id for i in b]))
        seconds += time.perf_counter() - t0
    return pd.concat(outs, ignore_index=True), seconds


def time_full_model(lm: LM, prompts: list[str], batch_size: int) -> float:
    """Seconds for the plain model (last-token logits only) over ``prompts`` in batches."""
    import torch

    seconds = 0.0
    with torch.no_grad():
        for s in range(0, len(prompts), batch_size):
            inputs = model_inputs(lm, prompts[s:s + batch_size])
            t0 = time.perf_counter()
            lm.model(**inputs, use_cache=False, logits_to_keep=1)
            seconds += time.perf_counter() - t0
    return seconds


def evaluate_grid(policies: dict, test: pd.DataFrame, config=None) -> pd.DataFrame:
    """Score every named fitted policy on every (model, task, shots) block of a features table.

    Returns one row per (model, task, group, shots, policy) with n, accuracy, mean_exit_layer,
    exit_layer_variance, num_layers, flops_ratio_paper and flops_ratio_honest (fractions).
    """
    rows = []
    config = _config_for(test, config)
    for (model, task, group, shots), block in test.groupby(["model", "task", "group", "shots"], sort=True):
        for name, policy in policies.items():
            summary, _ = score(policy, block, config)
            rows.append({"model": model, "task": task, "group": group, "shots": int(shots), "policy": name,
                         **summary})
    return pd.DataFrame(rows)


def by_setting(grid: pd.DataFrame, few_shots: tuple[int, ...]) -> pd.DataFrame:
    """Collapse shots into the paper's settings: "zero-shot" (k=0) and "few-shot" (mean over
    ``few_shots``, as the paper averages over k = 5/10/15/20). Metrics are unweighted means over k."""
    metrics = ["accuracy", "flops_ratio_paper", "flops_ratio_honest", "mean_exit_layer", "exit_layer_variance"]
    g = grid.copy()
    g["setting"] = np.where(g["shots"] == 0, "zero-shot", np.where(g["shots"].isin(few_shots), "few-shot", "other"))
    g = g[g["setting"] != "other"]
    keys = ["model", "task", "group", "setting", "policy"]
    out = g.groupby(keys, sort=False)[metrics].mean().reset_index()
    out["n"] = g.groupby(keys, sort=False)["n"].sum().to_numpy()
    return out


def group_average(table: pd.DataFrame) -> pd.DataFrame:
    """Task-group averages (paper Tables 2/3 'Avg' columns): mean over tasks within each group."""
    metrics = [c for c in ("accuracy", "flops_ratio_paper", "flops_ratio_honest", "mean_exit_layer")
               if c in table.columns]
    out = table.groupby(["model", "group", "setting", "policy"], sort=False)[metrics].mean().reset_index()
    out.insert(1, "task", "avg(" + out["group"] + ")")
    return out
