"""adainfer_lib.stats on a hand-built features frame: every number is checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from adainfer_lib.stats import (
    activation_stats,
    average_shots,
    feature_profile,
    first_correct_layer,
    layer_accuracy,
)

T = 7  # target token of every example

# (shots, example_id) -> top-1 token at layers 1..3 (L = 3); T means correct at that layer.
TOP1 = {
    (0, 0): [1, T, T],   # first correct 2, final correct
    (0, 1): [T, 2, T],   # first correct 1, final correct
    (0, 2): [3, 3, 3],   # never correct
    (0, 3): [4, 4, T],   # first correct 3, final correct
    (5, 0): [T, T, T],   # first correct 1
    (5, 1): [T, T, 5],   # first correct 1, final WRONG
}
# per-row gap values (used by feature_profile); cos_attn is NaN at layer 1 as in the real table
GAP = {(0, 0): [0.1, 0.5, 0.9], (0, 1): [0.3, 0.5, 0.7], (0, 2): [0.2, 0.2, 0.2], (0, 3): [0.2, 0.4, 1.0],
       (5, 0): [0.5, 0.6, 0.7], (5, 1): [0.1, 0.2, 0.3]}


def frame() -> pd.DataFrame:
    rows = []
    for (k, e), tops in TOP1.items():
        for layer, top in enumerate(tops, start=1):
            rows.append({"model": "m", "task": "sentiment", "group": "text_classification", "shots": k,
                         "example_id": e, "layer": layer, "num_layers": 3, "target_id": T, "top1_id": top,
                         "gap": GAP[(k, e)][layer - 1], "top_prob": 0.5,
                         "cos_attn": np.nan if layer == 1 else 0.1 * layer})
    # a second model, task order: it must come after "m" and keep its own L
    for layer, top in enumerate([0, 0, 0, T], start=1):
        rows.append({"model": "m2", "task": "mmlu", "group": "question_answering", "shots": 0, "example_id": 0,
                     "layer": layer, "num_layers": 4, "target_id": T, "top1_id": top, "gap": 0.0,
                     "top_prob": 1.0, "cos_attn": 0.0})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # order must not matter


def test_layer_accuracy_numbers():
    acc = layer_accuracy(frame())
    m0 = acc[(acc.model == "m") & (acc.shots == 0)]
    assert m0.layer.tolist() == [1, 2, 3]
    assert m0.n.tolist() == [4, 4, 4]
    assert m0.n_correct.tolist() == [1, 1, 3]
    assert m0.accuracy.tolist() == [0.25, 0.25, 0.75]
    assert m0.depth.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])
    m5 = acc[(acc.model == "m") & (acc.shots == 5)]
    assert m5.accuracy.tolist() == [1.0, 1.0, 0.5]
    m2 = acc[acc.model == "m2"]
    assert m2.accuracy.tolist() == [0.0, 0.0, 0.0, 1.0] and (m2.num_layers == 4).all()
    assert len(acc) == 3 + 3 + 4


def test_average_shots_settings():
    acc = layer_accuracy(frame())
    avg = average_shots(acc, few_shots=[5])
    m = avg[avg.model == "m"]
    zero, few = m[m.setting == "zero-shot"], m[m.setting == "few-shot"]
    assert zero.accuracy.tolist() == [0.25, 0.25, 0.75] and (zero.ks == "0").all()
    assert few.accuracy.tolist() == [1.0, 1.0, 0.5] and (few.ks == "5").all()
    assert few.n.tolist() == [2, 2, 2] and few.n_correct.tolist() == [2, 2, 1]
    assert "shots" not in avg.columns
    assert avg[avg.model == "m2"].setting.unique().tolist() == ["zero-shot"]  # m2 has no k=5 rows
    # zero-shot rows come before few-shot rows of the same model and task
    assert m.setting.tolist() == ["zero-shot"] * 3 + ["few-shot"] * 3


def test_average_shots_equal_weight_per_k():
    t = pd.DataFrame({"task": ["a"] * 3, "shots": [0, 5, 10], "n": [4, 2, 8], "accuracy": [0.1, 0.5, 1.0]})
    avg = average_shots(t, few_shots=(5, 10))
    few = avg[avg.setting == "few-shot"].iloc[0]
    assert few.accuracy == pytest.approx(0.75)  # mean over k, not weighted by n
    assert few.n == 10 and few.ks == "5,10"
    with pytest.raises(ValueError, match=r"k=\[20\]"):
        average_shots(t, few_shots=(5, 20))


def test_first_correct_layer_per_example():
    first = first_correct_layer(frame())
    m0 = first[(first.model == "m") & (first.shots == 0)].set_index("example_id")
    assert m0.first_correct.loc[[0, 1, 3]].tolist() == [2.0, 1.0, 3.0]
    assert math.isnan(m0.first_correct.loc[2])
    assert m0.final_correct.tolist() == [True, True, False, True]
    m5 = first[(first.model == "m") & (first.shots == 5)].set_index("example_id")
    assert m5.first_correct.tolist() == [1.0, 1.0] and m5.final_correct.tolist() == [True, False]
    assert first[first.model == "m2"].first_correct.tolist() == [4.0]
    assert len(first) == 7


def test_activation_stats_numbers():
    st = activation_stats(frame()).set_index(["model", "shots"])
    z = st.loc[("m", 0)]
    assert z.n == 4 and z.n_answered == 3
    assert z.mean_first_correct == pytest.approx(2.0)          # (2 + 1 + 3) / 3
    assert z.var_first_correct == pytest.approx(2 / 3)         # ((0)^2 + 1 + 1) / 3, ddof=0
    assert z.min_first_correct == 1.0
    assert z.mean_first_correct_depth == pytest.approx(2 / 3)
    assert z.frac_never_correct == pytest.approx(0.25)
    assert z.final_accuracy == 0.75 and z.max_accuracy == 0.75
    assert z.reach_final_layer == 3.0 and z.settle_layer == 3.0
    f = st.loc[("m", 5)]
    assert f.mean_first_correct == 1.0 and f.var_first_correct == 0.0 and f.frac_never_correct == 0.0
    assert f.final_accuracy == 0.5 and f.max_accuracy == 1.0
    assert f.reach_final_layer == 1.0 and f.settle_layer == 1.0  # layers 1, 2 already beat the final
    q = st.loc[("m2", 0)]
    assert q.mean_first_correct == 4.0 and q.reach_final_layer == 4.0 and q.num_layers == 4


def test_reach_and_settle_differ_on_a_lucky_early_layer():
    # accuracies per layer 1..4: 0.5, 0, 0, 0.5 -> reaches the final accuracy at 1, settles at 4
    rows = []
    for e, tops in enumerate([[T, 0, 0, 0], [0, 0, 0, T]]):
        for layer, top in enumerate(tops, start=1):
            rows.append({"model": "m", "task": "t", "group": "rule_understanding", "shots": 0, "example_id": e,
                         "layer": layer, "num_layers": 4, "target_id": T, "top1_id": top})
    st = activation_stats(pd.DataFrame(rows)).iloc[0]
    assert st.reach_final_layer == 1.0 and st.settle_layer == 4.0
    assert st.mean_first_correct == 2.5 and st.var_first_correct == 2.25


def test_reach_is_undefined_when_the_last_layer_is_never_right():
    rows = [{"model": "m", "task": "t", "group": "rule_understanding", "shots": 0, "example_id": 0, "layer": layer,
             "num_layers": 3, "target_id": T, "top1_id": top} for layer, top in enumerate([0, T, 0], start=1)]
    st = activation_stats(pd.DataFrame(rows)).iloc[0]
    assert st.final_accuracy == 0.0 and st.max_accuracy == 1.0 and st.mean_first_correct == 2.0
    assert math.isnan(st.reach_final_layer) and math.isnan(st.settle_layer)


def test_feature_profile_numbers():
    prof = feature_profile(frame(), features=("gap", "cos_attn"))
    g = prof[(prof.model == "m") & (prof.shots == 0) & (prof.feature == "gap")]
    assert g.layer.tolist() == [1, 2, 3]
    assert g["mean"].tolist() == pytest.approx([0.2, 0.4, 0.7])
    # layer 1 values 0.1, 0.3, 0.2, 0.2: population std = sqrt(0.005)
    assert g["std"].iloc[0] == pytest.approx(math.sqrt(0.005))
    c = prof[(prof.model == "m") & (prof.shots == 0) & (prof.feature == "cos_attn")]
    assert c.n.tolist() == [0, 4, 4] and math.isnan(c["mean"].iloc[0])
    assert c["mean"].iloc[1:].tolist() == pytest.approx([0.2, 0.3]) and c["std"].iloc[1] == pytest.approx(0.0)
    assert prof.feature.unique().tolist() == ["gap", "cos_attn"]  # requested order kept
    assert len(prof) == (3 * 2 + 4) * 2
    avg = average_shots(prof, few_shots=[5])
    few = avg[(avg.setting == "few-shot") & (avg.feature == "gap")]
    assert few["mean"].tolist() == pytest.approx([0.3, 0.4, 0.5])


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="top1_id"):
        layer_accuracy(frame().drop(columns="top1_id"))
    with pytest.raises(ValueError, match="empty"):
        activation_stats(frame().iloc[:0])
    mixed = frame().assign(split=["train", "test"] * (len(frame()) // 2))
    with pytest.raises(ValueError, match="mixes splits"):
        layer_accuracy(mixed)
    assert len(layer_accuracy(frame().assign(split="test"))) == 10


def test_save_figure_writes_png_pdf_csv(tmp_path, monkeypatch):
    from adainfer_lib.plots import plot_feature_profile, plot_layer_accuracy, save_figure

    monkeypatch.setenv("ADAINFER_FIGURES_DIR", str(tmp_path))
    acc = average_shots(layer_accuracy(frame()), few_shots=[5])
    paths = save_figure(plot_layer_accuracy(acc), "t_acc", acc)
    assert [p.name for p in paths] == ["t_acc.png", "t_acc.pdf", "t_acc.csv"]
    assert all(p.parent == tmp_path and p.stat().st_size > 0 for p in paths)
    assert len(pd.read_csv(paths[2])) == len(acc)
    prof = feature_profile(frame(), features=("gap", "cos_attn"))
    fig = plot_feature_profile(prof, features=("gap", "cos_attn"), x="depth")
    assert len(fig.axes) == 2 * 2 * 2  # (feature x shots) rows x models
    with pytest.raises(ValueError, match="bare file stem"):
        save_figure(fig, "figures/x.png", prof)


def test_paired_difference_ci():
    from adainfer_lib.stats import paired_difference_ci

    full = np.array([1, 1, 1, 1, 0, 0, 1, 1, 0, 1] * 4, dtype=float)
    assert paired_difference_ci(full, full) == (0.0, 0.0)
    worse = full.copy()
    worse[:4] = 0                                      # 4 of 40 examples lost: a drop of 10 points
    lo, hi = paired_difference_ci(full, worse, seed=1)
    assert 0 <= lo < 0.1 < hi <= 0.25                  # paired: the drop can never be negative here
    assert paired_difference_ci(full, worse, seed=1) == (lo, hi)   # seeded
    lo2, hi2 = paired_difference_ci(worse, full, seed=1)
    assert lo2 == pytest.approx(-hi) and hi2 == pytest.approx(-lo)
    with pytest.raises(ValueError, match="same length"):
        paired_difference_ci(full, full[:-1])
