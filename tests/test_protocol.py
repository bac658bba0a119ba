"""adainfer_lib.protocol: the held-out tasks, the training pool and the saved trained policies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adainfer_lib import protocol


def test_protocol_helpers(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAINFER_RESULTS_DIR", str(tmp_path))
    available = ["sentiment", "sst2", "mmlu", "mmlu_anatomy", "antonym", "builtin_antonym", "builtin_capitalize",
                 "capitalize", "english-french"]
    assert protocol.training_candidates(available) == ["builtin_capitalize", "capitalize", "english-french"]
    assert "mmlu_anatomy" in protocol.held_out_tasks(available)
    assert protocol.policy_path("org/model", "svm") == tmp_path / "policies" / "org_model_svm.json"


def test_fit_save_and_load_policies(tmp_path, monkeypatch):
    """fit_policies -> save_policy -> load_policies round trip, and a changed protocol is not reused."""
    from adainfer_lib.policy_io import save_policy
    from adainfer_lib.profiles import get_profile

    monkeypatch.setenv("ADAINFER_RESULTS_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    L, n = 6, 30
    rows = []
    for e in range(n):
        first = rng.integers(2, L + 2)  # first correct layer (L+1: never)
        for layer in range(1, L + 1):
            ok = layer >= first
            rows.append({"model": "tiny", "task": "t", "split": "train", "shots": 0, "example_id": e,
                         "layer": layer, "num_layers": L, "top1_id": 7 if ok else 3, "target_id": 7,
                         "gap": (0.6 if ok else 0.2) + 0.1 * rng.random(),
                         "top_prob": (0.8 if ok else 0.3) + 0.1 * rng.random()})
    train = pd.DataFrame(rows)
    fitted = protocol.fit_policies(train)
    assert list(fitted) == list(protocol.TRAINED_POLICIES)
    assert fitted["svm_balanced"].class_weight == "balanced" and fitted["crf_offline"].decoding == "offline"
    meta = protocol.training_meta(get_profile("ci"), ["t"], 6, 0)
    assert protocol.load_policies("tiny", meta) is None  # nothing saved yet
    for name, p in fitted.items():
        save_policy(p, protocol.policy_path("tiny", name), model="tiny", features_meta=meta)
    loaded = protocol.load_policies("tiny", meta)
    assert loaded is not None and list(loaded) == list(fitted)
    for name in fitted:
        assert (loaded[name].predict(train) == fitted[name].predict(train)).all(), name
    assert protocol.load_policies("tiny", {**meta, "pool_seed": 1}) is None
    with pytest.raises(ValueError, match="one model"):
        protocol.fit_policies(pd.concat([train, train.assign(model="other")]))
