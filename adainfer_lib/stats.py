"""Statistics behind the paper's Figure 1, §3.2 and Figures 3/4, computed apart from drawing.

Every function takes the tidy features table of :mod:`features` (one row per (example, layer),
columns :data:`features.COLUMNS`) or a table made here, and returns a tidy pandas DataFrame; the
drawing lives in :mod:`plots`. Pure pandas / numpy, no model needed.

- :func:`layer_accuracy`: accuracy of every layer's logit-lens top-1 (Figure 1).
- :func:`average_shots`: the paper's two settings, zero-shot (k = 0) and "few-shot" (the mean over
  the k in ``few_shots``; the paper averages k = 5, 10, 15, 20).
- :func:`first_correct_layer` / :func:`activation_stats`: the "activated layer" of §3.2 (the first
  layer whose top-1 is the target) and its mean and variance per task ("average activated layer
  count 21, variance 5.1" for sentiment on Llama2-13B), plus the first layer at which the layer
  accuracy reaches the final layer's ("accuracy matches that of the final layer by the 24th layer").
- :func:`feature_profile`: mean and std of gap, top_prob and the cosine features per layer
  (Figures 3/4, §4.1).
- :func:`paired_difference_ci`: a bootstrap confidence interval of an accuracy difference measured
  on the same examples (e.g. full model minus an early-exit policy), for small test samples.

Conventions: layers are 1-based (1..L, ``num_layers`` = L); ``depth`` = layer / L in (0, 1];
variances and standard deviations are population statistics (``ddof=0``), so they are defined
for a single example and the tests can check them by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

#: One run of the features extraction: a model on a task with k demonstrations.
RUN_KEYS: tuple[str, ...] = ("model", "task", "group", "shots")
#: Identifies one example inside the features table.
EXAMPLE_KEYS: tuple[str, ...] = RUN_KEYS + ("example_id",)
#: Features drawn in Figures 3/4 (paper §4.1): the base features and the cosine factors.
BASE_FEATURES: tuple[str, ...] = ("gap", "top_prob")
COSINE_FEATURES: tuple[str, ...] = ("cos_attn", "cos_mlp", "cos_hidden")
#: Count columns: summed (not averaged) by :func:`average_shots`.
COUNT_COLUMNS: tuple[str, ...] = ("n", "n_correct", "n_answered")
ZERO_SHOT, FEW_SHOT = "zero-shot", "few-shot"


def _require(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: the table lacks column(s) {missing}; expected the features table of "
                         f"adainfer_lib.features.extract (columns {list(df.columns)[:12]} ...)")
    if df.empty:
        raise ValueError(f"{what}: the table is empty")


def _one_split(df: pd.DataFrame, what: str) -> None:
    """Train and test rows of the same run share example ids: refuse to pool them silently."""
    if "split" in df.columns and df["split"].nunique() > 1:
        raise ValueError(f"{what}: the table mixes splits {sorted(df['split'].unique())}; "
                         f"filter one, e.g. df[df.split == 'test']")


def _correct(df: pd.DataFrame) -> pd.Series:
    """Label of Appendix B: the layer's lens top-1 token is the target token (bool per row)."""
    return df["top1_id"].to_numpy() == df["target_id"].to_numpy()


def layer_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of the lens top-1 at every layer (paper Figure 1).

    Args:
        df: features table, one row per (example, layer).

    Returns:
        One row per (model, task, group, shots, layer) with columns ``num_layers``, ``depth``
        (layer / num_layers), ``n`` (examples), ``n_correct`` (examples whose top-1 at this layer is
        the target) and ``accuracy`` = n_correct / n, sorted by those keys in table order of models
        and tasks.
    """
    _require(df, RUN_KEYS + ("example_id", "layer", "num_layers", "top1_id", "target_id"), "layer_accuracy")
    _one_split(df, "layer_accuracy")
    work = df[list(RUN_KEYS) + ["layer", "num_layers"]].assign(correct=_correct(df).astype(np.int64))
    out = (work.groupby(list(RUN_KEYS) + ["layer"], sort=False)
           .agg(num_layers=("num_layers", "first"), n=("correct", "size"), n_correct=("correct", "sum"))
           .reset_index())
    out["n"] = out["n"].astype(np.int64)
    out["n_correct"] = out["n_correct"].astype(np.int64)
    out["accuracy"] = out["n_correct"] / out["n"]
    out["depth"] = out["layer"] / out["num_layers"]
    cols = list(RUN_KEYS) + ["layer", "num_layers", "depth", "n", "n_correct", "accuracy"]
    return _sort(out[cols], ["layer"])


def _sort(out: pd.DataFrame, extra: Sequence[str]) -> pd.DataFrame:
    """Stable sort: model, task, setting and feature in order of first appearance; shots and the
    numeric ``extra`` columns (layer, example_id) ascending."""
    order = [c for c in ("model", "task", "shots", "setting") if c in out.columns] + list(extra)
    first_seen = {"model", "task", "setting", "feature"}
    ranks = pd.DataFrame({f"_{c}": out[c].map({v: i for i, v in enumerate(pd.unique(out[c]))})
                          if c in first_seen else out[c] for c in order}, index=out.index)
    idx = ranks.sort_values(list(ranks.columns), kind="stable").index
    return out.loc[idx].reset_index(drop=True)


def average_shots(table: pd.DataFrame, few_shots: Sequence[int], values: Sequence[str] | None = None) -> pd.DataFrame:
    """The paper's two settings: zero-shot (k = 0) and few-shot (mean over k in ``few_shots``).

    Works on any table with a ``shots`` column (:func:`layer_accuracy`, :func:`activation_stats`,
    :func:`feature_profile`). Value columns (default: every float column) are averaged with equal
    weight per k, as the paper averages its k = 5, 10, 15, 20 results; count columns
    (:data:`COUNT_COLUMNS`) are summed; every other column is a key.

    Returns:
        The table with ``shots`` replaced by ``setting`` ("zero-shot" / "few-shot") and ``ks``
        (the k averaged, e.g. "5,10"). Zero-shot rows exist only if k = 0 is in the table, few-shot
        rows only if ``few_shots`` is non-empty.

    Raises:
        ValueError: a k of ``few_shots`` is not in the table, ``few_shots`` contains 0, or nothing
            is left (no k = 0 rows and no ``few_shots``).
    """
    _require(table, ["shots"], "average_shots")
    few = sorted({int(k) for k in few_shots})
    if 0 in few:
        raise ValueError("average_shots: few_shots must not contain 0 (k = 0 is the zero-shot setting)")
    have = set(int(k) for k in table["shots"].unique())
    missing = [k for k in few if k not in have]
    if missing:
        raise ValueError(f"average_shots: few-shot k={missing} not in the table (it has shots {sorted(have)}); "
                         f"extract those k or pass the profile's few_shots")
    if values is None:
        values = [c for c in table.columns if pd.api.types.is_float_dtype(table[c]) and c != "shots"]
    counts = [c for c in COUNT_COLUMNS if c in table.columns and c not in values]
    keys = [c for c in table.columns if c not in set(values) | set(counts) | {"shots"}]
    parts = []
    for setting, ks in ((ZERO_SHOT, [0]), (FEW_SHOT, few)):
        sub = table[table["shots"].isin(ks)]
        if sub.empty or not few and setting == FEW_SHOT:
            continue
        per_k = sub.groupby(keys + ["shots"], sort=False, dropna=False)
        agg = per_k[list(values)].mean().groupby(level=keys, sort=False, dropna=False).mean()
        if counts:
            agg = agg.join(per_k[counts].sum().groupby(level=keys, sort=False, dropna=False).sum())
        agg = agg.reset_index()
        agg.insert(len(keys), "setting", setting)
        agg.insert(len(keys) + 1, "ks", ",".join(str(k) for k in ks))
        parts.append(agg)
    if not parts:
        raise ValueError(f"average_shots: the table has no k = 0 rows and few_shots is empty (shots {sorted(have)})")
    out = pd.concat(parts, ignore_index=True)
    extra = [c for c in ("feature", "layer", "example_id") if c in out.columns]
    return _sort(out[keys + ["setting", "ks"] + counts + list(values)], extra)


def first_correct_layer(df: pd.DataFrame) -> pd.DataFrame:
    """Per example: the first layer whose lens top-1 is the target, and whether the last layer is right.

    This is the "activated layer" of paper §3.2, and the exit layer of the oracle policy.

    Returns:
        One row per (model, task, group, shots, example_id) with ``num_layers``, ``first_correct``
        (float, 1..L, NaN if no layer's top-1 is the target) and ``final_correct`` (bool: the top-1
        at the example's last layer is the target).
    """
    _require(df, EXAMPLE_KEYS + ("layer", "num_layers", "top1_id", "target_id"), "first_correct_layer")
    _one_split(df, "first_correct_layer")
    keys = list(EXAMPLE_KEYS)
    work = df[keys + ["layer", "num_layers"]].assign(correct=_correct(df))
    grouped = work.groupby(keys, sort=False)
    out = grouped.agg(num_layers=("num_layers", "first"), last_layer=("layer", "max"))
    first = work[work["correct"]].groupby(keys, sort=False)["layer"].min()
    out["first_correct"] = first.reindex(out.index).astype(float)
    last_rows = work.loc[grouped["layer"].idxmax()].set_index(keys)
    out["final_correct"] = last_rows["correct"].reindex(out.index).astype(bool)
    out = out.drop(columns="last_layer").reset_index()
    return _sort(out, ["example_id"])


def activation_stats(df: pd.DataFrame) -> pd.DataFrame:
    """Paper §3.2 per (model, task, group, shots): how deep examples have to go.

    Returns:
        One row per run with columns

        - ``num_layers`` (L), ``n`` (examples), ``n_answered`` (examples whose top-1 is the
          target at some layer);
        - ``mean_first_correct``, ``var_first_correct`` (population variance), ``min_first_correct``
          of the first correct layer over the answered examples (NaN if none), and
          ``mean_first_correct_depth`` = mean / L;
        - ``frac_never_correct`` = 1 - n_answered / n;
        - ``final_accuracy``: accuracy of the last layer; ``max_accuracy``: best layer accuracy;
        - ``reach_final_layer``: the first layer whose accuracy is >= the final layer's ("accuracy
          matches that of the final layer by the 24th layer"; NaN when the final accuracy is 0);
          ``settle_layer``: the first layer from which every later layer is >= the final accuracy
          (robust to a lucky early layer; the two are equal when accuracy rises monotonically).
    """
    first = first_correct_layer(df)
    acc = layer_accuracy(df)
    keys = list(RUN_KEYS)
    answered = first.dropna(subset=["first_correct"])
    g_all = first.groupby(keys, sort=False)
    out = g_all.agg(num_layers=("num_layers", "first"), n=("example_id", "size"))
    g_ans = answered.groupby(keys, sort=False)["first_correct"]
    out["n_answered"] = g_ans.size().reindex(out.index).fillna(0).astype(np.int64)
    out["mean_first_correct"] = g_ans.mean().reindex(out.index)
    out["var_first_correct"] = g_ans.var(ddof=0).reindex(out.index)
    out["min_first_correct"] = g_ans.min().reindex(out.index)
    out["mean_first_correct_depth"] = out["mean_first_correct"] / out["num_layers"]
    out["frac_never_correct"] = 1.0 - out["n_answered"] / out["n"]
    reach, settle, final_acc, max_acc = {}, {}, {}, {}
    for key, run in acc.groupby(keys, sort=False):
        a = run.sort_values("layer")
        layers, accs = a["layer"].to_numpy(), a["accuracy"].to_numpy()
        final = accs[-1]
        final_acc[key], max_acc[key] = float(final), float(accs.max())
        if final <= 0:  # nothing to reach: the task is not answered at the last layer
            reach[key] = settle[key] = np.nan
            continue
        ok = accs >= final - 1e-12
        reach[key] = float(layers[np.argmax(ok)])
        bad = np.flatnonzero(~ok)  # settle: the layer after the last one below the final accuracy
        settle[key] = float(layers[bad[-1] + 1] if bad.size else layers[0])
    out["final_accuracy"] = pd.Series(final_acc).reindex(out.index)
    out["max_accuracy"] = pd.Series(max_acc).reindex(out.index)
    out["reach_final_layer"] = pd.Series(reach).reindex(out.index)
    out["settle_layer"] = pd.Series(settle).reindex(out.index)
    out["n"] = out["n"].astype(np.int64)
    return _sort(out.reset_index(), [])


def feature_profile(df: pd.DataFrame, features: Sequence[str] = BASE_FEATURES + COSINE_FEATURES) -> pd.DataFrame:
    """Mean and std of each feature per layer (paper Figures 3/4), long format.

    NaN values (e.g. the cosine with the previous layer at layer 1) are left out of the mean, the
    std and the count ``n``.

    Returns:
        One row per (model, task, group, shots, layer, feature) with ``num_layers``, ``depth``,
        ``n`` (non-missing values), ``mean`` and ``std`` (population std, ``ddof=0``; NaN when n = 0).
    """
    features = list(features)
    _require(df, RUN_KEYS + ("layer", "num_layers", *features), "feature_profile")
    _one_split(df, "feature_profile")
    keys = list(RUN_KEYS) + ["layer"]
    long = df[keys + ["num_layers"] + features].melt(id_vars=keys + ["num_layers"], value_vars=features,
                                                     var_name="feature", value_name="value")
    long["value"] = long["value"].astype(np.float64)
    g = long.groupby(keys + ["feature"], sort=False)
    out = g.agg(num_layers=("num_layers", "first"), n=("value", "count"), mean=("value", "mean"),
                std=("value", lambda v: v.std(ddof=0))).reset_index()
    out["n"] = out["n"].astype(np.int64)
    out["depth"] = out["layer"] / out["num_layers"]
    return _sort(out[keys + ["feature", "num_layers", "depth", "n", "mean", "std"]], ["feature", "layer"])


def paired_difference_ci(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95,
                         n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``mean(a) - mean(b)`` resampling the PAIRS (a_i, b_i).

    ``a``, ``b``: per-example scores on the same examples in the same order, e.g. 1.0 / 0.0 for
    correct / wrong of the full model and of a policy, shape (n,). With 40 test examples one example
    is 2.5 points; the interval says how far a measured drop could be from its expectation
    (:func:`scipy.stats.bootstrap`, ``paired=True``). Identical inputs give (0.0, 0.0)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"need two 1-D arrays of the same length >= 2, got shapes {x.shape} and {y.shape}")
    if np.array_equal(x, y):
        return 0.0, 0.0
    from scipy.stats import bootstrap

    res = bootstrap((x, y), lambda u, v, axis=-1: u.mean(axis=axis) - v.mean(axis=axis), paired=True,
                    vectorized=True, confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                    random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
