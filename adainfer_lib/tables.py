"""Paper-style result tables (Tables 2/3/4/5/8/9) from our evaluation grid, next to the paper's.

Input everywhere is a *setting table*: :func:`experiments.by_setting` output (one row per model,
task, group, setting, policy; accuracy and FLOPs ratios as fractions) optionally concatenated with
its :func:`experiments.group_average` rows (task ``avg(<group>)``); :func:`setting_table` builds it
from an :func:`experiments.evaluate_grid` grid. Output is in percent, rounded to 2 decimals:

- ``Acc (%)``: top-1 accuracy of the first answer token;
- ``FLOPs Eq.2 (%)``: the paper's FLOPs ratio (Eq. 2), mean over examples;
- ``FLOPs honest (%)``: the count from the real model dims, charging every lens check (:mod:`flops`).

Layouts:

- :func:`wide_table`: the layout of Tables 2/3/8/9: rows (setting, policy), columns (task, metric).
  The paper's rows for the same policies follow ours within each setting, labelled
  ``"paper <model>: <policy>"`` (their honest FLOPs are unknown: empty). The paper's value shown in
  a task's column is that of :func:`paper_results.paper_task` of the task (for a rule task: the
  paper's rule-understanding average; for an offline stand-in such as ``builtin_sentiment``: the
  task it stands in for).
- :func:`by_task_table`: the layout of Tables 4/5: rows (task, setting), columns (policy, metric),
  each of our policies followed by the paper's same policy.
- :func:`long_table`: one row per (task, setting, policy) with our and the paper's numbers.

:func:`save_table` writes ``results/<name>.csv`` and ``results/<name>.md``.

The evaluation protocol the tables rest on (which tasks, which are held out of training, the
trained policies and where they are saved) is in :mod:`protocol`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .experiments import by_setting, group_average
from .paper_results import PAPER_POLICIES, SETTINGS, paper_reference, paper_task
from .paths import results_dir
from .plots import _ordered

ACC, FLOPS, HONEST = "Acc (%)", "FLOPs Eq.2 (%)", "FLOPs honest (%)"
EXIT = "exit layer"
METRICS: tuple[str, ...] = (ACC, FLOPS, HONEST)
_PERCENT = {"accuracy": ACC, "flops_ratio_paper": FLOPS, "flops_ratio_honest": HONEST}


# ----------------------------------------------------------------------------- tables
def setting_table(grid: pd.DataFrame, few_shots: Sequence[int]) -> pd.DataFrame:
    """:func:`experiments.by_setting` of an evaluation grid plus its task-group averages."""
    per_task = by_setting(grid, tuple(few_shots))
    return pd.concat([per_task, group_average(per_task)], ignore_index=True)


def _one_model(table: pd.DataFrame, model: str | None) -> pd.DataFrame:
    models = list(pd.unique(table["model"]))
    if model is None:
        if len(models) != 1:
            raise ValueError(f"the table holds models {models}: pass model=")
        model = models[0]
    if model not in models:
        raise ValueError(f"model {model!r} is not in the table (it has {models})")
    return table[table["model"] == model]




def _ours(t: pd.DataFrame) -> pd.DataFrame:
    """Our rows in percent: task, group, setting, policy, n, metrics, exit layer."""
    out = t[["task", "group", "setting", "policy"]].copy()
    out["n"] = pd.array(t["n"].to_numpy() if "n" in t.columns else [None] * len(t), dtype="Int64")
    for col, name in _PERCENT.items():
        out[name] = (100 * t[col].to_numpy(float)).round(2)
    out[EXIT] = t["mean_exit_layer"].to_numpy(float).round(2)
    return out.reset_index(drop=True)


def _paper_lookup(paper_model: str) -> dict[tuple[str, str, str], tuple[float, float]]:
    ref = paper_reference(paper_model)
    return {(r.task, r.setting, r.policy): (r.accuracy, r.flops) for r in ref.itertuples()}


def long_table(table: pd.DataFrame, *, paper_model: str = "Llama2-13B", model: str | None = None) -> pd.DataFrame:
    """One row per (task, setting, policy) of one model: n, our metrics (percent), mean exit layer,
    the paper task compared with and the paper's Acc / FLOPs for ``paper_model`` (NaN if none)."""
    t = _ours(_one_model(table, model))
    lookup = _paper_lookup(paper_model)
    t.insert(2, "paper_task", [paper_task(a, g) for a, g in zip(t["task"], t["group"])])
    vals = [lookup.get((pt, s, p), (np.nan, np.nan)) for pt, s, p in zip(t["paper_task"], t["setting"], t["policy"])]
    t[f"paper {paper_model} {ACC}"] = [v[0] for v in vals]
    t[f"paper {paper_model} FLOPs (%)"] = [v[1] for v in vals]
    return t


def wide_table(table: pd.DataFrame, *, tasks: Sequence[str] | None = None, policies: Sequence[str] | None = None,
               paper_model: str = "Llama2-13B", model: str | None = None,
               metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Tables 2/3/8/9 layout for one model: index (setting, policy), columns (task, metric).

    Within each setting come our ``policies`` (default: all, in table order), then the paper's
    rows ``"paper <paper_model>: <policy>"`` for those of them the paper reports (full, svm, crf,
    rule), with the paper's Acc and Eq. 2 FLOPs under each task's :func:`paper_results.paper_task`.
    """
    t = _one_model(table, model)
    tasks = _ordered(t["task"], tasks, "tasks")
    policies = _ordered(t["policy"], policies, "policies")
    ours = _ours(t[t["task"].isin(tasks) & t["policy"].isin(policies)])
    group_of = dict(zip(ours["task"], ours["group"]))
    lookup = _paper_lookup(paper_model)
    rows = []
    for setting in SETTINGS:
        for task in tasks:
            for p in (p for p in policies if p in PAPER_POLICIES):
                acc, fl = lookup.get((paper_task(task, group_of.get(task)), setting, p), (np.nan, np.nan))
                rows.append({"setting": setting, "task": task, "policy": f"paper {paper_model}: {p}",
                             ACC: acc, FLOPS: fl, HONEST: np.nan})
    both = pd.concat([ours, pd.DataFrame(rows, columns=["setting", "task", "policy", *METRICS])],
                     ignore_index=True)
    wide = both.set_index(["setting", "policy", "task"])[list(metrics)].unstack("task")
    wide = wide.swaplevel(0, 1, axis=1)
    paper_rows = [f"paper {paper_model}: {p}" for p in policies if p in PAPER_POLICIES]
    order = [(s, p) for s in SETTINGS for p in list(policies) + paper_rows if (s, p) in wide.index]
    wide = wide.reindex(index=pd.MultiIndex.from_tuples(order, names=["setting", "policy"]),
                        columns=pd.MultiIndex.from_product([tasks, list(metrics)], names=["task", "metric"]))
    return wide


def by_task_table(table: pd.DataFrame, *, policies: Sequence[str], tasks: Sequence[str] | None = None,
                  paper_model: str = "Llama2-13B", model: str | None = None,
                  metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Tables 4/5 layout for one model: index (task, setting), columns (policy, metric); each of our
    ``policies`` is followed by ``"paper <paper_model>: <policy>"`` (Acc, Eq. 2 FLOPs) when the
    paper reports that policy."""
    t = _one_model(table, model)
    tasks = _ordered(t["task"], tasks, "tasks")
    policies = _ordered(t["policy"], policies, "policies")
    long = long_table(t[t["task"].isin(tasks) & t["policy"].isin(policies)], paper_model=paper_model)
    pa, pf = f"paper {paper_model} {ACC}", f"paper {paper_model} FLOPs (%)"
    index = pd.MultiIndex.from_tuples([(a, s) for a in tasks for s in SETTINGS], names=["task", "setting"])
    blocks = []
    for p in policies:
        sub = long[long["policy"] == p].set_index(["task", "setting"]).reindex(index)
        blocks.append(pd.concat({p: sub[list(metrics)]}, axis=1))
        if p in PAPER_POLICIES:
            blocks.append(pd.concat({f"paper {paper_model}: {p}": sub[[pa, pf]].set_axis([ACC, FLOPS], axis=1)},
                                    axis=1))
    out = pd.concat(blocks, axis=1)
    out.columns.names = ["policy", "metric"]
    return out


def flat_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Index to columns and MultiIndex column labels joined with ": " (for CSV / Markdown)."""
    out = df.copy()
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = [": ".join(str(c) for c in col if str(c)) for col in out.columns]
    named_index = any(n is not None for n in out.index.names)
    return out.reset_index() if named_index else out.reset_index(drop=True)


def save_table(df: pd.DataFrame, name: str, caption: str | None = None) -> list[Path]:
    """Write ``results/<name>.csv`` and ``results/<name>.md`` (``DataFrame.to_markdown``, floats with
    2 decimals, missing values empty, ``caption`` as a paragraph above the table); MultiIndex
    columns are flattened by :func:`flat_columns`. Returns the two paths."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.endswith((".csv", ".md")):
        raise ValueError(f"table name {name!r}: use a bare file stem such as '04_table2' "
                         f"(letters, digits, '_', '-', '.'; no folder, no suffix)")
    flat = flat_columns(df)
    folder = results_dir()
    csv, md = folder / f"{name}.csv", folder / f"{name}.md"
    flat.to_csv(csv, index=False)
    cells = flat.astype(object).where(flat.notna(), None)  # tabulate prints None as missingval, NaN as "nan"
    text = cells.to_markdown(index=False, floatfmt=".2f", missingval="") + "\n"
    md.write_text((f"{caption}\n\n" if caption else "") + text, encoding="utf-8")
    return [csv, md]
