"""Figures of the paper (Figure 1, Figures 3/4) drawn from the tables of :mod:`stats`.

Every ``plot_*`` function takes a stats table and returns a :class:`matplotlib.figure.Figure`; it
only reshapes (filters, pivots) and never computes statistics. Figures are built with the
object-oriented API (``Figure(...)``, not ``pyplot``), so no GUI backend or global pyplot state is
touched and nothing is drawn twice or left open. Hand the figure to :func:`save_figure`, which
writes the PNG, the PDF and the CSV of the numbers behind it; a notebook then shows the saved PNG
(``IPython.display.Image``), i.e. exactly the file a reader will find in ``figures/``.

Line styles follow the paper's Figure 1 by task group: solid for text classification
(sentiment-like), dashed for question answering (MMLU-like), thinner dotted-dashed lines for
rule-understanding tasks. Each task keeps one colour across all panels and figures.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .paths import figures_dir

GROUP_STYLE: dict[str, dict] = {
    "text_classification": {"linestyle": "-", "linewidth": 2.2, "alpha": 1.0},
    "question_answering": {"linestyle": "--", "linewidth": 2.2, "alpha": 1.0},
    "rule_understanding": {"linestyle": "-.", "linewidth": 1.2, "alpha": 0.85},
}
GROUP_LABEL: dict[str, str] = {
    "text_classification": "classification (solid)",
    "question_answering": "QA (dashed)",
    "rule_understanding": "rule (thin)",
}
FEATURE_LABEL: dict[str, str] = {
    "gap": "gap = p(top1) - p(top2)",
    "top_prob": "top prob = p(top1)",
    "cos_attn": "cos(attn_l, attn_l-1)",
    "cos_mlp": "cos(mlp_l, mlp_l-1)",
    "cos_hidden": "cos(h_l, h_l-1)",
}
PROBABILITY_FEATURES = ("gap", "top_prob", "target_prob", "ans_gap", "ans_top_prob")  # drawn on [0, 1]
X_LABEL = {"layer": "layer", "depth": "relative depth (layer / L)"}
_RC = {"axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
       "legend.fontsize": 8, "figure.titlesize": 12}


def save_figure(fig: Figure, name: str, data: pd.DataFrame) -> list[Path]:
    """Write ``figures/<name>.png`` (dpi 150), ``<name>.pdf`` and the numbers as ``<name>.csv``.

    The figure is closed afterwards. Returns the three paths (in that order).
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.endswith((".png", ".pdf", ".csv")):
        raise ValueError(f"figure name {name!r}: use a bare file stem such as '01_layer_accuracy' "
                         f"(letters, digits, '_', '-', '.'; no folder, no suffix)")
    folder = figures_dir()
    paths = [folder / f"{name}.png", folder / f"{name}.pdf", folder / f"{name}.csv"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    data.to_csv(paths[2], index=False)
    plt.close(fig)  # no-op for figures not managed by pyplot
    return paths


def _ordered(values: pd.Series, wanted: Sequence | None = None, what: str | None = None) -> list:
    """Unique values in order of first appearance, or ``wanted`` (checked) if given."""
    have = list(pd.unique(values))
    if wanted is None:
        return have
    missing = [w for w in wanted if w not in have]
    if missing:
        raise ValueError(f"{what or values.name} {missing} not in the table (it has {have})")
    return list(wanted)


def _task_styles(table: pd.DataFrame) -> dict[str, dict]:
    """Matplotlib line kwargs per task: colour by task (stable order), style by group."""
    tasks = _ordered(table["task"])
    group_of = table.drop_duplicates("task").set_index("task")["group"].to_dict()
    colours = sns.color_palette("tab10" if len(tasks) <= 10 else "tab20", len(tasks))
    return {t: {"color": colours[i], **GROUP_STYLE.get(group_of.get(t), GROUP_STYLE["rule_understanding"])}
            for i, t in enumerate(tasks)}


def _legend_handles(table: pd.DataFrame, styles: dict[str, dict]) -> list[Line2D]:
    group_of = table.drop_duplicates("task").set_index("task")["group"].to_dict()
    return [Line2D([], [], label=f"{t}  [{GROUP_LABEL.get(group_of[t], group_of[t])}]", **s)
            for t, s in styles.items()]


def _legend_columns(styles: dict[str, dict]) -> int:
    """4 columns for short task names, 3 for long ones (builtin_*), so the legend fits the panels."""
    return min(4 if max(len(t) for t in styles) <= 20 else 3, len(styles))


def _grid(nrows: int, ncols: int, width: float, height: float) -> tuple[Figure, list[list]]:
    fig = Figure(figsize=(max(width * ncols, 7.5), height * nrows + 1.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex="col", sharey="row")
    return fig, axes


def plot_layer_accuracy(table: pd.DataFrame, *, x: str = "layer", models: Sequence[str] | None = None,
                        settings: Sequence[str] | None = None, final_marker: bool = True,
                        title: str | None = None) -> Figure:
    """Paper Figure 1: lens top-1 accuracy of every layer, one panel per (setting, model).

    Args:
        table: :func:`stats.layer_accuracy` (panels per ``shots``, labelled "k = ...") or its
            :func:`stats.average_shots` (panels per ``setting``: zero-shot / few-shot).
        x: ``"layer"`` (1..L) or ``"depth"`` (layer / L, to compare models of different depth).
        models, settings: which panels, in which order (default: all, in table order).
        final_marker: mark each task's final-layer accuracy with a dot at the last layer.
    """
    if x not in X_LABEL:
        raise ValueError(f"x={x!r}: use 'layer' or 'depth'")
    row_col = "setting" if "setting" in table.columns else "shots"
    models = _ordered(table["model"], models)
    rows = _ordered(table[row_col], settings)
    styles = _task_styles(table)
    with sns.axes_style("whitegrid"), plt.rc_context(_RC):
        fig, axes = _grid(len(rows), len(models), 4.2, 2.9)
        for i, row in enumerate(rows):
            for j, model in enumerate(models):
                ax = axes[i][j]
                sub = table[(table[row_col] == row) & (table["model"] == model)]
                for task, style in styles.items():
                    line = sub[sub["task"] == task].sort_values("layer")
                    if line.empty:
                        continue
                    ax.plot(line[x], line["accuracy"], **style)
                    if final_marker:
                        ax.plot(line[x].iloc[-1], line["accuracy"].iloc[-1], "o", ms=4, color=style["color"])
                n_layers = int(sub["num_layers"].max()) if not sub.empty else 0
                label = f"k = {row}" if row_col == "shots" else f"{row}"
                if "ks" in sub.columns and row != "zero-shot" and not sub.empty:
                    label += f" (k = {sub['ks'].iloc[0]})"
                ax.set_title(f"{model} (L = {n_layers}) · {label}")
                ax.set_ylim(-0.03, 1.03)
                if x == "layer" and n_layers:
                    ax.set_xlim(0.5, n_layers + 0.5)
                if i == len(rows) - 1:
                    ax.set_xlabel(X_LABEL[x])
                if j == 0:
                    ax.set_ylabel("top-1 accuracy of the layer")
        fig.legend(handles=_legend_handles(table, styles), loc="outside lower center",
                   ncols=_legend_columns(styles), title="task [group]", frameon=False)
        fig.suptitle(title or "Accuracy of each layer's logit-lens prediction (paper Fig. 1)")
    return fig


def plot_feature_profile(profile: pd.DataFrame, *, features: Sequence[str] = ("gap", "top_prob"),
                         x: str = "layer", models: Sequence[str] | None = None,
                         shots: Sequence | None = None, band: bool = False,
                         title: str | None = None) -> Figure:
    """Paper Figures 3/4: mean of each feature per layer, one line per task, one column per model.

    Args:
        profile: :func:`stats.feature_profile` (rows per ``shots``) or its
            :func:`stats.average_shots` (rows per ``setting``).
        features: one row of panels per (feature, shots or setting), in this order.
        x: ``"layer"`` or ``"depth"`` (layer / L).
        models: columns of panels (default: all, in table order).
        shots: which ``shots`` (or ``setting``) values to draw (default: all).
        band: shade mean +- std (busy with many tasks; off by default).
    """
    if x not in X_LABEL:
        raise ValueError(f"x={x!r}: use 'layer' or 'depth'")
    row_col = "setting" if "setting" in profile.columns else "shots"
    features = _ordered(profile["feature"], features)
    models = _ordered(profile["model"], models)
    settings = _ordered(profile[row_col], shots)
    rows = [(f, s) for f in features for s in settings]
    styles = _task_styles(profile)
    with sns.axes_style("whitegrid"), plt.rc_context(_RC):
        fig, axes = _grid(len(rows), len(models), 4.2, 2.4)
        for i, (feature, setting) in enumerate(rows):
            for j, model in enumerate(models):
                ax = axes[i][j]
                sub = profile[(profile["feature"] == feature) & (profile[row_col] == setting)
                              & (profile["model"] == model)]
                for task, style in styles.items():
                    line = sub[sub["task"] == task].sort_values("layer")
                    if line.empty:
                        continue
                    ax.plot(line[x], line["mean"], **style)
                    if band:
                        ax.fill_between(line[x], line["mean"] - line["std"], line["mean"] + line["std"],
                                        color=style["color"], alpha=0.12, linewidth=0)
                n_layers = int(sub["num_layers"].max()) if not sub.empty else 0
                label = f"k = {setting}" if row_col == "shots" else str(setting)
                ax.set_title(f"{model} (L = {n_layers}) · {label}")
                if feature in PROBABILITY_FEATURES:
                    ax.set_ylim(-0.03, 1.03)
                if j == 0:
                    ax.set_ylabel(FEATURE_LABEL.get(feature, feature))
                if i == len(rows) - 1:
                    ax.set_xlabel(X_LABEL[x])
                if x == "layer" and n_layers:
                    ax.set_xlim(0.5, n_layers + 0.5)
        fig.legend(handles=_legend_handles(profile, styles), loc="outside lower center",
                   ncols=_legend_columns(styles), title="task [group]", frameon=False)
        fig.suptitle(title or "Mean feature value per layer (paper Figs. 3/4)")
    return fig
