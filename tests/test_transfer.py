"""Which exit policies transfer to a model of another depth (paper §5.6, Table 6 inter-model)."""

from __future__ import annotations

import warnings

import pytest

from adainfer_lib.policies import VALID_FEATURES, CRFPolicy, OraclePolicy, RulePolicy, StaticDepthPolicy, SVMPolicy
from adainfer_lib.transfer import (
    KINDS,
    TransferCheck,
    check_transferable,
    feature_kind,
    rescale_depth,
)


def test_feature_kinds() -> None:
    assert feature_kind("gap") == feature_kind("top_prob") == "depth-free"
    assert feature_kind("rel_depth") == "depth-normalised"
    assert feature_kind("cos_hidden") == feature_kind("kl_prev") == "per-step"
    assert feature_kind("layer") == "absolute"
    # every feature a policy may read today is classified (a new one must be added to a kind)
    assert all(feature_kind(f) != "absolute" for f in VALID_FEATURES)
    with pytest.raises(ValueError, match="unknown feature kind"):
        TransferCheck("x", 2, 3, {"gap": "nonsense"})


def test_paper_features_transfer_32_to_40() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for transferable policies
        svm = check_transferable(SVMPolicy(features=("gap", "top_prob")), 32, 40)
        depth = check_transferable(SVMPolicy(features=("gap", "top_prob", "rel_depth")), 32, 40)
        rule = check_transferable(RulePolicy(0.8), 32, 40)
        oracle = check_transferable(OraclePolicy(), 32, 40)
    assert svm.ok and svm.kinds == {"gap": "depth-free", "top_prob": "depth-free"}
    assert any("comparable across depths" in n for n in svm.notes)
    assert depth.ok and depth.kinds["rel_depth"] == "depth-normalised"
    assert any("by construction" in n for n in depth.notes)
    assert rule.ok and oracle.ok and oracle.kinds == {}


def test_per_step_and_crf_are_noted_not_refused() -> None:
    check = check_transferable(CRFPolicy(features=("gap", "cos_mlp")), 30, 18)
    assert check.ok
    assert any("per-step" in n and "cos_mlp" in n for n in check.notes)
    assert any("transition" in n for n in check.notes)
    assert not any("transition" in n for n in check_transferable(CRFPolicy(), 18, 18).notes)


def test_absolute_layer_inputs_warn() -> None:
    with pytest.warns(UserWarning, match="not transferable from 32 to 40"):
        check = check_transferable(StaticDepthPolicy(depth=16), 32, 40)
    assert not check.ok and check.kinds == {"depth": "absolute"} and "= 20" in check.notes[0]
    assert check_transferable(StaticDepthPolicy(depth=16), 32, 32).ok

    class LayerPolicy(RulePolicy):  # a rule on the raw layer index
        def feature_names(self) -> list[str]:
            return ["layer"]

    with pytest.warns(UserWarning, match="absolute layer index"):
        assert not check_transferable(LayerPolicy(), 24, 18).ok
    assert not check_transferable(LayerPolicy(), 24, 18, warn=False).ok  # no warning asked


def test_rescale_depth() -> None:
    assert rescale_depth(16, 32, 40) == 20 and rescale_depth(32, 32, 40) == 40
    assert rescale_depth(1, 40, 18) == 1 and rescale_depth(18, 18, 30) == 30
    with pytest.raises(ValueError, match="depth must be in"):
        rescale_depth(0, 32, 40)
    assert set(KINDS) == {"depth-free", "depth-normalised", "per-step", "absolute"}
