"""Everything architecture-specific, in one place (cf. tuned-lens ``model_surgery.py``).

For a Hugging Face causal LM this module finds: the base decoder (the module whose forward runs
embeddings -> decoder layers -> final norm), the list of decoder layers, each layer's attention and
MLP submodules, the final norm, the unembedding (LM head) and any post-head transform (Gemma's
final logit soft-capping, OPT's ``project_out``). It also reads the dimensions the FLOPs count needs.

The logit lens (paper §3.2, Appendix B: ``P = softmax(W H + b)``) is then two lines:
``lens_logits(model, h) = head(final_norm(h))``.

Supported ``model_type``: llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3, gemma3_text, phi,
phi3, opt, gpt2, gptj, gpt_neox. Anything else raises ``NotImplementedError``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .flops import ModelDims

# model_type -> (base attr path, layers attr, final norm attr, head attr, attn attr, mlp attr)
# Paths are dotted attribute paths from the *causal LM* object.
_LLAMA_LIKE = ("model", "model.layers", "model.norm", "lm_head", "self_attn", "mlp")
_FAMILIES: dict[str, tuple[str, str, str, str, str, str]] = {
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "gemma": _LLAMA_LIKE,
    "gemma2": _LLAMA_LIKE,
    "gemma3_text": _LLAMA_LIKE,
    "phi3": _LLAMA_LIKE,
    "phi": ("model", "model.layers", "model.final_layernorm", "lm_head", "self_attn", "mlp"),
    # OPT has no MLP module: fc2's output is the MLP output.
    "opt": ("model.decoder", "model.decoder.layers", "model.decoder.final_layer_norm", "lm_head",
            "self_attn", "fc2"),
    "gpt2": ("transformer", "transformer.h", "transformer.ln_f", "lm_head", "attn", "mlp"),
    "gptj": ("transformer", "transformer.h", "transformer.ln_f", "lm_head", "attn", "mlp"),
    "gpt_neox": ("gpt_neox", "gpt_neox.layers", "gpt_neox.final_layer_norm", "lm_head",
                 "attention", "mlp"),
}
_GATED_MLP = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3"}
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted(_FAMILIES))


def _get(obj: object, dotted: str) -> nn.Module:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[return-value]


def model_type(model: nn.Module) -> str:
    """The config's ``model_type``; multimodal Gemma-3 wrappers map to their text model."""
    mt = getattr(model.config, "model_type", None)
    if mt == "gemma3" and hasattr(model.config, "text_config"):
        raise NotImplementedError(
            "multimodal gemma3 checkpoints: load the text model (Gemma3ForCausalLM) instead")
    if mt == "gemma3":
        mt = "gemma3_text"
    if mt not in _FAMILIES:
        raise NotImplementedError(
            f"Unknown model type {mt!r}: adainfer_lib.arch supports {', '.join(SUPPORTED_MODEL_TYPES)}. "
            "Add its layer, norm and head paths to arch._FAMILIES.")
    return mt


@dataclass(frozen=True)
class Parts:
    """The submodules of one causal LM that the lens, the hooks and the engine need."""

    base: nn.Module                 # embeddings -> layers -> final norm
    layers: nn.ModuleList           # L decoder blocks, in order
    final_norm: nn.Module           # applied to the residual stream before the head
    head: nn.Module                 # (.., hidden) -> (.., vocab)
    attn: tuple[nn.Module, ...]     # attention submodule of each layer
    mlp: tuple[nn.Module, ...]      # MLP submodule (or its output projection) of each layer
    project_out: nn.Module | None   # OPT-350m style projection between norm and head
    softcap: float | None           # Gemma-2/3 final logit soft-capping


def parts(model: nn.Module) -> Parts:
    """Locate the decoder layers, attention, MLP, final norm and LM head of ``model``."""
    mt = model_type(model)
    base_p, layers_p, norm_p, head_p, attn_a, mlp_a = _FAMILIES[mt]
    layers = _get(model, layers_p)
    norm = _get(model, norm_p)
    if norm is None:  # OPT with do_layer_norm_before=False
        norm = nn.Identity()
    project_out = getattr(_get(model, base_p), "project_out", None) if mt == "opt" else None
    return Parts(
        base=_get(model, base_p),
        layers=layers,
        final_norm=norm,
        head=_get(model, head_p),
        attn=tuple(getattr(layer, attn_a) for layer in layers),
        mlp=tuple(getattr(layer, mlp_a) for layer in layers),
        project_out=project_out,
        softcap=getattr(model.config, "final_logit_softcapping", None),
    )


def lens_logits(p: Parts, hidden: torch.Tensor) -> torch.Tensor:
    """Logit lens: the model's own final norm and head applied to a residual stream.

    hidden: (..., hidden) residual stream AFTER a decoder block (not final-normed; note HF's
    ``hidden_states[-1]`` is already normed, we never use it). Returns (..., vocab) logits.
    """
    h = p.final_norm(hidden)
    if p.project_out is not None:
        h = p.project_out(h)
    logits = p.head(h)
    if p.softcap is not None:
        logits = torch.tanh(logits / p.softcap) * p.softcap
    return logits


def lens_logits_subset(p: Parts, hidden: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The lens restricted to vocabulary ``ids`` (A,): (..., hidden) -> (..., A) logits.

    Costs 2*hidden*A FLOPs per row instead of 2*hidden*V: what an exit check on a classification
    task's answer tokens needs. Equal to ``lens_logits(p, hidden)[..., ids]``.
    """
    h = p.final_norm(hidden)
    if p.project_out is not None:
        h = p.project_out(h)
    w = p.head.weight[ids]                                           # (A, hidden)
    logits = h @ w.T
    if getattr(p.head, "bias", None) is not None:
        logits = logits + p.head.bias[ids]
    if p.softcap is not None:
        logits = torch.tanh(logits / p.softcap) * p.softcap
    return logits


def first_tensor(output: object) -> torch.Tensor:
    """A module's main output: itself if a tensor, else the first element of a tuple/ModelOutput."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return output[0]
    return output[0]  # type: ignore[index]  # ModelOutput supports indexing


def last_token(t: torch.Tensor, batch: int) -> torch.Tensor:
    """(batch, seq, hidden) -> (batch, hidden) at the last position. OPT runs its MLP (fc2) on a
    flattened (batch*seq, hidden) tensor: that is unflattened first."""
    if t.dim() == 2:
        t = t.view(batch, -1, t.shape[-1])
    return t[:, -1, :]


def model_dims(config: object) -> ModelDims:
    """Dimensions for the FLOPs count, read from a HF config of any supported family."""
    mt = getattr(config, "model_type", "")
    if mt == "gemma3" and hasattr(config, "text_config"):
        config = config.text_config
        mt = "gemma3_text"
    c = config

    def first(*names: str) -> int | None:
        for n in names:
            v = getattr(c, n, None)
            if v is not None:
                return int(v)
        return None

    hidden = first("hidden_size", "n_embd")
    layers = first("num_hidden_layers", "n_layer")
    heads = first("num_attention_heads", "n_head")
    if hidden is None or layers is None or heads is None:
        raise NotImplementedError(f"cannot read dimensions from config of type {mt!r}")
    kv = first("num_key_value_heads") or heads
    head_dim = first("head_dim") or hidden // heads
    inter = first("intermediate_size", "ffn_dim", "n_inner") or 4 * hidden
    vocab = first("vocab_size")
    return ModelDims(num_layers=layers, hidden_size=hidden, intermediate_size=inter,
                     num_heads=heads, num_kv_heads=kv, head_dim=head_dim,
                     vocab_size=int(vocab or 0), gated_mlp=mt in _GATED_MLP)
