"""Where the exit classifiers say "stop": decision regions over (top prob, gap) (paper §4.3).

:func:`decision_grid` evaluates each fitted policy on a grid of (top_prob, gap) points at selected
layers; :func:`plot_decision_regions` draws one panel per (layer, policy) with the training rows of
that layer on top, coloured by their label (1: the layer's top-1 is the target).

The approximation (a real exit decision at layer l depends on the whole prefix 1..l of an example):
every grid point is an example whose features are CONSTANT over layers 1..l, and we report the
policy's signal at layer l. For a per-layer classifier on (gap, top_prob) (the paper's SVM) this is
exact and the same at every layer; for the CRF, decoded online on the prefix 1..l, it shows what the
chain does when the features have been flat since layer 1, so the region can change with l through
the transition weights alone. Features other than gap and top_prob take their mean over the
training rows of layer l; ``top1_changed`` is 0 (a constant prefix never changes its top-1) and
``rel_depth`` is l / L.

Only the triangle ``max(0, 2 p1 - 1) <= gap <= p1`` is reachable (gap = p1 - p2 with p2 <= p1 and
p2 <= 1 - p1); the rest of the square is drawn grey and never evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .policies import make_labels

EXIT_COLOUR, STAY_COLOUR = "#b7e4c7", "#f1f1f1"       # region: policy exits / continues
LABEL_COLOURS = {1: "#1b7f3b", 0: "#c0392b"}          # training rows: top-1 correct / not
INFEASIBLE = "#bdbdbd"


def _feasible(top_prob: np.ndarray, gap: np.ndarray) -> np.ndarray:
    return (gap <= top_prob + 1e-12) & (gap >= np.maximum(0.0, 2 * top_prob - 1) - 1e-12)


def decision_grid(policies: dict, train_df: pd.DataFrame, layers: Sequence[int], *,
                  resolution: int = 81) -> pd.DataFrame:
    """Exit signal of every policy at each layer l in ``layers`` for a ``resolution`` x
    ``resolution`` grid of (top_prob, gap) in [0, 1]^2, under the constant-prefix approximation
    of the module docstring. ``train_df`` (one model's features) gives L and the fill values.

    Returns one row per (policy, layer, grid point): ``policy, layer, num_layers, top_prob, gap,
    feasible, exit`` (exit is NaN where the point is infeasible).
    """
    models = list(pd.unique(train_df["model"])) if "model" in train_df.columns else [None]
    if len(models) != 1:
        raise ValueError(f"decision regions need one model's features, got {models}")
    L = int(train_df["num_layers"].max())
    bad = [lay for lay in layers if not 1 <= int(lay) <= L]
    if bad:
        raise ValueError(f"layers {bad} outside 1..{L}")
    axis = np.linspace(0.0, 1.0, resolution)
    tp, gp = (a.ravel() for a in np.meshgrid(axis, axis))       # (resolution^2,)
    ok = _feasible(tp, gp)
    pts = np.flatnonzero(ok)
    out = []
    for layer in (int(x) for x in layers):
        means = train_df[train_df["layer"] == layer].mean(numeric_only=True)
        # a constant-feature prefix: example e = grid point, rows at layers 1..l
        frame = pd.DataFrame({"example_id": np.repeat(pts, layer), "layer": np.tile(np.arange(1, layer + 1), len(pts))})
        frame["num_layers"] = L
        frame["top_prob"] = tp[frame["example_id"]]
        frame["gap"] = gp[frame["example_id"]]
        frame["top1_id"] = 0
        frame["ans_top1_id"] = 0
        for name, policy in policies.items():
            for f in policy.feature_names():
                if f not in frame.columns and f in means.index:
                    frame[f] = float(means[f])
            signal = np.asarray(policy.predict(frame))[frame["layer"].to_numpy() == layer]
            exit_ = np.full(len(tp), np.nan)
            exit_[pts] = signal  # frame rows at layer l follow the order of pts
            out.append(pd.DataFrame({"policy": name, "layer": layer, "num_layers": L, "top_prob": tp, "gap": gp,
                                     "feasible": ok, "exit": exit_}))
    return pd.concat(out, ignore_index=True)


def plot_decision_regions(policies: dict, train_df: pd.DataFrame, layers: list[int], *,
                          grid: pd.DataFrame | None = None, max_points: int = 400, seed: int = 0,
                          title: str | None = None) -> Figure:
    """Decision regions of fitted exit ``policies`` (name -> policy) over (top prob, gap): one row
    of panels per layer in ``layers``, one column per policy; the training rows of that layer
    (at most ``max_points``, seeded sample) drawn on top, coloured by label ("correct").

    ``grid``: a :func:`decision_grid` result to draw (computed here if None), so a notebook can save
    the same numbers with the figure. CRF regions are online decisions on a constant-feature prefix
    (see the module docstring); the title says so.
    """
    grid = decision_grid(policies, train_df, layers) if grid is None else grid
    names = list(policies)
    L = int(train_df["num_layers"].max())
    labels = make_labels(train_df, "correct")
    rng = np.random.default_rng(seed)
    cmap = ListedColormap([STAY_COLOUR, EXIT_COLOUR])
    with sns.axes_style("white"):
        fig = Figure(figsize=(3.1 * len(names) + 0.6, 2.9 * len(layers) + 1.4), layout="constrained")
        axes = fig.subplots(len(layers), len(names), squeeze=False, sharex=True, sharey=True)
        for i, layer in enumerate(layers):
            at = np.flatnonzero(train_df["layer"].to_numpy() == layer)
            show = rng.choice(at, size=min(max_points, len(at)), replace=False) if len(at) else at
            pos = labels[at].mean() if len(at) else float("nan")
            for j, name in enumerate(names):
                ax = axes[i][j]
                ax.set_facecolor(INFEASIBLE)
                g = grid[(grid["policy"] == name) & (grid["layer"] == layer)]
                n = int(round(np.sqrt(len(g))))
                z = g["exit"].to_numpy().reshape(n, n)                     # rows: gap, cols: top_prob
                ax.pcolormesh(g["top_prob"].to_numpy().reshape(n, n), g["gap"].to_numpy().reshape(n, n),
                              np.ma.masked_invalid(z), cmap=cmap, vmin=0, vmax=1, shading="nearest")
                for lab in (0, 1):
                    rows = show[labels[show] == lab]
                    ax.scatter(train_df["top_prob"].to_numpy()[rows], train_df["gap"].to_numpy()[rows],
                               s=9 if lab else 12, c=LABEL_COLOURS[lab], alpha=0.7,
                               linewidths=0 if lab else 0.8, marker="o" if lab else "x")
                area = np.nanmean(z) if np.isfinite(z).any() else float("nan")
                ax.set_title(f"{name} · layer {layer}/{L}\nexits on {100 * area:.0f}% of reachable area", fontsize=9)
                ax.set_xlim(0, 1)
                ax.set_ylim(0, 1)
                if i == len(layers) - 1:
                    ax.set_xlabel("top prob = p(top1)")
                if j == 0:
                    ax.set_ylabel(f"gap = p1 - p2\n(label 1 at layer {layer}: {100 * pos:.0f}%)")
        handles = [Patch(color=EXIT_COLOUR, label="policy exits"), Patch(color=STAY_COLOUR, label="policy continues"),
                   Patch(color=INFEASIBLE, label="unreachable"),
                   Line2D([], [], ls="", marker="o", color=LABEL_COLOURS[1], label="train row, top-1 correct (1)"),
                   Line2D([], [], ls="", marker="x", color=LABEL_COLOURS[0], label="train row, top-1 wrong (0)")]
        fig.legend(handles=handles, loc="outside lower center", ncols=5, frameon=False, fontsize=8)
        model = train_df["model"].iloc[0] if "model" in train_df.columns and len(train_df) else "?"
        fig.suptitle(title or f"Exit decision regions, {model} (CRF: online decision at layer l for features "
                              f"held constant over layers 1..l)", fontsize=11)
    return fig
