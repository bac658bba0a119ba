"""Exit policies, simulation and policy files on synthetic features frames (no models)."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from adainfer_lib.policies import (
    FEATURE_SETS,
    CRFPolicy,
    FullModelPolicy,
    OraclePolicy,
    RulePolicy,
    StaticDepthPolicy,
    SVMPolicy,
    feature_matrix,
    make_labels,
    make_policy,
    simulate,
    summarize,
)
from adainfer_lib.policy_io import load_policy, save_policy

L = 12


def synth_frame(n: int = 200, num_layers: int = L, seed: int = 0, task: str = "sst2") -> pd.DataFrame:
    """n examples x num_layers layers: gap rises with depth; the target becomes top-1 at a random
    layer k (and stays), before that a distractor token is top-1."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n):
        k = int(rng.integers(3, num_layers + 3))  # > num_layers: never correct
        target = int(rng.integers(100, 200))
        for layer in range(1, num_layers + 1):
            correct = layer >= k
            top1 = target if correct else int(rng.choice([7, 8]))
            gap = float(np.clip(0.07 * layer + (0.3 if correct else 0.0) + rng.normal(0, 0.05), 0, 1))
            rows.append(dict(
                model="synth", task=task, shots=0, example_id=e, layer=layer, num_layers=num_layers,
                target_id=target, top1_id=top1, top2_id=9, gap=gap,
                top_prob=min(1.0, gap + 0.05), target_prob=gap if correct else 0.01,
                target_rank=0 if correct else 3, entropy=3.0 - 0.2 * layer,
                kl_prev=np.nan if layer == 1 else float(rng.random()),
                cos_attn=np.nan if layer == 1 else 0.5, cos_mlp=np.nan if layer == 1 else 0.4,
                cos_hidden=0.9, ans_top1_id=top1 if correct else 5, ans_gap=gap / 2,
                ans_top_prob=gap / 2 + 0.5, seq_len=20 + e % 5,
            ))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synth_frame()


@pytest.fixture(scope="module")
def fitted(frame: pd.DataFrame) -> dict[str, object]:
    return {
        "svm": SVMPolicy(class_weight="balanced").fit(frame),
        "crf": CRFPolicy(features=FEATURE_SETS["depth"]).fit(frame),
        "rule": RulePolicy(threshold=0.6).fit(frame),
        "static": StaticDepthPolicy(5).fit(frame),
    }


ALL = [SVMPolicy(), CRFPolicy(), RulePolicy(), StaticDepthPolicy(3), FullModelPolicy(), OraclePolicy()]


@pytest.mark.parametrize("policy", ALL, ids=lambda p: type(p).__name__)
def test_clone_and_get_params(policy: object) -> None:
    twin = clone(policy)
    assert type(twin) is type(policy)
    assert twin.get_params() == policy.get_params()
    assert not [k for k in vars(twin) if k.endswith("_") and not k.startswith("_")]


def test_make_policy() -> None:
    assert isinstance(make_policy("svm", C=2.0), SVMPolicy)
    assert make_policy("static", depth=4).depth == 4
    with pytest.raises(ValueError, match="svm"):
        make_policy("nope")


def test_feature_matrix_derived_and_nan() -> None:
    df = pd.DataFrame(dict(
        example_id=[1, 0, 0, 0, 1], layer=[1, 3, 1, 2, 2], num_layers=[2, 4, 4, 4, 2],
        top1_id=[5, 6, 5, 6, 5], ans_top1_id=[-1, 2, 1, 1, -1],
        gap=[0.1, np.nan, 0.2, 0.3, 0.4], kl_prev=[np.nan, 1.0, np.nan, np.inf, 2.0],
    ))
    x = feature_matrix(df, ["rel_depth", "top1_changed", "ans_top1_changed", "gap", "kl_prev"])
    np.testing.assert_allclose(x[:, 0], [0.5, 0.75, 0.25, 0.5, 1.0])
    np.testing.assert_array_equal(x[:, 1], [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(x[:, 2], [0, 1, 0, 0, 0])
    np.testing.assert_allclose(x[:, 3], [0.1, 0.0, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(x[:, 4], [0.0, 1.0, 0.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="valid names"):
        feature_matrix(df, ["gap", "target_prob"])


def test_feature_sets_are_valid(frame: pd.DataFrame) -> None:
    for name, feats in FEATURE_SETS.items():
        assert feature_matrix(frame.head(24), feats).shape == (24, len(feats)), name


def test_groups_by_task_and_shots() -> None:
    a, b = synth_frame(3, 4, seed=1, task="a"), synth_frame(3, 4, seed=2, task="b")
    df = pd.concat([a, b], ignore_index=True)
    np.testing.assert_array_equal(feature_matrix(df, ["top1_changed"])[:12],
                                  feature_matrix(a, ["top1_changed"]))
    assert len(simulate(FullModelPolicy(), df)) == 6


def test_labels() -> None:
    df = pd.DataFrame(dict(example_id=[0, 0, 0], layer=[3, 1, 2], num_layers=3,
                           top1_id=[4, 4, 9], target_id=9))
    np.testing.assert_array_equal(make_labels(df, "correct"), [0, 0, 1])
    np.testing.assert_array_equal(make_labels(df, "consistent"), [1, 1, 0])
    with pytest.raises(ValueError):
        make_labels(df, "bogus")


@pytest.mark.parametrize("name", ["svm", "crf", "rule"])
def test_online_prefix_equals_full(frame: pd.DataFrame, fitted: dict, name: str) -> None:
    policy = fitted[name]
    full = policy.predict(frame)
    for cut in (1, 4, 9):
        mask = (frame["layer"] <= cut).to_numpy()
        np.testing.assert_array_equal(policy.predict(frame[mask]), full[mask])


def test_crf_offline_runs(frame: pd.DataFrame, fitted: dict) -> None:
    offline = clone(fitted["crf"]).set_params(decoding="offline").fit(frame)
    pred = offline.predict(frame)
    assert pred.shape == (len(frame),) and set(np.unique(pred)) <= {0, 1}
    with pytest.raises(ValueError, match="decoding"):
        clone(fitted["crf"]).set_params(decoding="later").fit(frame).predict(frame)


def test_crf_train_on_prefixes() -> None:
    df = synth_frame(150, 30, seed=4)
    p = CRFPolicy(train_on_prefixes=True).fit(df)
    s = summarize(simulate(p, df))
    assert s["mean_exit_layer"] > 1 and s["accuracy"] > 0.5, s
    mask = (df["layer"] <= 10).to_numpy()
    np.testing.assert_array_equal(p.predict(df[mask]), p.predict(df)[mask])


def test_policies_learn_something(frame: pd.DataFrame, fitted: dict) -> None:
    full = summarize(simulate(FullModelPolicy(), frame))
    for name in ("svm", "crf"):
        s = summarize(simulate(fitted[name], frame))
        assert s["mean_exit_layer"] < L and s["accuracy"] >= 0.7 * full["accuracy"], (name, s)


@pytest.mark.parametrize("name", ["svm", "crf", "rule", "static"])
def test_row_order_does_not_matter(frame: pd.DataFrame, fitted: dict, name: str) -> None:
    perm = np.random.default_rng(3).permutation(len(frame))
    shuffled = frame.iloc[perm]
    np.testing.assert_array_equal(fitted[name].predict(shuffled), fitted[name].predict(frame)[perm])
    a = simulate(fitted[name], frame)
    b = simulate(fitted[name], shuffled)
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_shuffled_training_gives_same_svm(frame: pd.DataFrame) -> None:
    shuffled = frame.sample(frac=1.0, random_state=1)
    a = SVMPolicy(max_train_rows=None).fit(frame).predict(frame)
    b = SVMPolicy(max_train_rows=None).fit(shuffled).predict(frame)
    assert (a == b).mean() > 0.99


def test_oracle_static_full(frame: pd.DataFrame) -> None:
    sim = simulate(OraclePolicy(), frame).set_index("example_id")
    correct = frame[frame["top1_id"] == frame["target_id"]]
    first = correct.groupby("example_id")["layer"].min()
    expected = first.reindex(sim.index).fillna(L).astype(int)
    np.testing.assert_array_equal(sim["exit_layer"], expected)
    assert sim.loc[first.index, "correct"].all()
    assert (simulate(StaticDepthPolicy(5), frame)["exit_layer"] == 5).all()
    assert (simulate(StaticDepthPolicy(50), frame)["exit_layer"] == L).all()
    full = simulate(FullModelPolicy(), frame)
    assert (full["exit_layer"] == L).all()
    assert summarize(simulate(OraclePolicy(), frame))["accuracy"] >= summarize(full)["accuracy"]
    with pytest.raises(ValueError, match="depth"):
        StaticDepthPolicy(0).predict(frame)


def tiny() -> pd.DataFrame:
    # example 0: gap crosses 0.8 at layer 2 (wrong there); example 1: never (exits at L=3, right).
    return pd.DataFrame(dict(
        task="t", shots=0, example_id=[0, 0, 0, 1, 1, 1], layer=[1, 2, 3, 1, 2, 3], num_layers=3,
        target_id=[7, 7, 7, 8, 8, 8], top1_id=[1, 2, 7, 8, 1, 8],
        gap=[0.5, 0.9, 0.95, 0.8, 0.1, 0.3], seq_len=[10, 10, 10, 12, 12, 12],
    ))


def test_rule_is_strict_and_simulate_summarize() -> None:
    df = tiny()
    np.testing.assert_array_equal(RulePolicy(0.8).predict(df), [0, 1, 1, 0, 0, 0])  # 0.8 !> 0.8
    sim = simulate(RulePolicy(0.8), df)
    assert list(sim.columns) == ["task", "shots", "example_id", "exit_layer", "num_layers",
                                 "pred_id", "target_id", "correct", "seq_len"]
    assert sim["exit_layer"].tolist() == [2, 3]
    assert sim["pred_id"].tolist() == [2, 8]
    assert sim["correct"].tolist() == [False, True]
    assert sim["seq_len"].tolist() == [10, 12]
    s = summarize(sim)
    assert s == {"n": 2, "accuracy": 0.5, "mean_exit_layer": 2.5, "exit_layer_variance": 0.25,
                 "num_layers": 3}
    sim_o = simulate(OraclePolicy(), df)
    assert sim_o["exit_layer"].tolist() == [3, 1] and sim_o["correct"].all()


def test_degenerate_training(frame: pd.DataFrame) -> None:
    for cls in (SVMPolicy, CRFPolicy):
        with pytest.raises(ValueError, match="no training rows"):
            cls().fit(frame.iloc[:0])
        with pytest.warns(UserWarning, match="never exits early"):
            never = cls().fit(frame, np.zeros(len(frame), dtype=int))
        assert (simulate(never, frame)["exit_layer"] == L).all()
        with pytest.warns(UserWarning, match="layer 1"):
            always = cls().fit(frame, np.ones(len(frame), dtype=int))
        assert (simulate(always, frame)["exit_layer"] == 1).all()
    with pytest.raises(ValueError, match="not fitted"):
        SVMPolicy().predict(frame)
    with pytest.raises(ValueError, match="valid names"):
        SVMPolicy(features=("gap", "nope")).fit(frame)


def test_svm_subsample_is_bounded(frame: pd.DataFrame) -> None:
    p = SVMPolicy(max_train_rows=300).fit(frame)
    assert p.svc_.support_vectors_.shape[0] <= 300 and p.n_train_rows_ == len(frame)


@pytest.mark.parametrize("name", ["svm", "crf", "rule", "static"])
def test_save_load_round_trip(tmp_path, frame: pd.DataFrame, fitted: dict, name: str) -> None:
    policy = fitted[name]
    path = save_policy(policy, tmp_path / f"{name}.json", model="synth", features_meta={"lens": "v1"})
    doc = json.loads(path.read_text())
    assert doc["format"] == "adainfer-policy" and doc["class"] == type(policy).__name__
    loaded = load_policy(path, model="synth", features=policy.feature_names() or None)
    norm = lambda p: {k: tuple(v) if k == "features" else v for k, v in p.get_params().items()}  # noqa: E731
    assert norm(loaded) == norm(policy)
    np.testing.assert_array_equal(loaded.predict(frame), policy.predict(frame))


def test_pickle_round_trip(frame: pd.DataFrame, fitted: dict) -> None:
    for name in ("svm", "crf"):
        twin = pickle.loads(pickle.dumps(fitted[name]))
        np.testing.assert_array_equal(twin.predict(frame), fitted[name].predict(frame))


def test_save_load_special_cases(tmp_path, frame: pd.DataFrame) -> None:
    with pytest.warns(UserWarning):
        const = SVMPolicy().fit(frame, np.zeros(len(frame), dtype=int))
    p = load_policy(save_policy(const, tmp_path / "c.json", model="m"))
    assert p.constant_ == 0 and not p.predict(frame).any()
    weighted = SVMPolicy(class_weight={0: 1.0, 1: 3.0}, max_train_rows=500).fit(frame)
    p = load_policy(save_policy(weighted, tmp_path / "w.json", model="m"))
    assert p.class_weight == {0: 1.0, 1: 3.0}
    np.testing.assert_array_equal(p.predict(frame), weighted.predict(frame))
    unfitted = load_policy(save_policy(CRFPolicy(), tmp_path / "u.json", model="m"))
    assert not hasattr(unfitted, "constant_")


def test_load_errors(tmp_path, fitted: dict) -> None:
    path = save_policy(fitted["svm"], tmp_path / "svm.json", model="synth")
    with pytest.raises(ValueError, match=r"\['gap', 'top_prob'\].*\['gap', 'rel_depth'\]"):
        load_policy(path, features=["gap", "rel_depth"])
    with pytest.raises(ValueError, match="other-model"):
        load_policy(path, model="other-model")
    doc = json.loads(path.read_text())
    bad = tmp_path / "bad_class.json"
    bad.write_text(json.dumps({**doc, "class": "EvilPolicy"}))
    with pytest.raises(ValueError, match="unknown policy class"):
        load_policy(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        load_policy(broken)
    nofit = tmp_path / "nofit.json"
    nofit.write_text(json.dumps({**doc, "fitted": {"constant": None}}))
    with pytest.raises(ValueError, match="nofit.json"):
        load_policy(nofit)
    crf_path = save_policy(fitted["crf"], tmp_path / "crf.json", model="synth")
    crf_doc = json.loads(crf_path.read_text())
    crf_doc["fitted"]["crfsuite"] = "AAAA"
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text(json.dumps(crf_doc))
    with pytest.raises(ValueError, match="corrupt.json"):
        load_policy(corrupt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_policy(save_policy(StaticDepthPolicy(4), tmp_path / "s.json", model="m"),
                    features=["gap", "top_prob"])  # feature-free: no feature check
