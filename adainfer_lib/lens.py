"""The hooked layer-wise forward pass (paper §3-4, Appendix B; "logit lens").

ONE forward pass per batch gives, for every example and every decoder layer l = 1..L, at the last
prompt token (prompts are left-padded, so that is position -1):

- the lens distribution ``P_l = softmax(head(final_norm(h_l)))`` over the whole vocabulary and from
  it ``top1_id``, ``top2_id``, ``gap = P(top1) - P(top2)``, ``top_prob = P(top1)``, the target's
  probability and rank, the entropy and ``kl_prev = KL(P_l || P_{l-1})``;
- the lens restricted to the task's answer tokens (renormalised over those ids): ``ans_top1_id``,
  ``ans_gap``, ``ans_top_prob`` (depth-/answer-aware features, see ALGORITHM.md "known traps");
- the factor-study cosines (§4.1, §5.7) between layer l and l-1 of the attention output, the MLP
  output and the hidden state (for l = 1 the hidden state is compared with the layer's input,
  i.e. the embeddings; attention/MLP cosines are NaN at l = 1: there is no previous layer).

Hooks are registered by the :func:`capture` context manager and removed in ``finally``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .arch import Parts, first_tensor, last_token, lens_logits
from .models import LM

LENS_CHUNK_ELEMENTS = 1 << 27  # logits held at once (512 MB of float32) when stacking layers
FEATURE_NAMES: tuple[str, ...] = (
    "top1_id", "top2_id", "gap", "top_prob", "target_prob", "target_rank", "entropy", "kl_prev",
    "ans_top1_id", "ans_gap", "ans_top_prob", "cos_attn", "cos_mlp", "cos_hidden",
)


@contextmanager
def capture(p: Parts, attn: bool = True, mlp: bool = True) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Record, at the last position, each layer's input (layer 1 only), output, attention output
    and MLP output. Yields a dict of lists of (batch, hidden) tensors, filled during the forward."""
    store: dict[str, list[torch.Tensor]] = {"input": [], "hidden": [], "attn": [], "mlp": []}
    handles = []

    def saver(key: str):
        def hook(_mod, _inp, out):
            store[key].append(last_token(first_tensor(out), store["input"][-1].shape[0]).detach())
        return hook

    def save_input(_mod, args, kwargs):
        h = args[0] if args else kwargs["hidden_states"]
        store["input"].append(h[:, -1, :].detach())

    try:
        handles.append(p.layers[0].register_forward_pre_hook(save_input, with_kwargs=True))
        for i, layer in enumerate(p.layers):
            handles.append(layer.register_forward_hook(saver("hidden")))
            if attn:
                handles.append(p.attn[i].register_forward_hook(saver("attn")))
            if mlp:
                handles.append(p.mlp[i].register_forward_hook(saver("mlp")))
        yield store
    finally:
        for h in handles:
            h.remove()


@dataclass
class LayerwiseResult:
    """Per-layer features at the last prompt token. Every tensor has shape (batch, layers)."""

    features: dict[str, torch.Tensor]

    def __post_init__(self) -> None:
        shapes = {k: tuple(v.shape) for k, v in self.features.items()}
        if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 2:
            raise ValueError(f"layer-wise features must all be (batch, layers): {shapes}")

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(next(iter(self.features.values())).shape)  # type: ignore[return-value]


def model_inputs(lm: LM, prompts: list[str]) -> dict[str, torch.Tensor]:
    """Left-padded batch with position ids that ignore the padding, so batched == unbatched."""
    enc = lm.tokenizer(prompts, return_tensors="pt", padding=True)
    mask = enc["attention_mask"]
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": enc["input_ids"].to(lm.device), "attention_mask": mask.to(lm.device),
            "position_ids": pos.to(lm.device)}


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.float(), b.float(), dim=-1)


def lens_features(p: Parts, hidden: torch.Tensor, target_ids: torch.Tensor,
                  answer_ids: torch.Tensor | None, prev_logp: torch.Tensor | None
                  ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Features of ONE layer. hidden: (batch, hidden); target_ids: (batch,); answer_ids: (A,).

    Returns ({name: (batch,)}, log-probabilities (batch, vocab) for the next layer's KL).
    """
    return logit_features(lens_logits(p, hidden).float(), target_ids, answer_ids, prev_logp)


def logit_features(logits: torch.Tensor, target_ids: torch.Tensor, answer_ids: torch.Tensor | None,
                   prev_logp: torch.Tensor | None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """:func:`lens_features` from precomputed lens logits (batch, vocab)."""
    logp = torch.log_softmax(logits, dim=-1)                         # (batch, vocab)
    prob = logp.exp()
    top = prob.topk(2, dim=-1)                                       # values/indices (batch, 2)
    tgt_logit = logits.gather(1, target_ids[:, None])                # (batch, 1)
    out = {
        "top1_id": top.indices[:, 0], "top2_id": top.indices[:, 1],
        "gap": top.values[:, 0] - top.values[:, 1], "top_prob": top.values[:, 0],
        "target_prob": prob.gather(1, target_ids[:, None])[:, 0],
        "target_rank": (logits > tgt_logit).sum(-1),
        "entropy": -(prob * logp).sum(-1),
        "kl_prev": (prob * (logp - prev_logp)).sum(-1) if prev_logp is not None
        else torch.full_like(top.values[:, 0], float("nan")),
    }
    if answer_ids is not None:
        a = torch.softmax(logits[:, answer_ids], dim=-1)             # (batch, A)
        at = a.topk(2, dim=-1)
        out.update(ans_top1_id=answer_ids[at.indices[:, 0]], ans_gap=at.values[:, 0] - at.values[:, 1],
                   ans_top_prob=at.values[:, 0])
    else:
        nan = torch.full_like(top.values[:, 0], float("nan"))
        out.update(ans_top1_id=torch.full_like(top.indices[:, 0], -1), ans_gap=nan, ans_top_prob=nan)
    return out, logp


@torch.no_grad()
def layerwise_pass(lm: LM, prompts: list[str], target_ids: list[int],
                   answer_ids: list[int] | None = None, cosines: bool = True) -> LayerwiseResult:
    """One hooked forward pass over a batch of prompts; features for all L layers.

    The base decoder runs once (the model's own head is not needed: the lens at layer L IS the
    model's last-token prediction). Returns a :class:`LayerwiseResult` of (batch, L) tensors.
    """
    p = lm.parts
    inputs = model_inputs(lm, prompts)
    tgt = torch.tensor(target_ids, device=lm.device)
    ans = torch.tensor(answer_ids, device=lm.device) if answer_ids else None
    with capture(p, attn=cosines, mlp=cosines) as store:
        p.base(**inputs, use_cache=False)
    L = len(p.layers)
    if len(store["hidden"]) != L:
        raise RuntimeError(f"captured {len(store['hidden'])} layer outputs, expected {L}")
    cols: dict[str, list[torch.Tensor]] = {k: [] for k in FEATURE_NAMES}
    prev = None
    hidden = torch.stack(store["hidden"], dim=0)                      # (L, batch, hidden)
    # The head is applied to all layers at once, in chunks of layers: one pass over the (vocab x
    # hidden) weight per chunk instead of per layer (memory-bound on CPU for big vocabularies).
    step = max(1, min(L, LENS_CHUNK_ELEMENTS // max(1, len(prompts) * p.head.weight.shape[0])))
    logits_chunk: torch.Tensor | None = None
    for l in range(L):
        if l % step == 0:
            logits_chunk = lens_logits(p, hidden[l:l + step]).float()   # (step, batch, vocab)
        feats, prev = logit_features(logits_chunk[l % step], tgt, ans, prev)
        for k, v in feats.items():
            cols[k].append(v)
        nan = torch.full((len(prompts),), float("nan"), device=lm.device)
        prev_h = store["hidden"][l - 1] if l else store["input"][0]
        cols["cos_hidden"].append(_cos(store["hidden"][l], prev_h))
        cols["cos_attn"].append(_cos(store["attn"][l], store["attn"][l - 1]) if cosines and l else nan)
        cols["cos_mlp"].append(_cos(store["mlp"][l], store["mlp"][l - 1]) if cosines and l else nan)
    return LayerwiseResult({k: torch.stack(v, dim=1).cpu() for k, v in cols.items()})
