"""The real early-exit engine equals the simulation from the features table, for every policy.

Paper §4 / Figure 2; ALGORITHM.md "Why one pass is enough": layer l never depends on later layers,
so exits simulated from one full pass must equal a real early exit that stops computing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tiny_models import tiny_lm

from adainfer_lib import features as features_mod
from adainfer_lib.engine import lens_need, run_early_exit
from adainfer_lib.experiments import flops_columns
from adainfer_lib.policies import make_policy, simulate
from adainfer_lib.prompts import answer_token_ids, build_prompts
from adainfer_lib.tasks import load_task


def _policies(train: pd.DataFrame, L: int, label: str) -> dict:
    gap_q = float(np.quantile(train["gap"], 0.6))
    ans_q = float(np.nanquantile(train["ans_top_prob"], 0.6))
    return {
        "rule": make_policy("rule", threshold=gap_q),
        "rule_answer": make_policy("rule", feature="ans_top_prob", threshold=ans_q),
        "static": make_policy("static", depth=max(1, L // 2)),
        "rule_depth": make_policy("rule", feature="rel_depth", threshold=0.5),  # needs no lens before its exit
        "full": make_policy("full"),
        "oracle": make_policy("oracle"),
        "svm": make_policy("svm", class_weight="balanced", label=label).fit(train),
        "svm_new": make_policy("svm", features=("gap", "top_prob", "rel_depth", "top1_changed", "kl_prev",
                                                 "cos_attn", "cos_mlp", "cos_hidden"),
                               class_weight="balanced", label=label).fit(train),
        "svm_answer": make_policy("svm", features=("ans_gap", "ans_top_prob", "rel_depth"),
                                  class_weight="balanced", label=label).fit(train),
        "crf": make_policy("crf", features=("gap", "top_prob", "rel_depth"), label=label).fit(train),
    }


def _check_engine_equals_simulation(lm, task_name: str, shots: int, limit: int, tmp_path, monkeypatch,
                                    label: str = "correct") -> None:
    monkeypatch.setattr(features_mod, "cache_dir", lambda: tmp_path)
    task = load_task(task_name)
    df = features_mod.extract(lm, task, shots=shots, limit=limit, batch_size=4, progress=False)
    items = build_prompts(task, lm.tokenizer, shots=shots, limit=limit, max_prompt_tokens=1024)
    ans = answer_token_ids(lm.tokenizer, task.answer_vocab)
    L = lm.num_layers
    for name, policy in _policies(df, L, label).items():
        sim = simulate(policy, df).sort_values("example_id").reset_index(drop=True)
        for bs in (1, 3):
            runs = [run_early_exit(lm, [i.prompt for i in items[s:s + bs]], policy,
                                   target_ids=[i.target_id for i in items[s:s + bs]], answer_ids=ans,
                                   example_ids=[i.example_id for i in items[s:s + bs]])
                    for s in range(0, len(items), bs)]
            eng = pd.concat(runs).sort_values("example_id").reset_index(drop=True)
            assert eng["exit_layer"].tolist() == sim["exit_layer"].tolist(), (name, bs)
            assert eng["pred_id"].tolist() == sim["pred_id"].tolist(), (name, bs)
            assert eng["correct"].tolist() == sim["correct"].tolist(), (name, bs)
            for run in runs:  # the batch only shrinks, and no layer runs after the last exit
                per_layer = run.attrs["batch_per_layer"]
                assert per_layer == sorted(per_layer, reverse=True)
                assert len(per_layer) == run["exit_layer"].max()


@pytest.mark.parametrize("family", ["llama", "gemma3_text", "qwen2", "gpt2", "opt", "gpt_neox", "phi"])
def test_engine_equals_simulation_tiny(family, tmp_path, monkeypatch):
    # random tiny models are never "correct": train on the consistency label so classifiers do exit
    _check_engine_equals_simulation(tiny_lm(family), "builtin_sentiment", 2, 6, tmp_path, monkeypatch,
                                    label="consistent")


@pytest.mark.slow
def test_engine_equals_simulation_smollm2(smollm2, tmp_path, monkeypatch):
    _check_engine_equals_simulation(smollm2, "builtin_sentiment", 3, 6, tmp_path, monkeypatch)


def test_static_depth_runs_only_its_layers():
    lm = tiny_lm("llama")
    res = run_early_exit(lm, ["Q: a\nA:", "Q: bcd\nA:"], make_policy("static", depth=1))
    assert res["exit_layer"].tolist() == [1, 1]
    assert res.attrs["batch_per_layer"] == [2]  # layers 2..L never ran


def test_hooks_removed_when_policy_raises():
    lm = tiny_lm("llama")

    class Boom:
        def predict(self, frame):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_early_exit(lm, ["Q: a\nA:"], Boom())
    for layer in lm.parts.layers:
        assert not layer._forward_hooks and not layer._forward_pre_hooks


def test_lens_need_and_honest_charge():
    assert lens_need(make_policy("static", depth=3)) == "none"
    assert lens_need(make_policy("full")) == "none"
    assert lens_need(make_policy("oracle")) == "full"
    assert lens_need(make_policy("rule")) == "full"
    assert lens_need(make_policy("rule", feature="ans_top_prob")) == "answer"
    assert lens_need(make_policy("svm", features=("ans_gap", "rel_depth"))) == "answer"
    assert lens_need(make_policy("svm", features=("gap", "rel_depth"))) == "full"
    assert lens_need(make_policy("rule", feature="rel_depth")) == "none"      # the layer index alone

    class Cfg:  # llama-like dims for the FLOPs count
        model_type, hidden_size, num_hidden_layers, num_attention_heads = "llama", 64, 4, 4
        num_key_value_heads, intermediate_size, vocab_size = 4, 128, 1000

    sim = pd.DataFrame({"exit_layer": [2, 4], "seq_len": [10, 10]})
    full_checks = flops_columns(sim, Cfg, make_policy("rule"))["flops_ratio_honest"]
    answer_checks = flops_columns(sim, Cfg, make_policy("rule", feature="ans_gap"))["flops_ratio_honest"]
    static = flops_columns(sim, Cfg, make_policy("static", depth=2))["flops_ratio_honest"]
    assert (answer_checks < full_checks).all() and (static <= answer_checks).all()
    assert static.iloc[1] == pytest.approx(1.0)  # exit at L with one head evaluation = the full model
