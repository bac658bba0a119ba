"""adainfer_lib.lens: the hooked layer-wise pass, on tiny random models of every family and on the
real SmolLM2-135M (``slow``: loads the packaged model, offline, still run by default)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from adainfer_lib import arch, lens
from adainfer_lib.prompts import target_token_id
from tiny_models import VARIANTS, tiny_lm

PROMPTS = [  # different lengths: the batch is left-padded
    "Q: apple\nA: Apple\n\nQ: river\nA:",
    "Q: hi\nA:",
    "Q: The quick brown fox jumps over the lazy dog\nA:",
    "Q: x\nA: y\n\nQ: z\nA:",
]
ANSWERS = ["River", "Hi", "Dog", "Z"]
ANSWER_VOCAB = ["Yes", "No", "Maybe"]
ID_COLS = ("top1_id", "top2_id", "ans_top1_id")
INT_COLS = ID_COLS + ("target_rank",)


def _targets(lm) -> tuple[list[int], list[int]]:
    tgt = [target_token_id(lm.tokenizer, a) for a in ANSWERS]
    ans = list(dict.fromkeys(target_token_id(lm.tokenizer, a) for a in ANSWER_VOCAB))
    return tgt, ans


def _hooks(module: torch.nn.Module) -> int:
    return sum(len(getattr(module, name)) for name in
               ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs",
                "_forward_pre_hooks_with_kwargs", "_backward_hooks"))


def _assert_no_hooks(lm, baseline: dict[int, int] | None = None) -> None:
    p = lm.parts
    for i in range(lm.num_layers):
        for name, m in (("layer", p.layers[i]), ("attn", p.attn[i]), ("mlp", p.mlp[i])):
            assert not m._forward_hooks and not m._forward_pre_hooks, f"{name} {i} keeps a hook"
    if baseline is not None:  # nothing anywhere else in the model either
        assert {id(m): _hooks(m) for m in lm.model.modules()} == baseline


def _baseline(lm) -> dict[int, int]:
    return {id(m): _hooks(m) for m in lm.model.modules()}


def assert_features_valid(res: lens.LayerwiseResult, batch: int, L: int, answer_ids: list[int] | None,
                          cosines: bool = True, targets: list[int] | None = None) -> None:
    f = res.features
    assert set(f) == set(lens.FEATURE_NAMES)
    assert res.shape == (batch, L)
    for k in INT_COLS:
        assert not f[k].is_floating_point(), k
    eps = 1e-5
    gap, top = f["gap"], f["top_prob"]
    assert torch.all(gap >= 0) and torch.all(gap <= top + eps) and torch.all(top <= 1 + eps)
    assert torch.all(f["top1_id"] != f["top2_id"])
    assert torch.all((f["target_prob"] >= 0) & (f["target_prob"] <= top + eps))
    assert torch.all(f["target_rank"] >= 0)
    assert torch.all(f["entropy"] >= 0)
    if targets is not None:  # top-1 is the target exactly when its rank is 0
        assert torch.equal(f["top1_id"] == torch.tensor(targets)[:, None], f["target_rank"] == 0)
    kl = f["kl_prev"]
    assert torch.isnan(kl[:, 0]).all() and not torch.isnan(kl[:, 1:]).any()
    assert torch.all(kl[:, 1:] >= -1e-5)
    for k in ("cos_attn", "cos_mlp", "cos_hidden"):
        c = f[k]
        finite = c[~torch.isnan(c)]
        assert torch.all(finite.abs() <= 1 + eps), k
    assert not torch.isnan(f["cos_hidden"]).any()
    if cosines:
        for k in ("cos_attn", "cos_mlp"):
            assert torch.isnan(f[k][:, 0]).all() and not torch.isnan(f[k][:, 1:]).any(), k
    else:
        assert torch.isnan(f["cos_attn"]).all() and torch.isnan(f["cos_mlp"]).all()
    for k in ("gap", "top_prob", "target_prob", "entropy", "cos_hidden"):
        assert torch.isfinite(f[k]).all(), k
    if answer_ids:
        assert set(f["ans_top1_id"].unique().tolist()) <= set(answer_ids)
        ag, at = f["ans_gap"], f["ans_top_prob"]
        assert torch.all(ag >= 0) and torch.all(ag <= at + eps) and torch.all(at <= 1 + eps)
        assert torch.all(at >= 1 / len(answer_ids) - eps)
    else:
        assert torch.all(f["ans_top1_id"] == -1)
        assert torch.isnan(f["ans_gap"]).all() and torch.isnan(f["ans_top_prob"]).all()


def assert_batched_equals_single(lm, prompts, tgt, ans, *, rank_slack: int = 0,
                                 batched: lens.LayerwiseResult | None = None, padded_only: bool = False) -> None:
    """Left padding + position ids: every column of the batch equals the batch-size-1 pass
    (for every prompt, or only those the batch pads when ``padded_only``)."""
    if batched is None:
        batched = lens.layerwise_pass(lm, prompts, tgt, ans)
    mask = lens.model_inputs(lm, prompts)["attention_mask"]
    for i, prompt in enumerate(prompts):
        if padded_only and mask[i].all():
            continue
        single = lens.layerwise_pass(lm, [prompt], [tgt[i]], ans)
        for k in lens.FEATURE_NAMES:
            a, b = batched.features[k][i], single.features[k][0]
            if k in ID_COLS:
                # ids must agree exactly, except where two candidates are tied to within atol
                gap = batched.features["ans_gap" if k == "ans_top1_id" else "gap"][i]
                bad = (a != b) & ~((k != "top2_id") & (gap < 1e-4))
                assert not bad.any(), f"prompt {i} {k}: {a.tolist()} != {b.tolist()}"
            elif k == "target_rank":
                assert (a - b).abs().max() <= rank_slack, f"prompt {i} {k}: {a.tolist()} != {b.tolist()}"
            else:
                torch.testing.assert_close(a, b, atol=1e-4, rtol=0, equal_nan=True,
                                           msg=lambda m, k=k, i=i: f"prompt {i} {k}: {m}")


@torch.no_grad()
def assert_lens_is_model(lm, prompts, tgt, ans) -> lens.LayerwiseResult:
    """At layer L the lens features are those of the model's own last-token distribution."""
    res = lens.layerwise_pass(lm, prompts, tgt, ans)
    logits = lm.model(**lens.model_inputs(lm, prompts)).logits[:, -1, :].float()
    prob = logits.softmax(-1)
    f = {k: v[:, -1] for k, v in res.features.items()}
    t = torch.tensor(tgt)
    assert torch.equal(f["top1_id"], logits.argmax(-1))
    top2 = prob.topk(2, dim=-1).values
    torch.testing.assert_close(f["top_prob"], top2[:, 0], atol=1e-4, rtol=0)
    torch.testing.assert_close(f["gap"], top2[:, 0] - top2[:, 1], atol=1e-4, rtol=0)
    torch.testing.assert_close(f["target_prob"], prob.gather(1, t[:, None])[:, 0], atol=1e-4, rtol=0)
    torch.testing.assert_close(f["entropy"], -(prob * prob.log()).nansum(-1), atol=1e-3, rtol=1e-4)
    a = torch.tensor(ans)
    ap = logits[:, a].softmax(-1)
    assert torch.equal(f["ans_top1_id"], a[ap.argmax(-1)])
    torch.testing.assert_close(f["ans_top_prob"], ap.max(-1).values, atol=1e-4, rtol=0)
    return res


# ---------------------------------------------------------------------------------------------
# tiny random models, every family


@pytest.fixture(scope="module", params=VARIANTS)
def tiny(request):
    return tiny_lm(request.param)


def test_lens_at_last_layer_is_the_model_tiny(tiny):
    tgt, ans = _targets(tiny)
    res = assert_lens_is_model(tiny, PROMPTS, tgt, ans)
    assert_features_valid(res, len(PROMPTS), tiny.num_layers, ans, targets=tgt)


def test_batched_equals_single_tiny(tiny):
    tgt, ans = _targets(tiny)
    assert_batched_equals_single(tiny, PROMPTS, tgt, ans)


def test_model_inputs_left_padding_and_positions(tiny):
    inputs = lens.model_inputs(tiny, PROMPTS)
    mask, pos, ids = inputs["attention_mask"], inputs["position_ids"], inputs["input_ids"]
    assert mask[:, -1].all(), "left padding: the last position is every prompt's last token"
    for i, prompt in enumerate(PROMPTS):
        n = len(tiny.tokenizer(prompt)["input_ids"])
        assert int(mask[i].sum()) == n
        assert pos[i, -n:].tolist() == list(range(n))
        assert ids[i, -n:].tolist() == tiny.tokenizer(prompt)["input_ids"]
        assert (ids[i, : ids.shape[1] - n] == tiny.tokenizer.pad_token_id).all()


@torch.no_grad()
def test_features_recomputed_from_capture():
    """Every layer's features equal a direct computation from the captured residual stream."""
    lm = tiny_lm("llama")
    tgt, ans = _targets(lm)
    res = lens.layerwise_pass(lm, PROMPTS, tgt, ans)
    with lens.capture(lm.parts) as store:
        lm.parts.base(**lens.model_inputs(lm, PROMPTS), use_cache=False)
    t = torch.tensor(tgt)
    prev = None
    for l in range(lm.num_layers):
        logits = arch.lens_logits(lm.parts, store["hidden"][l])
        logp = logits.log_softmax(-1)
        f = {k: v[:, l] for k, v in res.features.items()}
        torch.testing.assert_close(f["target_prob"], logp.exp().gather(1, t[:, None])[:, 0])
        rank = (logits > logits.gather(1, t[:, None])).sum(-1)
        assert torch.equal(f["target_rank"], rank)
        assert torch.equal(f["target_rank"] == 0, f["top1_id"] == t)
        if prev is not None:
            kl = (logp.exp() * (logp - prev)).sum(-1)
            torch.testing.assert_close(f["kl_prev"], kl)
        prev = logp
        h_prev = store["hidden"][l - 1] if l else store["input"][0]
        cos = torch.nn.functional.cosine_similarity(store["hidden"][l], h_prev, dim=-1)
        torch.testing.assert_close(f["cos_hidden"], cos)
        if l:
            cos_m = torch.nn.functional.cosine_similarity(store["mlp"][l], store["mlp"][l - 1], dim=-1)
            torch.testing.assert_close(f["cos_mlp"], cos_m)


def test_no_answer_vocab_and_no_cosines():
    lm = tiny_lm("qwen2")
    tgt, _ = _targets(lm)
    res = lens.layerwise_pass(lm, PROMPTS, tgt, None, cosines=False)
    assert_features_valid(res, len(PROMPTS), lm.num_layers, None, cosines=False)


def test_layerwise_result_rejects_ragged_shapes():
    with pytest.raises(ValueError, match="batch, layers"):
        lens.LayerwiseResult({"a": torch.zeros(2, 3), "b": torch.zeros(2, 4)})
    with pytest.raises(ValueError):
        lens.LayerwiseResult({"a": torch.zeros(2)})


def test_no_hook_left_after_exception_inside_capture():
    lm = tiny_lm("gpt2")
    base = _baseline(lm)
    with pytest.raises(KeyError, match="boom"):
        with lens.capture(lm.parts) as store:
            assert _hooks(lm.parts.layers[0]) >= 2  # the hooks really were there
            lm.parts.base(**lens.model_inputs(lm, PROMPTS[:2]), use_cache=False)
            assert len(store["hidden"]) == lm.num_layers
            raise KeyError("boom")
    _assert_no_hooks(lm, base)


@pytest.mark.parametrize("model_type", ["llama", "opt"])
def test_no_hook_left_after_forward_raises(model_type, monkeypatch):
    lm = tiny_lm(model_type)
    base = _baseline(lm)
    tgt, ans = _targets(lm)
    layer = lm.parts.layers[1]

    def broken(*args, **kwargs):
        raise RuntimeError("layer 2 exploded")

    monkeypatch.setattr(layer, "forward", broken)
    with pytest.raises(RuntimeError, match="exploded"):
        lens.layerwise_pass(lm, PROMPTS, tgt, ans)
    _assert_no_hooks(lm, base)
    monkeypatch.undo()
    # and the model still works normally afterwards
    res = lens.layerwise_pass(lm, PROMPTS, tgt, ans)
    assert res.shape == (len(PROMPTS), lm.num_layers)
    _assert_no_hooks(lm, base)


def test_missing_layer_outputs_are_an_error(monkeypatch):
    """If the hooks see fewer than L layer outputs, the pass fails instead of misaligning layers."""
    lm = tiny_lm("llama")
    tgt, ans = _targets(lm)
    orig = lens.capture

    @contextmanager
    def lossy(p, attn=True, mlp=True):
        with orig(p, attn, mlp) as store:
            yield store
            store["hidden"].pop()

    monkeypatch.setattr(lens, "capture", lossy)
    with pytest.raises(RuntimeError, match="captured 2 layer outputs, expected 3"):
        lens.layerwise_pass(lm, PROMPTS, tgt, ans)
    _assert_no_hooks(lm)


# ---------------------------------------------------------------------------------------------
# the real SmolLM2-135M


SMOL_PROMPTS = PROMPTS[:3]  # 3 prompts keep the real-model tests fast (a pass costs 30 x 49k logits)


@pytest.fixture(scope="module")
def smollm2_batch(smollm2):
    tgt, ans = _targets(smollm2)
    tgt = tgt[:len(SMOL_PROMPTS)]
    return tgt, ans, assert_lens_is_model(smollm2, SMOL_PROMPTS, tgt, ans)


@pytest.mark.slow
def test_lens_at_last_layer_is_the_model_smollm2(smollm2, smollm2_batch):
    tgt, ans, res = smollm2_batch
    assert smollm2.num_layers == 30
    assert_features_valid(res, len(SMOL_PROMPTS), 30, ans, targets=tgt)


@pytest.mark.slow
def test_batched_equals_single_smollm2(smollm2, smollm2_batch):
    tgt, ans, batched = smollm2_batch
    lengths = {len(smollm2.tokenizer(p)["input_ids"]) for p in SMOL_PROMPTS}
    assert len(lengths) == len(SMOL_PROMPTS), "prompts of different lengths"
    # a near-tie (|logit difference| < 1e-5 in a 49k vocabulary) may move the target's rank by one
    # only the padded prompts (each real-model pass costs seconds: 30 layers x 49k-token lens)
    assert_batched_equals_single(smollm2, SMOL_PROMPTS, tgt, ans, rank_slack=2, batched=batched,
                                 padded_only=True)


@pytest.mark.slow
def test_no_hook_left_smollm2(smollm2, monkeypatch):
    base = _baseline(smollm2)
    tgt, ans = _targets(smollm2)
    monkeypatch.setattr(smollm2.parts.mlp[5], "forward", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("mlp 6 exploded")))
    with pytest.raises(RuntimeError, match="exploded"):
        lens.layerwise_pass(smollm2, PROMPTS[:1], tgt[:1], ans)
    _assert_no_hooks(smollm2, base)
