"""Tiny random causal LMs of every supported family, built from config in-process (no downloads).

``tiny_model(model_type)`` returns a seeded, eval-mode model with 2-3 layers, hidden size 32 and a
160-token vocabulary; ``tiny_tokenizer()`` a matching character-level fast tokenizer (left
padding, ``<s>`` prepended, " x" merged into one token so a target " answer" has its own first
token); ``tiny_lm(model_type)`` wraps both in :class:`adainfer_lib.models.LM`, so the real
``lens.layerwise_pass`` / ``features`` code paths run on them.

Extra variant: ``"opt_350m"`` is an OPT with ``do_layer_norm_before=False`` (no final norm) and
``word_embed_proj_dim != hidden_size`` (``project_in`` / ``project_out``), as facebook/opt-350m.
"""

from __future__ import annotations

import functools
import string

import torch
import transformers as T
from tokenizers import Tokenizer, models, processors

from adainfer_lib.models import LM

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
VOCAB_SIZE = 160            # 4 specials + 100 printable characters + 52 " <letter>" tokens, padded
MAX_POSITIONS = 512
MAX_PARAMS = 1_000_000      # every tiny model must stay below this (a misspelt key gives a big model)

# Families transformers can build; the tests iterate over these (plus the OPT variant).
FAMILIES: tuple[str, ...] = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text",
                             "phi", "phi3", "opt", "gpt2", "gptj", "gpt_neox")
VARIANTS: tuple[str, ...] = FAMILIES + ("opt_350m",)
NOT_GATED = {"phi", "opt", "opt_350m", "gpt2", "gptj", "gpt_neox"}

_IDS = dict(vocab_size=VOCAB_SIZE, pad_token_id=PAD_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID)
_LLAMA_LIKE = dict(_IDS, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=8, max_position_embeddings=MAX_POSITIONS,
                   initializer_range=0.2, tie_word_embeddings=False)

# model_type -> (config class, model class, config kwargs)
_SPECS: dict[str, tuple[type, type, dict]] = {
    "llama": (T.LlamaConfig, T.LlamaForCausalLM, _LLAMA_LIKE),
    "mistral": (T.MistralConfig, T.MistralForCausalLM, dict(_LLAMA_LIKE, sliding_window=None)),
    "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM, _LLAMA_LIKE),
    "qwen3": (T.Qwen3Config, T.Qwen3ForCausalLM, _LLAMA_LIKE),
    "gemma": (T.GemmaConfig, T.GemmaForCausalLM, dict(_LLAMA_LIKE, tie_word_embeddings=True)),
    # small soft-cap: the capping changes the logits a lot, so a lens without it would not match
    "gemma2": (T.Gemma2Config, T.Gemma2ForCausalLM,
               dict(_LLAMA_LIKE, tie_word_embeddings=True, final_logit_softcapping=1.5,
                    attn_logit_softcapping=20.0, sliding_window=6, query_pre_attn_scalar=8)),
    "gemma3_text": (T.Gemma3TextConfig, T.Gemma3ForCausalLM,
                    dict(_LLAMA_LIKE, tie_word_embeddings=True, final_logit_softcapping=1.5,
                         sliding_window=6, query_pre_attn_scalar=8,
                         layer_types=["sliding_attention", "sliding_attention", "full_attention"])),
    "phi": (T.PhiConfig, T.PhiForCausalLM,
            dict(_IDS, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                 max_position_embeddings=MAX_POSITIONS, initializer_range=0.2)),
    "phi3": (T.Phi3Config, T.Phi3ForCausalLM, dict(_LLAMA_LIKE, head_dim=None)),
    "opt": (T.OPTConfig, T.OPTForCausalLM,
            dict(_IDS, hidden_size=32, ffn_dim=64, num_hidden_layers=3, num_attention_heads=4,
                 max_position_embeddings=MAX_POSITIONS, word_embed_proj_dim=32, init_std=0.2)),
    "opt_350m": (T.OPTConfig, T.OPTForCausalLM,
                 dict(_IDS, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                      max_position_embeddings=MAX_POSITIONS, word_embed_proj_dim=16, init_std=0.2,
                      do_layer_norm_before=False)),
    "gpt2": (T.GPT2Config, T.GPT2LMHeadModel,
             dict(_IDS, n_embd=32, n_layer=3, n_head=4, n_positions=MAX_POSITIONS, n_inner=64,
                  initializer_range=0.2)),
    "gptj": (T.GPTJConfig, T.GPTJForCausalLM,
             dict(_IDS, n_embd=32, n_layer=2, n_head=4, n_positions=MAX_POSITIONS, rotary_dim=4, n_inner=64,
                  initializer_range=0.2)),
    "gpt_neox": (T.GPTNeoXConfig, T.GPTNeoXForCausalLM,
                 dict(_IDS, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                      max_position_embeddings=MAX_POSITIONS, initializer_range=0.2)),
}
assert set(_SPECS) == set(VARIANTS)


def tiny_config(model_type: str) -> T.PretrainedConfig:
    """The config of :func:`tiny_model` (eager attention)."""
    config_cls, _, kwargs = _SPECS[model_type]
    kwargs = {k: v for k, v in kwargs.items() if not (v is None and k == "head_dim")}
    config = config_cls(**kwargs)
    config._attn_implementation = "eager"
    return config


def tiny_model(model_type: str, seed: int = 0) -> T.PreTrainedModel:
    """A seeded random tiny causal LM of ``model_type`` (one of :data:`VARIANTS`), eval mode, float32."""
    _, model_cls, _ = _SPECS[model_type]
    torch.manual_seed(seed)
    model = model_cls(tiny_config(model_type)).eval()
    n = sum(p.numel() for p in model.parameters())
    assert n < MAX_PARAMS, f"tiny {model_type} has {n} parameters: a config key is probably misspelt"
    return model


@functools.lru_cache(maxsize=1)
def _tokenizer_object() -> Tokenizer:
    chars = list(dict.fromkeys(string.printable))          # 100 characters incl. " " and "\n"
    tokens = list(SPECIALS) + chars + [" " + c for c in string.ascii_letters]
    tokens += [f"<extra_{i}>" for i in range(VOCAB_SIZE - len(tokens))]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == VOCAB_SIZE
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[(" ", c) for c in string.ascii_letters],
                               unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                       special_tokens=[("<s>", BOS_ID)])
    return tok


def tiny_tokenizer() -> T.PreTrainedTokenizerFast:
    """Character-level tokenizer (``<s>`` prepended, left padding, pad ``<pad>``) for the tiny models."""
    return T.PreTrainedTokenizerFast(tokenizer_object=_tokenizer_object().from_str(_tokenizer_object().to_str()),
                                     pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                     eos_token="</s>", padding_side="left")


def tiny_lm(model_type: str, seed: int = 0) -> LM:
    """:class:`LM` wrapping :func:`tiny_model` and :func:`tiny_tokenizer`."""
    return LM(model=tiny_model(model_type, seed), tokenizer=tiny_tokenizer(), name=f"tiny-{model_type}",
              source="tests/tiny_models.py")
