"""Accuracy-vs-FLOPs trade-off curves of the exit policies (paper §5.4, Table 4, Eq. 2).

The paper fixes the rule's threshold (exit when gap > 0.8) and reports one point per task. Here the
threshold is swept, giving a curve of (FLOPs ratio, accuracy) points to compare with two reference
curves that need no classifier:

- :func:`threshold_sweep`: the rule policy (:class:`policies.RulePolicy`) at every threshold;
- :func:`static_sweep`: always exit at layer d, for d = 1..L (static pruning of the top layers);
- :func:`oracle_point`: exit at the first layer whose top-1 is the target (reads the answer: the
  ceiling, not a policy);
- :func:`policy_points`: any fitted policies (SVM, CRF, ...) as single points;
- :func:`compare_to_static`: each point's accuracy minus the static curve's at the same FLOPs.

All four return the same tidy table, one row per (group, method, param) with the columns of
:data:`POINT_COLUMNS`; concatenate them and draw with :func:`plot_pareto`. Scoring goes through
:func:`experiments.score`, so accuracies are fractions in [0, 1] and both FLOPs ratios (paper Eq. 2
and the honest count of :mod:`flops`, which charges every lens check an adaptive policy makes) are
fractions of the full model. ``test_df`` is the features table of :mod:`features` (one row per
(example, layer)); ``config`` is the model's Hugging Face config (or any object with the attributes
:func:`arch.model_dims` reads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .experiments import score
from .policies import OraclePolicy, RulePolicy, StaticDepthPolicy, _Policy, make_labels

#: Metric columns of every row (after the ``by`` columns, ``method`` and ``param``).
POINT_COLUMNS: tuple[str, ...] = ("n", "accuracy", "mean_exit_layer", "exit_layer_variance", "num_layers",
                                  "flops_ratio_paper", "flops_ratio_honest")
FLOPS_LABEL: dict[str, str] = {
    "flops_ratio_paper": "FLOPs ratio, paper Eq. 2 (% of full model)",
    "flops_ratio_honest": "FLOPs ratio, honest count incl. lens checks (%)",
}
#: Drawing style per method (others get a large marker from the tab10 palette).
_STYLE: dict[str, dict] = {
    "rule": {"color": "tab:blue", "marker": "o", "linestyle": "-", "markersize": 4, "linewidth": 1.6},
    "static": {"color": "0.45", "marker": ".", "linestyle": "--", "markersize": 5, "linewidth": 1.2},
    "oracle": {"color": "gold", "marker": "*", "linestyle": "none", "markersize": 15,
               "markeredgecolor": "black", "markeredgewidth": 0.7},
}
_POINT_MARKERS = ("D", "s", "^", "v", "P", "X", "h")


def _blocks(test_df: pd.DataFrame, by: Sequence[str]):
    """(key dict, block) per group of ``by`` (the whole frame when ``by`` is empty)."""
    if test_df.empty:
        raise ValueError("the features table is empty: nothing to score")
    by = list(by)
    missing = [c for c in by if c not in test_df.columns]
    if missing:
        raise ValueError(f"group column(s) {missing} not in the features table")
    if not by:
        yield {}, test_df
        return
    for key, block in test_df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(by, key)), block


def _points(test_df: pd.DataFrame, config, by: Sequence[str], method: str,
            policies: Sequence[tuple[float, object]]) -> pd.DataFrame:
    rows = []
    for key, block in _blocks(test_df, by):
        for param, policy in policies:
            summary, _ = score(policy, block, config)
            rows.append({**key, "method": method, "param": float(param),
                         **{c: summary[c] for c in POINT_COLUMNS}})
    return pd.DataFrame(rows, columns=[*by, "method", "param", *POINT_COLUMNS])


def threshold_sweep(test_df: pd.DataFrame, thresholds: Sequence[float], config, feature: str = "gap",
                    by: Sequence[str] = ()) -> pd.DataFrame:
    """The rule policy "exit at the first layer where ``feature`` > t" for every t in ``thresholds``.

    Returns one row per (``by`` group, threshold): ``method`` = "rule", ``param`` = t and
    :data:`POINT_COLUMNS`. Higher thresholds exit later: accuracy and FLOPs typically rise with t.
    """
    if len(thresholds) == 0:
        raise ValueError("thresholds is empty: give at least one value, e.g. [0.5, 0.8, 0.95]")
    pols = [(float(t), RulePolicy(threshold=float(t), feature=feature)) for t in thresholds]
    return _points(test_df, config, by, "rule", pols)


def static_sweep(test_df: pd.DataFrame, config, by: Sequence[str] = ()) -> pd.DataFrame:
    """Static depth: always exit at layer d, for d = 1..L (L = the frame's ``num_layers``).

    ``method`` = "static", ``param`` = d. d = L is the full model (FLOPs ratio 1 in both counts).
    """
    n_layers = test_df["num_layers"].unique()
    if len(n_layers) != 1:
        raise ValueError(f"static_sweep needs one model depth per call, got num_layers {sorted(n_layers)}")
    depths = range(1, int(n_layers[0]) + 1)
    return _points(test_df, config, by, "static", [(d, StaticDepthPolicy(depth=d)) for d in depths])


def oracle_point(test_df: pd.DataFrame, config, by: Sequence[str] = ()) -> pd.DataFrame:
    """The oracle exit (first layer whose top-1 is the target, else L): ``method`` = "oracle".

    Its accuracy is the share of examples answered at ANY layer, the ceiling of every policy."""
    return _points(test_df, config, by, "oracle", [(np.nan, OraclePolicy())])


def policy_points(policies: Mapping[str, object], test_df: pd.DataFrame, config,
                  by: Sequence[str] = ()) -> pd.DataFrame:
    """One point per fitted policy, ``method`` = its key in ``policies`` (e.g. "svm", "crf")."""
    frames = [_points(test_df, config, by, name, [(np.nan, pol)]) for name, pol in policies.items()]
    return pd.concat(frames, ignore_index=True)


def interpolate_accuracy(curve: pd.DataFrame, flops_ratio: float, flops: str = "flops_ratio_paper") -> float:
    """Accuracy of a curve (e.g. the static-depth one) at a given FLOPs ratio, linear between its
    points and clamped at its ends. Used to ask: at the cost of a policy, what would simply
    stopping at a fixed depth have scored?"""
    if curve.empty:
        raise ValueError("interpolate_accuracy: the curve has no points")
    c = curve.sort_values(flops)
    return float(np.interp(flops_ratio, c[flops].to_numpy(float), c["accuracy"].to_numpy(float)))


def compare_to_static(curves: pd.DataFrame, by: Sequence[str] = (), flops: str = "flops_ratio_paper") -> pd.DataFrame:
    """Every non-static row of ``curves`` with ``static_accuracy``: the static-depth curve's accuracy
    (same ``by`` group) at the row's FLOPs ratio (:func:`interpolate_accuracy`), and ``gain_vs_static``
    = accuracy - static_accuracy. Positive gain: the adaptive exit beats stopping every example at
    one fixed depth of the same average cost."""
    by = list(by)
    rows = []
    groups = curves.groupby(by, sort=False) if by else [((), curves)]
    for _, block in groups:
        static = block[block["method"] == "static"]
        if static.empty:
            raise ValueError("compare_to_static: a group has no static-depth curve (run static_sweep with the same by)")
        rest = block[block["method"] != "static"].copy()
        rest["static_accuracy"] = [interpolate_accuracy(static, f, flops) for f in rest[flops]]
        rows.append(rest)
    out = pd.concat(rows, ignore_index=True)
    out["gain_vs_static"] = out["accuracy"] - out["static_accuracy"]
    return out


def _label_spots(x: np.ndarray, y: np.ndarray, params: np.ndarray, dx: float = 2.5,
                 dy: float = 0.04) -> list[tuple[float, float, list[float]]]:
    """Group labelled points (in threshold order) lying within (dx, dy) of a group's first point, so
    that nearby thresholds share one label instead of overprinting: [(x, y, [thresholds])]."""
    spots: list[tuple[float, float, list[float]]] = []
    for i in np.argsort(params, kind="stable"):
        near = [s for s in spots if abs(s[0] - x[i]) <= dx and abs(s[1] - y[i]) <= dy]
        if near:
            near[0][2].append(float(params[i]))
        else:
            spots.append((float(x[i]), float(y[i]), [float(params[i])]))
    return spots


def plot_pareto(curves: pd.DataFrame, *, flops: Sequence[str] = ("flops_ratio_paper",),
                panels: Sequence[str] = ("task",), order: Sequence[tuple] | None = None,
                label_params: Sequence[float] = (0.5, 0.8, 0.95), title: str | None = None) -> Figure:
    """Accuracy vs FLOPs ratio: the rule's threshold curve, the static-depth curve, the oracle
    point and one marker per other method (SVM, CRF, ...), one panel per value of ``panels``.

    Args:
        curves: rows of :func:`threshold_sweep`, :func:`static_sweep`, :func:`oracle_point` and
            :func:`policy_points` concatenated (columns ``method``, ``param``, ``accuracy`` and the
            ``flops`` columns, plus the ``panels`` columns).
        flops: one row of panels per FLOPs measure ("flops_ratio_paper", "flops_ratio_honest").
        panels: columns whose values make the columns of panels (e.g. ("task", "setting")).
        order: the panels' keys (tuples of ``panels`` values) in drawing order; default: order of
            first appearance in ``curves``.
        label_params: thresholds of the rule curve written next to their points (thresholds
            landing on the same point share one label).
    """
    panels = list(panels)
    missing = [c for c in [*panels, "method", "param", "accuracy", *flops] if c not in curves.columns]
    if missing:
        raise ValueError(f"plot_pareto: the table lacks column(s) {missing}")
    keys = list(curves[panels].drop_duplicates().itertuples(index=False, name=None)) if panels else [()]
    if order is not None:
        unknown = [tuple(k) for k in order if tuple(k) not in keys]
        if unknown:
            raise ValueError(f"plot_pareto: panels {unknown} are not in the table (it has {keys})")
        keys = [tuple(k) for k in order]
    others = [m for m in pd.unique(curves["method"]) if m not in _STYLE]
    palette = [sns.color_palette("tab10", 10)[k] for k in (3, 2, 4, 1, 6, 5, 9)]  # not rule's blue
    point_style = {m: {"color": palette[i % 7], "marker": _POINT_MARKERS[i % 7],
                       "linestyle": "none", "markersize": 9, "markeredgecolor": "black",
                       "markeredgewidth": 0.6} for i, m in enumerate(others)}
    labels = {"rule": "rule: gap > t (t swept)", "static": "static depth d = 1..L", "oracle": "oracle (reads answer)"}
    rc = {"axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
          "legend.fontsize": 8}
    with sns.axes_style("whitegrid"), plt.rc_context(rc):
        fig = Figure(figsize=(max(3.6 * len(keys), 6.5), 3.3 * len(flops) + 1.2), layout="constrained")
        axes = fig.subplots(len(flops), len(keys), squeeze=False, sharey=True)
        for i, fl in enumerate(flops):
            for j, key in enumerate(keys):
                ax = axes[i][j]
                sub = curves
                for col, val in zip(panels, key):
                    sub = sub[sub[col] == val]
                for method in pd.unique(sub["method"]):
                    pts = sub[sub["method"] == method].sort_values(fl if method == "static" else "param")
                    style = _STYLE.get(method) or point_style[method]
                    ax.plot(100 * pts[fl], pts["accuracy"], label=labels.get(method, method), **style)
                    if method == "rule":
                        marked = pts[np.isclose(pts["param"].to_numpy()[:, None],
                                                np.asarray(label_params)[None, :]).any(axis=1)]
                        span = 100 * float(sub[fl].max() - sub[fl].min()) or 1.0  # labels ~8% of the x range apart
                        spots = _label_spots(100 * marked[fl].to_numpy(float), marked["accuracy"].to_numpy(float),
                                             marked["param"].to_numpy(float), dx=0.08 * span)
                        for k, (x, y, ts) in enumerate(spots):  # alternate heights so neighbours do not overprint
                            ax.annotate("t=" + ",".join(f"{t:g}" for t in ts), (x, y), fontsize=7,
                                        xytext=(4, 5 + 9 * (k % 2)), textcoords="offset points", color=style["color"])
                ax.axhline(sub.loc[sub["method"] == "static", "accuracy"].iloc[-1]
                           if (sub["method"] == "static").any() else np.nan, color="0.7", lw=0.8, ls=":")
                ax.set_title(" · ".join(str(v) for v in key) if key else "all")
                ax.set_ylim(-0.03, 1.03)
                ax.set_xlabel(FLOPS_LABEL.get(fl, fl))
                if j == 0:
                    ax.set_ylabel("accuracy")
        handles, labs = [], []
        for ax in np.ravel(axes):
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labs:
                    handles.append(h)
                    labs.append(lab)
        fig.legend(handles, labs, loc="outside lower center", ncols=min(5, len(labs)), frameon=False)
        fig.suptitle(title or "Accuracy vs FLOPs of exit policies (dotted: full model)")
    return fig


# ----------------------------------------------------------------------------- oracle references (notebook 08)
class NoLossOraclePolicy(_Policy):
    """Exit every example as early as possible without turning a right full-model answer wrong:
    at the first layer whose top-1 is the target when the last layer's is, else at layer 1 (the
    full model is wrong there anyway). Reads the answer AND layer L: a reference for simulations
    only (raises on frames lacking an example's layer L, such as the engine's prefixes).

    :class:`policies.OraclePolicy` runs all L layers on examples no layer gets right, so on a weak
    model a policy that stops early on those can "save more than the oracle"; this reference does
    not have that blind spot (though with an accuracy slack a policy can still beat it)."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        correct = make_labels(X, "correct").astype(float)
        at_last = np.where(X["layer"].to_numpy() == X["num_layers"].to_numpy(), correct, np.nan)
        keys = [k for k in ("model", "task", "split", "shots", "example_id") if k in X.columns]
        final_ok = pd.Series(at_last, index=X.index).groupby([X[k] for k in keys], sort=False).transform("max")
        if final_ok.isna().any():
            raise ValueError("NoLossOraclePolicy needs every example's row at layer L = num_layers")
        return np.where(final_ok.to_numpy() == 1.0, correct, 1.0).astype(int)


def _references(pts: pd.DataFrame, by: list[str], full: str, oracle: str) -> pd.DataFrame:
    """Per ``by`` group: the ``full`` method's accuracy and the ``oracle`` method's savings (columns
    ``full_accuracy``, ``oracle_savings``); ValueError when a group lacks either row."""
    full_acc = pts[pts["method"] == full].groupby(by)["accuracy"].first().rename("full_accuracy")
    oracle_sav = pts[pts["method"] == oracle].groupby(by)["savings"].first().rename("oracle_savings")
    ref = pd.concat([full_acc, oracle_sav], axis=1)
    if len(ref.dropna()) != len(pts[by].drop_duplicates()):
        raise ValueError(f"points need a {full!r} and an {oracle!r} row for every group of {by}")
    return ref.reset_index()


def oracle_fraction(points: pd.DataFrame, by: Sequence[str] = ("task",), max_drop: float = 0.01,
                    full: str = "full", oracle: str = "oracle") -> pd.DataFrame:
    """What fraction of the oracle's layer savings each method reaches within ``max_drop`` of the
    full model's accuracy.

    ``points``: one row per (``by`` group, method, param) with ``accuracy`` (0-1),
    ``mean_exit_layer`` and ``num_layers``, including a ``full`` and an ``oracle`` row per group.
    Savings = 1 - mean_exit_layer / L. Per (group, method): the point of largest savings among those
    with accuracy >= full - max_drop; ``fraction`` = its savings / the oracle's (NaN when no point
    qualifies or the oracle saves nothing). Columns: by..., method, param, accuracy, drop,
    savings, oracle_savings, fraction, within (a point qualified)."""
    by = list(by)
    pts = points.assign(savings=1 - points["mean_exit_layer"] / points["num_layers"])
    pts = pts.merge(_references(pts, by, full, oracle), on=by, how="left")
    pts["drop"] = pts["full_accuracy"] - pts["accuracy"]
    ok = pts[pts["drop"] <= max_drop + 1e-9]
    best = ok.sort_values("savings", ascending=False, kind="stable").groupby(by + ["method"], sort=False).head(1)
    allm = pts[by + ["method", "oracle_savings"]].drop_duplicates(by + ["method"])
    out = allm.merge(best[by + ["method", "param", "accuracy", "drop", "savings"]], on=by + ["method"], how="left")
    out["within"] = out["savings"].notna()
    out["fraction"] = np.where(out["oracle_savings"] > 0, out["savings"] / out["oracle_savings"], np.nan)
    cols = by + ["method", "param", "accuracy", "drop", "savings", "oracle_savings", "fraction", "within"]
    return out[cols].sort_values(by + ["fraction"], ascending=[True] * len(by) + [False]).reset_index(drop=True)


def select_then_test(selection: pd.DataFrame, test: pd.DataFrame, candidates: Sequence[str],
                     by: Sequence[str] = ("task",), max_drop: float = 0.01, full: str = "full",
                     oracle: str = "oracle") -> pd.DataFrame:
    """Choose ONE method per group on the selection split, then report it on the test split.

    Picking the best of many candidates by their test scores is itself fitting to the test split
    (with 40 test examples and ~30 candidates the winner's margin is mostly luck). Here the choice is
    made on ``selection`` (e.g. the calibration split): among ``candidates`` (single-point methods;
    not curves), the one with the largest savings whose accuracy is within ``max_drop`` of the full
    model there (:func:`oracle_fraction`); ties keep the earlier candidate. Its ``test`` row is then
    reported whatever it shows. Both frames: one row per (``by`` group, method) with ``accuracy``,
    ``mean_exit_layer``, ``num_layers``, plus ``full`` and ``oracle`` rows per group.

    Returns one row per group: ``chosen`` (NaN when no candidate qualifies on the selection split:
    the full model is used), ``selection_accuracy``, ``selection_savings``, and on the test split
    ``full_accuracy``, ``accuracy``, ``drop`` (full minus chosen), ``savings``, ``oracle_savings``,
    ``fraction`` (savings / oracle savings; 0 when nothing was chosen)."""
    by = list(by)
    dup = test.duplicated(by + ["method"]) | selection.duplicated(by + ["method"])
    if dup.any():
        raise ValueError("select_then_test needs one row per (group, method) in both frames (no curves)")
    if "param" not in selection.columns:
        selection = selection.assign(param=np.nan)
    sel = oracle_fraction(selection, by, max_drop, full, oracle)
    sel = sel[sel["method"].isin(list(candidates)) & sel["within"]]
    order = {m: i for i, m in enumerate(candidates)}
    sel = sel.assign(_o=sel["method"].map(order)).sort_values(["savings", "_o"], ascending=[False, True],
                                                               kind="stable").drop_duplicates(by)
    pts = test.assign(savings=1 - test["mean_exit_layer"] / test["num_layers"])
    out = _references(pts, by, full, oracle).merge(sel[by + ["method", "accuracy", "savings"]].rename(columns={
        "method": "chosen", "accuracy": "selection_accuracy", "savings": "selection_savings"}), on=by, how="left")
    picked = pts[by + ["method", "accuracy", "savings"]].rename(columns={"method": "chosen"})
    out = out.merge(picked, on=by + ["chosen"], how="left")
    none = out["chosen"].isna()
    out.loc[none, "accuracy"] = out.loc[none, "full_accuracy"]
    out.loc[none, "savings"] = 0.0
    if out["accuracy"].isna().any():
        raise ValueError("a chosen method has no test row")
    out["drop"] = out["full_accuracy"] - out["accuracy"]
    out["fraction"] = np.where(out["oracle_savings"] > 0, out["savings"] / out["oracle_savings"], 0.0)
    return out[by + ["chosen", "selection_accuracy", "selection_savings", "full_accuracy", "accuracy", "drop",
                     "savings", "oracle_savings", "fraction"]]
