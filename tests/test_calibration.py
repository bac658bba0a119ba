"""Calibrated exits (Learn-then-Test) on synthetic features frames: the guarantee, monotonicity in
epsilon, agreement with simulate/score, the learned scorers, and clear errors on bad input."""

from __future__ import annotations

import json
import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom
from sklearn.base import clone

from adainfer_lib.calibration import (
    CalibratedPolicy,
    ExitScorer,
    binomial_pvalue,
    default_grid,
    exit_layers,
    fixed_sequence_rejections,
    hoeffding_bentkus_pvalue,
    min_calibration_size,
    score_matrix,
)
from adainfer_lib.sweeps import NoLossOraclePolicy
from adainfer_lib.arch import model_dims
from adainfer_lib.experiments import score
from adainfer_lib.flops import honest_flops_ratio
from adainfer_lib.policy_io import load_policy, save_policy
from adainfer_lib.policies import FullModelPolicy, OraclePolicy, SVMPolicy, simulate

L = 12
CONFIG = SimpleNamespace(model_type="llama", hidden_size=64, num_hidden_layers=L, num_attention_heads=4,
                         num_key_value_heads=4, intermediate_size=256, vocab_size=1000)


def synth(n: int, seed: int, num_layers: int = L) -> pd.DataFrame:
    """n examples x num_layers layers. The target becomes top-1 at a random layer k (never when
    k > L) and stays; the score rises with depth and jumps when the target is top-1, with noise,
    so an aggressive threshold exits early and wrong (a non-trivial risk curve)."""
    rng = np.random.default_rng(seed)
    layer = np.arange(1, num_layers + 1)
    k = rng.integers(2, num_layers + 4, size=n)
    correct = layer[None, :] >= k[:, None]                                   # (n, L)
    target = rng.integers(100, 200, size=n)
    top1 = np.where(correct, target[:, None], rng.integers(0, 50, size=(n, num_layers)))
    s = np.clip(0.3 * correct + 0.04 * layer[None, :] + rng.normal(0, 0.12, size=(n, num_layers)), 0, 1)
    return pd.DataFrame({
        "model": "synth", "task": "t", "shots": 0,
        "example_id": np.repeat(np.arange(n), num_layers), "layer": np.tile(layer, n),
        "num_layers": num_layers, "target_id": np.repeat(target, num_layers), "top1_id": top1.ravel(),
        "ans_top_prob": s.ravel(), "top_prob": s.ravel(), "gap": (s * 0.8).ravel(),
        "ans_gap": (s * 0.6).ravel(), "seq_len": 30,
    })


@pytest.fixture(scope="module")
def calib() -> pd.DataFrame:
    return synth(600, seed=1)


def test_pvalues() -> None:
    assert binomial_pvalue(0, 100, 0.05) == pytest.approx(0.95 ** 100)
    assert binomial_pvalue(3, 50, 0.1) == pytest.approx(binom.cdf(3, 50, 0.1))
    # HB at zero observed risk is (1 - eps)^n; it grows with the observed risk and is capped at 1
    assert hoeffding_bentkus_pvalue(0.0, 100, 0.05) == pytest.approx(0.95 ** 100)
    hb = hoeffding_bentkus_pvalue(np.array([0.0, 0.02, 0.04, 0.2]), 200, 0.05)
    assert np.all(np.diff(hb) >= 0) and hb[-1] == 1.0
    assert fixed_sequence_rejections([0.01, 0.05, 0.2, 0.01], 0.1) == 2
    assert fixed_sequence_rejections([0.5], 0.1) == 0 and fixed_sequence_rejections([0.01, 0.02], 0.1) == 2
    assert min_calibration_size(0.01, 0.1) == 230 and 0.99 ** 230 <= 0.1 < 0.99 ** 229
    g = default_grid(50)
    assert g.shape == (50,) and np.all(np.diff(g) < 0) and 0 < g[-1] < 1e-3 and g[0] > 1 - 1e-3


def test_exit_layers() -> None:
    s = np.array([[0.1, 0.6, 0.2, 0.9], [0.95, 0.1, 0.1, 0.1]])
    ex = exit_layers(s, np.array([0.99, 0.8, 0.5]))
    assert ex.tolist() == [[4, 4], [4, 1], [2, 1]]
    assert exit_layers(s, np.array([0.15]), min_layer=3).tolist() == [[3, 4]]


@pytest.mark.parametrize("pvalue", ["binomial", "hoeffding_bentkus"])
def test_guarantee_holds_in_most_seeds(pvalue: str) -> None:
    """P(R(threshold) <= eps) >= 1 - delta: the realised drop on a large held-out split stays <= eps
    in (almost) every seed, while the policy does exit early (not vacuous)."""
    eps, delta, seeds = 0.05, 0.1, range(25)
    ok, exits = [], []
    for seed in seeds:
        pol = CalibratedPolicy("ans_top_prob", epsilon=eps, delta=delta, pvalue=pvalue).fit(synth(400, seed))
        test = synth(4000, 10_000 + seed)
        ok.append(pol.risk(test) <= eps)
        exits.append(simulate(pol, test)["exit_layer"].mean())
    assert np.mean(ok) >= 0.85, f"guarantee violated in {len(ok) - sum(ok)} of {len(ok)} seeds"
    assert np.mean(exits) < L - 2, f"calibrated policy hardly exits early (mean exit {np.mean(exits):.1f})"


def test_smaller_epsilon_is_more_conservative(calib: pd.DataFrame) -> None:
    eps = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pols = [CalibratedPolicy("ans_top_prob", epsilon=e, delta=0.1).fit(calib) for e in eps]
    thr = [p.threshold_ for p in pols]
    assert all(a >= b for a, b in zip(thr, thr[1:])), thr
    assert thr[0] > thr[-1]
    mean_exit = [simulate(p, calib)["exit_layer"].mean() for p in pols]
    assert all(a >= b for a, b in zip(mean_exit, mean_exit[1:]))
    # calibration risk at the chosen threshold never exceeds ... what the p-value allowed
    for p in pols:
        if p.certified_:
            assert p.p_value_ <= 0.1 and p.calibration_.loc[p.calibration_.rejected, "p_value"].max() <= 0.1


def test_drop_bounds_accuracy_drop_and_consistency_is_stricter(calib: pd.DataFrame) -> None:
    test = synth(2000, 99)
    drop = CalibratedPolicy("ans_top_prob", epsilon=0.05, loss="drop").fit(calib)
    cons = CalibratedPolicy("ans_top_prob", epsilon=0.05, loss="consistency").fit(calib)
    assert cons.threshold_ >= drop.threshold_
    full, _ = score(FullModelPolicy(), test, CONFIG)
    ours, _ = score(drop, test, CONFIG)
    assert full["accuracy"] - ours["accuracy"] <= drop.risk(test) + 1e-12
    assert drop.risk(test, loss="consistency") >= drop.risk(test)


def test_fit_records_and_predict_agrees_with_simulate(calib: pd.DataFrame) -> None:
    pol = CalibratedPolicy("top_prob", epsilon=0.05, min_layer=3).fit(calib)  # a full-vocabulary score
    assert pol.certified_ and pol.n_calib_ == 600 and np.isfinite(pol.threshold_)
    sim = simulate(pol, calib)
    assert sim["exit_layer"].min() >= 3
    assert sim["exit_layer"].mean() == pytest.approx(pol.mean_exit_layer_)
    assert pol.risk(calib) == pytest.approx(pol.risk_hat_) and pol.risk_hat_ <= 0.05
    cal = pol.calibration_
    assert list(cal.columns) == ["threshold", "risk", "n_loss", "p_value", "mean_exit_layer", "tested", "rejected"]
    assert cal.rejected.sum() >= 1 and cal.tested.sum() == cal.rejected.sum() + 1
    # online: the signal at layer l does not change when later layers are dropped (engine prefixes)
    prefix = calib[calib.layer <= 5]
    full_sig = pd.Series(pol.predict(calib), index=calib.index)
    assert (pol.predict(prefix) == full_sig[prefix.index].to_numpy()).all()
    # rows in any order
    shuffled = calib.sample(frac=1.0, random_state=0)
    assert (pol.predict(shuffled) == full_sig[shuffled.index].to_numpy()).all()
    # honest FLOPs charge a full lens check per layer up to the exit (a top_prob score needs it)
    summ, per = score(pol, calib, CONFIG)
    checks = honest_flops_ratio(model_dims(CONFIG), per.seq_len.to_numpy(), per.exit_layer.to_numpy(),
                                per.exit_layer.to_numpy())
    assert 0 < summ["flops_ratio_paper"] < 1 and np.allclose(per.flops_ratio_honest, checks)


def test_learned_scorers(calib: pd.DataFrame) -> None:
    train, test = synth(500, 7), synth(1500, 8)
    for scorer in (ExitScorer(model="hgb").fit(train), ExitScorer(model="logistic", label="correct").fit(train),
                   SVMPolicy(features=("ans_top_prob", "rel_depth"), class_weight="balanced",
                             max_train_rows=2000).fit(train)):
        pol = CalibratedPolicy(scorer=scorer, epsilon=0.05).fit(calib)
        s = pol.scores(test)
        assert s.shape == (len(test),) and 0 <= s.min() and s.max() <= 1
        assert pol.certified_ and pol.risk(test) <= 0.08
        assert set(pol.feature_names()) <= {"ans_top_prob", "ans_gap", "top_prob", "gap", "rel_depth"}
    # a cloned policy carries an unfitted scorer: fitting says so
    with pytest.raises(ValueError, match="not fitted"):
        clone(CalibratedPolicy(scorer=ExitScorer().fit(train))).fit(calib)


@pytest.mark.parametrize("kind", ["feature", "hgb", "logistic", "svm", "uncertified"])
def test_save_load_calibrated_policy(tmp_path, calib: pd.DataFrame, kind: str) -> None:
    """A calibrated exit (with its fitted scorer and certified threshold) survives a JSON round trip:
    same parameters, same per-row signals; the model and feature checks apply as for any policy."""
    train, test = synth(300, 7), synth(200, 9)
    scorer = {"feature": None, "uncertified": None, "hgb": ExitScorer(model="hgb").fit(train),
              "logistic": ExitScorer(model="logistic", class_weight="balanced").fit(train),
              "svm": SVMPolicy(features=("ans_top_prob", "rel_depth"), max_train_rows=1000).fit(train)}[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pol = CalibratedPolicy("ans_top_prob", scorer=scorer, epsilon=0.05, min_layer=2).fit(
            calib if kind != "uncertified" else synth(10, 2))
    path = save_policy(pol, tmp_path / "calibrated.json", model="synth")
    back = load_policy(path, model="synth", features=pol.feature_names())
    assert type(back) is CalibratedPolicy and back.calibration_ is None
    assert back.threshold_ == pol.threshold_ and back.certified_ == pol.certified_ == (kind != "uncertified")
    assert (back.n_calib_, back.mean_exit_layer_, back.risk_hat_) == (pol.n_calib_, pol.mean_exit_layer_, pol.risk_hat_)
    assert np.array_equal(back.predict(test), pol.predict(test))
    assert np.allclose(back.scores(test), pol.scores(test))
    if scorer is not None:
        assert type(back.scorer) is type(scorer) and back.scorer.get_params() == scorer.get_params()
    with pytest.raises(ValueError, match="trained for model"):
        load_policy(path, model="other")
    with pytest.raises(ValueError, match="saved for features"):
        load_policy(path, features=["gap"])
    # an unfitted calibrated policy round-trips as unfitted; a tampered scorer class is refused
    assert not hasattr(load_policy(save_policy(CalibratedPolicy(), tmp_path / "u.json", model="m")), "threshold_")
    if scorer is not None:
        doc = json.loads(path.read_text())
        doc["params"]["scorer"]["class"] = "RulePolicy"
        (tmp_path / "bad.json").write_text(json.dumps(doc))
        with pytest.raises(ValueError, match="scorer must be a saved"):
            load_policy(tmp_path / "bad.json")


def test_too_few_examples_falls_back_to_full_model() -> None:
    small = synth(20, 3)
    with pytest.warns(UserWarning, match=r"at least 230 are needed"):
        pol = CalibratedPolicy("ans_top_prob", epsilon=0.01, delta=0.1).fit(small)
    assert not pol.certified_ and math.isinf(pol.threshold_)
    assert (simulate(pol, small)["exit_layer"] == L).all() and pol.risk(small) == 0.0


def test_degenerate_inputs_raise(calib: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="empty"):
        CalibratedPolicy().fit(calib.iloc[:0])
    for kwargs, msg in [({"epsilon": 0.0}, "epsilon"), ({"epsilon": 1.5}, "epsilon"), ({"delta": 1.0}, "delta"),
                        ({"loss": "nll"}, "unknown loss"), ({"pvalue": "wsr"}, "unknown pvalue"),
                        ({"min_layer": 0}, "min_layer"), ({"min_layer": L + 1}, "exceeds"),
                        ({"thresholds": [0.2, 0.5]}, "strictly decreasing"), ({"thresholds": []}, "strictly"),
                        ({"score_feature": "cos_xyz"}, "unknown feature")]:
        with pytest.raises(ValueError, match=msg):
            CalibratedPolicy(**{"score_feature": "ans_top_prob", **kwargs}).fit(calib)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        CalibratedPolicy("top_prob").fit(calib.assign(top_prob=calib.top_prob * 3))
    with pytest.raises(ValueError, match="all layers"):
        CalibratedPolicy("ans_top_prob").fit(calib[~((calib.example_id == 3) & (calib.layer == 7))])
    with pytest.raises(ValueError, match="mixes model depths"):
        CalibratedPolicy("ans_top_prob").fit(pd.concat([calib, synth(10, 2, num_layers=8).assign(model="m2")]))
    with pytest.raises(ValueError, match="target_id"):
        CalibratedPolicy("ans_top_prob").fit(calib.drop(columns="target_id"))
    with pytest.raises(ValueError, match="not fitted"):
        CalibratedPolicy().predict(calib)
    with pytest.raises(TypeError, match="unsupported scorer"):
        CalibratedPolicy(scorer=object()).fit(calib)
    # consistency needs no labels
    assert CalibratedPolicy("ans_top_prob", loss="consistency", epsilon=0.05).fit(
        calib.drop(columns="target_id")).certified_


def test_extra_scores_and_no_loss_oracle() -> None:
    df = synth(300, 5)
    df["ans_top1_id"] = np.where(df.layer >= 6, df.top1_id, -1)
    m = score_matrix(df, ["top1_ans_prob", "rel_depth", "top1_is_answer"])
    assert m.shape == (len(df), 3)
    assert (m[df.layer.to_numpy() < 6][:, [0, 2]] == 0).all()
    late = df.layer.to_numpy() >= 6
    assert np.allclose(m[late, 0], df.ans_top_prob[late]) and (m[late, 2] == 1).all()
    pol = CalibratedPolicy("top1_ans_prob", epsilon=0.1).fit(df)
    assert simulate(pol, df).exit_layer.min() >= 6 or not pol.certified_
    # no-loss oracle: full-model accuracy, exits no later than the oracle
    sim_full, sim_no_loss = simulate(FullModelPolicy(), df), simulate(NoLossOraclePolicy(), df)
    sim_oracle = simulate(OraclePolicy(), df)
    assert sim_no_loss.correct.mean() >= sim_full.correct.mean()
    assert (sim_no_loss.exit_layer <= sim_oracle.exit_layer).all()
    assert (sim_no_loss.exit_layer[~sim_full.correct] == 1).all()
    with pytest.raises(ValueError, match="layer L"):
        NoLossOraclePolicy().predict(df[df.layer < L])
