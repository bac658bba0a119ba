"""Threshold / static-depth / oracle sweeps and the Pareto figure on synthetic features frames."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from adainfer_lib.flops import paper_flops_ratio
from adainfer_lib.policies import FullModelPolicy, RulePolicy
from adainfer_lib.sweeps import (
    POINT_COLUMNS,
    compare_to_static,
    interpolate_accuracy,
    oracle_fraction,
    oracle_point,
    plot_pareto,
    policy_points,
    select_then_test,
    static_sweep,
    threshold_sweep,
)

L = 8
H, V = 64, 1000
# the attributes arch.model_dims reads (llama: gated MLP, GQA)
CONFIG = SimpleNamespace(model_type="llama", hidden_size=H, num_hidden_layers=L, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=128, vocab_size=V)


def synth_frame(n: int = 60, seed: int = 0, task: str = "sentiment", shots: int = 0) -> pd.DataFrame:
    """n examples x L layers: the target becomes top-1 at a random layer k (> L: never) and stays;
    gap rises with depth and jumps when the answer appears."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n):
        k = int(rng.integers(2, L + 3))
        target = int(rng.integers(100, 200))
        for layer in range(1, L + 1):
            correct = layer >= k
            gap = float(np.clip(0.08 * layer + (0.35 if correct else 0.0) + rng.normal(0, 0.03), 0, 1))
            rows.append(dict(model="synth", task=task, shots=shots, example_id=e, layer=layer, num_layers=L,
                             target_id=target, top1_id=target if correct else 7, top2_id=9, gap=gap,
                             top_prob=min(1.0, gap + 0.05), seq_len=10 + e % 7))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synth_frame()


def test_threshold_sweep_shape_and_extremes(frame: pd.DataFrame) -> None:
    out = threshold_sweep(frame, [-1.0, 0.5, 0.8, 2.0], CONFIG)
    assert list(out.columns) == ["method", "param", *POINT_COLUMNS]
    assert (out.method == "rule").all() and out.param.tolist() == [-1.0, 0.5, 0.8, 2.0]
    assert out.accuracy.between(0, 1).all() and (out.n == 60).all()
    never = out[out.param == 2.0].iloc[0]  # gap never exceeds 2: the full model
    full_acc = (frame[frame.layer == L].top1_id == frame[frame.layer == L].target_id).mean()
    assert never.mean_exit_layer == L and never.accuracy == pytest.approx(full_acc)
    assert never.flops_ratio_paper == pytest.approx(1.0) and never.exit_layer_variance == 0
    assert never.flops_ratio_honest > 1.0  # the honest count charges L lens checks on top of the model
    first = out[out.param == -1.0].iloc[0]  # gap always > -1: exit at layer 1
    ratios = paper_flops_ratio(1, L, H, frame.groupby("example_id").seq_len.first().to_numpy(), V)
    assert first.mean_exit_layer == 1 and first.flops_ratio_paper == pytest.approx(ratios.mean())
    assert np.all(np.diff(out.mean_exit_layer.to_numpy()) >= 0)  # later exits with higher thresholds


def test_threshold_sweep_by_hand() -> None:
    # two examples, 3 layers; gaps [0.1, 0.9, 0.95] and [0.85, 0.2, 0.99]; t = 0.8
    rows = []
    for e, (gaps, top1) in enumerate([([0.1, 0.9, 0.95], [5, 42, 42]), ([0.85, 0.2, 0.99], [6, 6, 43])]):
        for layer, (g, t1) in enumerate(zip(gaps, top1), start=1):
            rows.append(dict(example_id=e, layer=layer, num_layers=3, target_id=42 + e, top1_id=t1, top2_id=1,
                             gap=g, top_prob=g, seq_len=5 + e))
    df = pd.DataFrame(rows)
    cfg = SimpleNamespace(**{**vars(CONFIG), "num_hidden_layers": 3})
    r = threshold_sweep(df, [0.8], cfg).iloc[0]
    # example 0 exits at layer 2 (0.9 > 0.8) with 42 = target; example 1 at layer 1 with 6 != 43
    assert r.accuracy == 0.5 and r.mean_exit_layer == 1.5 and r.exit_layer_variance == 0.25
    expected = np.mean([paper_flops_ratio(2, 3, H, 5, V), paper_flops_ratio(1, 3, H, 6, V)])
    assert r.flops_ratio_paper == pytest.approx(expected)
    # top_prob as the rule's feature gives the same here (top_prob == gap)
    assert threshold_sweep(df, [0.8], cfg, feature="top_prob").iloc[0].accuracy == 0.5


def test_static_sweep(frame: pd.DataFrame) -> None:
    out = static_sweep(frame, CONFIG)
    assert out.param.tolist() == list(range(1, L + 1)) and (out.method == "static").all()
    assert out.mean_exit_layer.tolist() == list(range(1, L + 1))
    assert (out.exit_layer_variance == 0).all()
    assert out.flops_ratio_paper.iloc[-1] == pytest.approx(1.0)
    assert out.flops_ratio_honest.iloc[-1] == pytest.approx(1.0)  # one lens check = the model's own head
    assert np.all(np.diff(out.flops_ratio_paper) > 0) and np.all(np.diff(out.flops_ratio_honest) > 0)
    # d = L equals the full-model policy
    full = policy_points({"full": FullModelPolicy()}, frame, CONFIG).iloc[0]
    assert full.accuracy == out.accuracy.iloc[-1] and full.method == "full" and np.isnan(full.param)
    with pytest.raises(ValueError, match="one model depth"):
        static_sweep(pd.concat([frame, frame.assign(num_layers=L + 1, model="other")]), CONFIG)


def test_oracle_is_the_ceiling(frame: pd.DataFrame) -> None:
    oracle = oracle_point(frame, CONFIG).iloc[0]
    answered = (frame.top1_id == frame.target_id).groupby(frame.example_id).any().mean()
    assert oracle.method == "oracle" and oracle.accuracy == pytest.approx(answered)
    rule = threshold_sweep(frame, np.linspace(0.1, 0.99, 10), CONFIG)
    assert (rule.accuracy <= oracle.accuracy + 1e-12).all()
    assert (static_sweep(frame, CONFIG).accuracy <= oracle.accuracy + 1e-12).all()


def test_group_by_task_and_shots() -> None:
    df = pd.concat([synth_frame(20, 0, "a", 0), synth_frame(30, 1, "b", 0), synth_frame(30, 2, "b", 5)])
    out = threshold_sweep(df, [0.5, 0.9], CONFIG, by=["task", "shots"])
    assert out[["task", "shots"]].drop_duplicates().values.tolist() == [["a", 0], ["b", 0], ["b", 5]]
    assert out.groupby(["task", "shots"]).n.first().tolist() == [20, 30, 30]
    alone = threshold_sweep(df[df.task == "a"], [0.5, 0.9], CONFIG)
    pd.testing.assert_frame_equal(out[out.task == "a"].drop(columns=["task", "shots"]).reset_index(drop=True),
                                  alone)
    assert len(policy_points({"r": RulePolicy(0.5)}, df, CONFIG, by=["task"])) == 2
    with pytest.raises(ValueError, match="not in the features table"):
        threshold_sweep(df, [0.5], CONFIG, by=["setting"])
    with pytest.raises(ValueError, match="thresholds is empty"):
        threshold_sweep(df, [], CONFIG)


def test_interpolate_accuracy() -> None:
    curve = pd.DataFrame({"flops_ratio_paper": [0.5, 0.25, 1.0], "accuracy": [0.4, 0.0, 0.8]})
    assert interpolate_accuracy(curve, 0.375) == pytest.approx(0.2)
    assert interpolate_accuracy(curve, 0.75) == pytest.approx(0.6)
    assert interpolate_accuracy(curve, 0.1) == 0.0 and interpolate_accuracy(curve, 2.0) == 0.8


def test_label_spots_merge_nearby_thresholds() -> None:
    from adainfer_lib.sweeps import _label_spots

    spots = _label_spots(np.array([67.0, 68.0, 90.0]), np.array([0.0, 0.01, 0.5]), np.array([0.8, 0.5, 0.95]))
    assert spots == [(68.0, 0.01, [0.5, 0.8]), (90.0, 0.5, [0.95])]


def test_plot_pareto_draws_the_numbers(frame: pd.DataFrame) -> None:
    both = pd.concat([frame, synth_frame(30, 3, "mmlu")])
    curves = pd.concat([
        threshold_sweep(both, [0.3, 0.5, 0.8], CONFIG, by=["task"]),
        static_sweep(both, CONFIG, by=["task"]),
        oracle_point(both, CONFIG, by=["task"]),
        policy_points({"svm": RulePolicy(0.6), "crf": RulePolicy(0.7)}, both, CONFIG, by=["task"]),
    ], ignore_index=True)
    fig = plot_pareto(curves, flops=("flops_ratio_paper", "flops_ratio_honest"), panels=("task",))
    assert isinstance(fig, Figure) and len(fig.axes) == 4  # 2 FLOPs measures x 2 tasks
    ax = fig.axes[0]
    title = ax.get_title()
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    rule = curves[(curves.task == title) & (curves.method == "rule")].sort_values("param")
    np.testing.assert_allclose(lines["rule: gap > t (t swept)"].get_xdata(), 100 * rule.flops_ratio_paper)
    np.testing.assert_allclose(lines["rule: gap > t (t swept)"].get_ydata(), rule.accuracy)
    assert {"static depth d = 1..L", "oracle (reads answer)", "svm", "crf"} <= set(lines)
    with pytest.raises(ValueError, match="lacks column"):
        plot_pareto(curves.drop(columns=["accuracy"]))
    ordered = plot_pareto(curves, panels=("task",), order=[("mmlu",), ("sentiment",)])
    assert [ax.get_title() for ax in ordered.axes] == ["mmlu", "sentiment"]
    with pytest.raises(ValueError, match="not in the table"):
        plot_pareto(curves, panels=("task",), order=[("squad",)])


def test_compare_to_static() -> None:
    df = pd.concat([synth_frame(20, 0, "a"), synth_frame(20, 1, "b")])
    curves = pd.concat([threshold_sweep(df, [0.5, 0.9], CONFIG, by=["task"]), static_sweep(df, CONFIG, by=["task"]),
                        policy_points({"full": FullModelPolicy()}, df, CONFIG, by=["task"])])
    out = compare_to_static(curves, by=["task"])
    assert len(out) == 6 and "static" not in set(out.method)
    full = out[out.method == "full"]
    np.testing.assert_allclose(full.gain_vs_static, 0.0, atol=1e-12)  # the full model IS static depth L
    row = out[(out.task == "a") & (out.param == 0.5)].iloc[0]
    static_a = curves[(curves.task == "a") & (curves.method == "static")]
    assert row.static_accuracy == pytest.approx(interpolate_accuracy(static_a, row.flops_ratio_paper))
    with pytest.raises(ValueError, match="no static-depth curve"):
        compare_to_static(curves[curves.method != "static"], by=["task"])


def test_oracle_fraction() -> None:
    pts = pd.DataFrame({
        "task": "a", "method": ["full", "oracle", "static", "static", "static", "svm"],
        "param": [np.nan, np.nan, 6, 9, 12, np.nan],
        "accuracy": [0.80, 0.95, 0.60, 0.795, 0.80, 0.70],
        "mean_exit_layer": [12, 6, 6, 9, 12, 3], "num_layers": 12,
    })
    out = oracle_fraction(pts, by=["task"], max_drop=0.01).set_index("method")
    assert out.loc["static", "param"] == 9 and out.loc["static", "fraction"] == pytest.approx(0.25 / 0.5)
    assert out.loc["oracle", "fraction"] == pytest.approx(1.0) and out.loc["full", "fraction"] == 0.0
    assert not out.loc["svm", "within"] and np.isnan(out.loc["svm", "fraction"])
    with pytest.raises(ValueError, match="oracle"):
        oracle_fraction(pts[pts.method != "oracle"])


def test_select_then_test_chooses_on_selection_only() -> None:
    """The method is chosen on the selection split; its TEST numbers are reported even when a
    different candidate looks better on test (that would be choosing on test)."""
    def pts(acc: dict, exits: dict) -> pd.DataFrame:
        return pd.DataFrame([{"task": "a", "method": m, "accuracy": acc[m], "mean_exit_layer": exits[m],
                              "num_layers": 10} for m in acc])
    sel = pts({"full": 0.8, "oracle": 0.9, "x": 0.8, "y": 0.7, "z": 0.8},
              {"full": 10, "oracle": 6, "x": 8, "y": 5, "z": 9})
    test = pts({"full": 0.6, "oracle": 0.9, "x": 0.55, "y": 0.6, "z": 0.6},
               {"full": 10, "oracle": 5, "x": 8, "y": 4, "z": 9})
    out = select_then_test(sel, test, ["x", "y", "z"]).iloc[0]
    assert out["chosen"] == "x" and out["selection_savings"] == pytest.approx(0.2)   # y loses 10 pts on selection
    assert out["accuracy"] == 0.55 and out["drop"] == pytest.approx(0.05)             # reported as is on test
    assert out["fraction"] == pytest.approx(0.2 / 0.5)
    # nothing qualifies on the selection split -> the full model, no savings
    none = select_then_test(sel, test, ["y"]).iloc[0]
    assert pd.isna(none["chosen"]) and none["savings"] == 0 and none["drop"] == 0 and none["fraction"] == 0
    with pytest.raises(ValueError, match="one row per"):
        select_then_test(pd.concat([sel, sel]), test, ["x"])
