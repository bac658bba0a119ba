"""adainfer_lib.arch on a tiny random model of every supported family (built from config, offline)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import transformers as T

from adainfer_lib import arch, lens
from tiny_models import FAMILIES, MAX_PARAMS, NOT_GATED, VARIANTS, tiny_config, tiny_lm, tiny_model

PROMPTS = ["Q: apple\nA:", "Q: the quick brown fox jumps over\nA:", "Q: x\nA: y\n\nQ: zebra\nA:"]


@pytest.fixture(scope="module", params=VARIANTS)
def lm(request):
    return tiny_lm(request.param)


def test_every_supported_family_has_a_tiny_model():
    # gemma3 (multimodal) is not a causal-LM type of its own: it maps to gemma3_text
    assert set(arch.SUPPORTED_MODEL_TYPES) == set(FAMILIES)


@pytest.mark.parametrize("model_type", VARIANTS)
def test_tiny_models_are_tiny(model_type):
    model = tiny_model(model_type)
    n = sum(p.numel() for p in model.parameters())
    assert n < MAX_PARAMS, f"{model_type}: {n} parameters"
    assert model.config.model_type == model_type.replace("opt_350m", "opt")
    assert not model.training


def test_parts_finds_layers_attention_mlp(lm):
    p = lm.parts
    L = lm.model.config.num_hidden_layers
    assert len(p.layers) == L == lm.num_layers
    assert len(p.attn) == len(p.mlp) == L
    for i, layer in enumerate(p.layers):
        children = set(layer.modules())
        assert p.attn[i] in children and p.mlp[i] in children
        assert p.attn[i] is not p.mlp[i]
    assert len({id(m) for m in p.attn}) == L and len({id(m) for m in p.mlp}) == L
    assert isinstance(p.head, torch.nn.Linear)
    assert p.head.out_features == lm.model.config.vocab_size
    assert p.base in set(lm.model.modules()) and p.base is not lm.model
    all_modules = set(p.base.modules())
    assert all(layer in all_modules for layer in p.layers)


def test_parts_special_cases():
    g2 = arch.parts(tiny_model("gemma2"))
    assert g2.softcap == pytest.approx(1.5)
    assert arch.parts(tiny_model("llama")).softcap is None
    opt = arch.parts(tiny_model("opt"))
    assert isinstance(opt.final_norm, torch.nn.LayerNorm) and opt.project_out is None
    opt350 = arch.parts(tiny_model("opt_350m"))
    assert isinstance(opt350.final_norm, torch.nn.Identity)       # do_layer_norm_before=False
    assert isinstance(opt350.project_out, torch.nn.Linear)         # word_embed_proj_dim != hidden


@torch.no_grad()
def test_lens_at_last_layer_is_the_model_prediction(lm):
    inputs = lens.model_inputs(lm, PROMPTS)
    expected = lm.model(**inputs).logits[:, -1, :]
    with lens.capture(lm.parts) as store:
        lm.parts.base(**inputs, use_cache=False)
    L = lm.num_layers
    assert len(store["hidden"]) == len(store["attn"]) == len(store["mlp"]) == L
    assert len(store["input"]) == 1
    for key in ("input", "hidden", "attn", "mlp"):
        for t in store[key]:
            assert t.shape == (len(PROMPTS), lm.model.config.hidden_size), key
    got = arch.lens_logits(lm.parts, store["hidden"][-1])
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    # an intermediate layer's lens is a different distribution (the test is not vacuous)
    assert not torch.allclose(arch.lens_logits(lm.parts, store["hidden"][0]), expected, atol=1e-4)


@torch.no_grad()
@pytest.mark.parametrize("model_type", ["gemma2", "gemma3_text", "opt_350m"])
def test_lens_needs_softcap_and_project_out(model_type):
    """Leaving out the soft-cap / projection would not match: the tiny configs exercise them."""
    lm = tiny_lm(model_type)
    inputs = lens.model_inputs(lm, PROMPTS)
    expected = lm.model(**inputs).logits[:, -1, :]
    with lens.capture(lm.parts, attn=False, mlp=False) as store:
        lm.parts.base(**inputs, use_cache=False)
    h = store["hidden"][-1]
    torch.testing.assert_close(arch.lens_logits(lm.parts, h), expected, atol=1e-4, rtol=0)
    if lm.parts.softcap is not None:
        broken = dataclasses.replace(lm.parts, softcap=None)
        assert (arch.lens_logits(broken, h) - expected).abs().max() > 1e-2
    if lm.parts.project_out is not None:
        assert lm.parts.project_out.out_features != lm.model.config.hidden_size


@pytest.mark.parametrize("model_type", VARIANTS)
def test_model_dims(model_type):
    config = tiny_config(model_type)
    d = arch.model_dims(config)
    assert d.num_layers == config.num_hidden_layers
    assert d.hidden_size == config.hidden_size == 32
    assert d.vocab_size == config.vocab_size
    assert d.num_heads == config.num_attention_heads == 4
    assert 1 <= d.num_kv_heads <= d.num_heads and d.num_heads % d.num_kv_heads == 0
    assert d.head_dim == 8
    assert d.intermediate_size == 64
    assert d.gated_mlp is (model_type not in NOT_GATED)


def test_model_dims_defaults_and_gemma3_wrapper():
    # GPT-2 without n_inner: 4 * hidden
    d = arch.model_dims(T.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_inner=None))
    assert (d.intermediate_size, d.num_kv_heads, d.head_dim, d.gated_mlp) == (128, 4, 8, False)
    # multimodal Gemma-3 config: the text config's dims
    text = tiny_config("gemma3_text")
    d3 = arch.model_dims(T.Gemma3Config(text_config=text.to_dict()))
    assert (d3.num_layers, d3.hidden_size, d3.gated_mlp) == (3, 32, True)


def _assert_unsupported(err: pytest.ExceptionInfo, name: str) -> None:
    msg = str(err.value)
    assert repr(name) in msg
    for mt in arch.SUPPORTED_MODEL_TYPES:
        assert mt in msg


def test_unknown_model_type_raises_with_supported_list():
    bert = T.BertLMHeadModel(T.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=32, is_decoder=True))
    with pytest.raises(NotImplementedError) as err:
        arch.parts(bert)
    _assert_unsupported(err, "bert")

    fake = torch.nn.Linear(2, 2)
    fake.config = T.PretrainedConfig()
    fake.config.model_type = "foo"
    with pytest.raises(NotImplementedError) as err:
        arch.model_type(fake)
    _assert_unsupported(err, "foo")


def test_multimodal_gemma3_is_refused_with_advice():
    fake = torch.nn.Linear(2, 2)
    fake.config = T.Gemma3Config(text_config=tiny_config("gemma3_text").to_dict())
    with pytest.raises(NotImplementedError, match="Gemma3ForCausalLM"):
        arch.parts(fake)


def test_first_tensor():
    t = torch.ones(2, 3)
    assert arch.first_tensor(t) is t
    assert arch.first_tensor((t, None)) is t
    assert arch.first_tensor([t]) is t
