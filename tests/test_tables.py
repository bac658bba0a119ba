"""Paper-style tables on a hand-built evaluation grid: shapes, numbers, paper columns, files; and the
protocol helpers (held-out tasks, saved policies)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adainfer_lib.paper_results import AVG_CLS
from adainfer_lib.tables import (ACC, FLOPS, HONEST, by_task_table, flat_columns, long_table, save_table,
                                 setting_table, wide_table)

TASKS = [("sentiment", "text_classification"), ("builtin_topic", "text_classification"),
         ("antonym", "rule_understanding")]
POLICIES = {"full": (0.50, 1.0), "svm": (0.40, 0.70), "oracle": (0.60, 0.50)}  # accuracy at k=0, FLOPs ratio


@pytest.fixture()
def grid() -> pd.DataFrame:
    """evaluate_grid-shaped rows: accuracy = base + k/100 (+0.1 for antonym), honest = 1.1 x Eq. 2."""
    rows = []
    for task, group in TASKS:
        for k in (0, 5, 10, 3):  # k=3 is not in few_shots: must be ignored
            for p, (acc, fl) in POLICIES.items():
                rows.append({"model": "tiny", "task": task, "group": group, "shots": k, "policy": p, "n": 10,
                             "accuracy": acc + k / 100 + (0.1 if task == "antonym" else 0.0),
                             "mean_exit_layer": 10 * fl, "exit_layer_variance": 0.0, "num_layers": 10,
                             "flops_ratio_paper": fl, "flops_ratio_honest": 1.0 if p == "full" else 1.1 * fl})
    return pd.DataFrame(rows)


def test_setting_table(grid):
    st = setting_table(grid, (5, 10))
    assert set(st.setting) == {"zero-shot", "few-shot"}
    assert set(st.task) == {t for t, _ in TASKS} | {AVG_CLS, "avg(rule_understanding)"}
    few = st[(st.task == "sentiment") & (st.setting == "few-shot") & (st.policy == "svm")].iloc[0]
    assert few.accuracy == pytest.approx(0.40 + 0.075) and few.n == 20  # mean over k = 5, 10
    avg = st[(st.task == AVG_CLS) & (st.setting == "zero-shot") & (st.policy == "full")].iloc[0]
    assert avg.accuracy == pytest.approx(0.50)


def test_wide_table_shape_and_numbers(grid):
    st = setting_table(grid, (5, 10))
    tasks = ["sentiment", "builtin_topic", "antonym", AVG_CLS, "avg(rule_understanding)"]
    w = wide_table(st, tasks=tasks, policies=["full", "svm", "oracle"])
    # rows: 2 settings x (3 ours + paper full + paper svm); columns: 5 tasks x 3 metrics
    assert w.shape == (2 * 5, 5 * 3)
    assert list(w.index.get_level_values("policy")[:5]) == ["full", "svm", "oracle", "paper Llama2-13B: full",
                                                           "paper Llama2-13B: svm"]
    assert w.loc[("few-shot", "svm"), ("sentiment", ACC)] == 47.50
    assert w.loc[("zero-shot", "svm"), ("antonym", ACC)] == 50.00
    assert w.loc[("zero-shot", "oracle"), ("antonym", FLOPS)] == 50.00
    assert w.loc[("zero-shot", "oracle"), ("antonym", HONEST)] == 55.00
    # the paper's numbers, under the mapped task (builtin_topic -> AG News, antonym -> rule average)
    assert w.loc[("few-shot", "paper Llama2-13B: svm"), ("sentiment", FLOPS)] == 59.70
    assert w.loc[("few-shot", "paper Llama2-13B: svm"), ("builtin_topic", ACC)] == 76.43
    assert w.loc[("zero-shot", "paper Llama2-13B: full"), ("antonym", ACC)] == 2.32
    assert w.loc[("few-shot", "paper Llama2-13B: svm"), (AVG_CLS, FLOPS)] == 73.70
    assert np.isnan(w.loc[("few-shot", "paper Llama2-13B: svm"), ("sentiment", HONEST)])
    w7 = wide_table(st, tasks=["sentiment"], policies=["svm"], paper_model="Llama2-7B")
    assert w7.shape == (4, 3) and w7.loc[("few-shot", "paper Llama2-7B: svm"), ("sentiment", ACC)] == 95.30


def test_by_task_and_long_tables(grid):
    st = setting_table(grid, (5, 10))
    t = by_task_table(st, policies=["full", "svm"], tasks=["sentiment", "antonym"], paper_model="Llama2-7B")
    assert t.shape == (2 * 2, 2 * (3 + 2))
    assert list(t.columns.get_level_values("policy").unique()) == ["full", "paper Llama2-7B: full", "svm",
                                                                   "paper Llama2-7B: svm"]
    assert t.loc[("sentiment", "few-shot"), ("svm", FLOPS)] == 70.00
    assert t.loc[("sentiment", "few-shot"), ("paper Llama2-7B: svm", FLOPS)] == 68.05
    assert t.loc[("antonym", "zero-shot"), ("paper Llama2-7B: full", ACC)] == 5.47
    long = long_table(st)
    assert len(long) == len(st) and set(long.paper_task) == {"sentiment", "ag_news", "rule_understanding", AVG_CLS}
    assert long[long.policy == "oracle"]["paper Llama2-13B Acc (%)"].isna().all()


def test_errors(grid):
    st = setting_table(grid, (5,))
    two = pd.concat([st, st.assign(model="other")])
    with pytest.raises(ValueError, match="model="):
        wide_table(two)
    with pytest.raises(ValueError, match="mmlu"):
        wide_table(st, tasks=["mmlu"])
    with pytest.raises(ValueError, match="table name"):
        save_table(st, "../x")


def test_save_table(grid, tmp_path, monkeypatch):
    monkeypatch.setenv("ADAINFER_RESULTS_DIR", str(tmp_path))
    st = setting_table(grid, (5, 10))
    w = wide_table(st, tasks=["sentiment"], policies=["full", "svm"])
    csv, md = save_table(w, "t2", caption="Table 2 (test)")
    assert csv == tmp_path / "t2.csv" and md == tmp_path / "t2.md"
    back = pd.read_csv(csv)
    assert list(back.columns) == ["setting", "policy", f"sentiment: {ACC}", f"sentiment: {FLOPS}",
                                  f"sentiment: {HONEST}"]
    assert len(back) == 8 and back[f"sentiment: {ACC}"].iloc[1] == 40.0
    text = md.read_text()
    assert text.startswith("Table 2 (test)\n\n|") and "59.70" in text and "nan" not in text
    assert flat_columns(w).shape == (8, 5)


def test_decision_grid_of_the_rule_is_exact():
    """plots_policies.decision_grid (the figure of notebook 03): the rule gap > 0.8 exits exactly
    where gap > 0.8 on the reachable triangle, at every layer; unreachable points are NaN."""
    from adainfer_lib.plots_policies import decision_grid
    from adainfer_lib.policies import RulePolicy, StaticDepthPolicy

    train = pd.DataFrame({"model": "tiny", "example_id": 0, "layer": [1, 2, 3, 4], "num_layers": 4,
                          "gap": 0.5, "top_prob": 0.6})
    g = decision_grid({"rule": RulePolicy(0.8), "static": StaticDepthPolicy(3)}, train, [1, 3], resolution=11)
    assert len(g) == 2 * 2 * 11 * 11
    ok = g[g.feasible]
    assert (ok.gap <= ok.top_prob + 1e-9).all() and (ok.gap >= 2 * ok.top_prob - 1 - 1e-9).all()
    assert g[~g.feasible].exit.isna().all()
    rule = ok[ok.policy == "rule"]
    assert ((rule.exit == 1) == (rule.gap > 0.8)).all()
    static = ok[ok.policy == "static"]
    assert (static[static.layer == 1].exit == 0).all() and (static[static.layer == 3].exit == 1).all()
    with pytest.raises(ValueError, match="outside"):
        decision_grid({"rule": RulePolicy()}, train, [5])
