"""Tests for adainfer_lib.flops: hand counts, the paper's Eq. 2 and the honest ratio."""

from __future__ import annotations

import numpy as np
import pytest

from adainfer_lib.flops import (
    ModelDims,
    honest_flops,
    honest_flops_ratio,
    layer_flops,
    lens_flops,
    mean_ratio,
    paper_flops_ratio,
)

# L=2, h=8, I=16, heads=2, kv_heads=1, head_dim=4, V=10; s=3.
SMALL = dict(
    num_layers=2, hidden_size=8, intermediate_size=16, num_heads=2, num_kv_heads=1, head_dim=4, vocab_size=10
)
GATED = ModelDims(**SMALL, gated_mlp=True)
PLAIN = ModelDims(**SMALL, gated_mlp=False)


def _hand_layer(gated: bool) -> int:
    # q width = 2*4 = 8, kv width = 1*4 = 4, s = 3, h = 8, I = 16.
    q_proj = 2 * 3 * 8 * 8  # 384
    k_proj = 2 * 3 * 8 * 4  # 192
    v_proj = 2 * 3 * 8 * 4  # 192
    scores = 2 * 3 * 3 * 8  # 144
    weighted = 2 * 3 * 3 * 8  # 144
    o_proj = 2 * 3 * 8 * 8  # 384
    mlp = (3 if gated else 2) * (2 * 3 * 8 * 16)  # 2304 gated, 1536 plain
    return q_proj + k_proj + v_proj + scores + weighted + o_proj + mlp


def test_hand_count_gated() -> None:
    assert _hand_layer(True) == 3744
    assert layer_flops(GATED, 3) == 3744.0
    assert lens_flops(GATED) == 2 * 8 * 10 == 160.0
    assert honest_flops(GATED, 3, 2, 1) == 2 * 3744 + 160
    assert honest_flops(GATED, 3, 1, 1) == 3744 + 160
    assert honest_flops_ratio(GATED, 3, 1, 1) == (3744 + 160) / (2 * 3744 + 160)


def test_hand_count_non_gated() -> None:
    assert _hand_layer(False) == 2976
    assert layer_flops(PLAIN, 3) == 2976.0
    assert honest_flops(PLAIN, 3, 2, 2) == 2 * 2976 + 2 * 160
    assert honest_flops_ratio(PLAIN, 3, 1, 1) == (2976 + 160) / (2 * 2976 + 160)


def test_layer_matches_paper_block_for_mha_4h_mlp() -> None:
    h, s = 16, 5
    dims = ModelDims(3, h, 4 * h, 4, 4, 4, 100, gated_mlp=False)
    assert layer_flops(dims, s) == 24 * s * h**2 + 4 * s**2 * h


def test_paper_ratio_one_at_full_and_increasing() -> None:
    assert paper_flops_ratio(32, 32, 4096, 100, 32000) == 1.0
    r = paper_flops_ratio(np.arange(1, 33), 32, 4096, 100, 32000)
    assert isinstance(r, np.ndarray) and r.shape == (32,)
    assert np.all(np.diff(r) > 0)
    assert r[-1] == 1.0


def test_paper_ratio_worked_example() -> None:
    # l=4, h=2, s=3, V=5, l'=2: 6h+s = 15; (2*2*15 + 5) / (2*4*15 + 5) = 65/125.
    assert paper_flops_ratio(2, 4, 2, 3, 5) == pytest.approx(65 / 125, rel=0, abs=1e-15)
    assert isinstance(paper_flops_ratio(2, 4, 2, 3, 5), float)


def test_vectorised_equals_scalar() -> None:
    exits = np.array([1, 2, 2, 1])
    seqs = np.array([3, 7, 1, 12])
    checks = exits.copy()
    pv = paper_flops_ratio(exits, 2, 8, seqs, 10)
    hv = honest_flops_ratio(GATED, seqs, exits, checks)
    fv = honest_flops(GATED, seqs, exits, checks)
    for i in range(len(exits)):
        e, s, c = int(exits[i]), int(seqs[i]), int(checks[i])
        assert pv[i] == paper_flops_ratio(e, 2, 8, s, 10)
        assert hv[i] == honest_flops_ratio(GATED, s, e, c)
        assert fv[i] == honest_flops(GATED, s, e, c)


@pytest.mark.parametrize("bad", [0, 3, -1, np.array([1, 3])])
def test_out_of_range_exit_raises(bad) -> None:
    with pytest.raises(ValueError, match="exit_layer"):
        paper_flops_ratio(bad, 2, 8, 3, 10)
    with pytest.raises(ValueError, match="exit_layer"):
        honest_flops(GATED, 3, bad, 1)
    with pytest.raises(ValueError, match="exit_layer"):
        honest_flops_ratio(GATED, 3, bad, 1)


def test_other_validation() -> None:
    with pytest.raises(ValueError, match="seq_len"):
        layer_flops(GATED, 0)
    with pytest.raises(ValueError, match="lens_checks"):
        honest_flops(GATED, 3, 1, -1)
    with pytest.raises(ValueError, match="hidden_size"):
        ModelDims(2, 0, 16, 2, 1, 4, 10, True)
    with pytest.raises(ValueError, match="num_layers"):
        ModelDims(2.0, 8, 16, 2, 1, 4, 10, True)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ModelDims(True, 8, 16, 2, 1, 4, 10, True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mean_ratio"):
        mean_ratio([])


def test_honest_ratio_full_model_is_one() -> None:
    for dims in (GATED, PLAIN):
        for s in (1, 3, 50):
            assert honest_flops_ratio(dims, s, dims.num_layers, 1) == 1.0


def test_per_layer_checks_cost_more_than_one_check() -> None:
    dims = ModelDims(32, 4096, 11008, 32, 8, 128, 32000, True)
    exits = np.arange(2, 33)
    per_layer = honest_flops_ratio(dims, 100, exits, exits)
    one_check = honest_flops_ratio(dims, 100, exits, 1)
    assert np.all(per_layer > one_check)
    # At the full depth with per-layer checks, the adaptive policy costs MORE than the model.
    assert per_layer[-1] > 1.0


def test_mean_ratio_is_mean_of_per_example_ratios() -> None:
    exits = np.array([1, 2, 2])
    seqs = np.array([3, 30, 300])
    ratios = honest_flops_ratio(GATED, seqs, exits, exits)
    assert mean_ratio(ratios) == pytest.approx(float(np.mean(ratios)))
    assert isinstance(mean_ratio(ratios), float)
    assert mean_ratio([0.5, 1.0]) == 0.75
