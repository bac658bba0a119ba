"""A real early-exit engine (paper §4, Figure 2): stop computing an example once it exits.

The model's own forward runs the embeddings and the decoder layers in order. Hooks on every layer
turn it into an early-exit loop without re-implementing any architecture:

- after layer l (forward hook): the lens features of the still-active examples are computed at the
  last token (:func:`lens.lens_features`, the same code as the features table), the policy decides
  on the prefix 1..l of each example, exited examples record ``exit_layer = l`` and
  ``pred_id = top1_id`` at l, and the layer's output is SLICED to the remaining examples;
- before layer l+1 (forward pre-hook): every batch-first keyword argument the model passes to the
  layer (attention mask, rotary position embeddings, position ids) is sliced the same way;
- when no example is left, an internal exception stops the forward: no later layer, final norm
  or head runs. Layer L exits everyone (the model's own answer).

So the remaining compute shrinks with the batch, for every architecture :mod:`arch` supports.
The predictions and exit layers equal :func:`policies.simulate` on the features table (tested).

Exit checks cost what the policy needs (:func:`lens_need`): the paper's features (gap, top_prob)
need the lens over the whole vocabulary at every layer; answer-restricted features need only the
answer tokens' logits; static depth needs nothing. The full lens runs once more at the exit layer
when the per-layer check did not already compute it (its argmax is the prediction).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from .arch import first_tensor, last_token, lens_logits, lens_logits_subset
from .lens import FEATURE_NAMES, _cos, lens_features, model_inputs
from .models import LM

# Features readable from the lens restricted to the task's answer tokens (plus depth): a policy
# using only these never needs the full-vocabulary head before its exit layer.
ANSWER_ONLY_FEATURES = frozenset({"ans_gap", "ans_top_prob", "ans_top1_changed", "rel_depth"})
# Features computed from the layer index alone: they need no lens at all.
DEPTH_ONLY_FEATURES = frozenset({"rel_depth"})


def lens_need(policy) -> str:
    """What an exit check of ``policy`` must compute at every layer before its exit:
    "full" (the lens over the whole vocabulary: gap, top_prob, policies declaring
    ``needs_full_lens = True`` such as the oracle, and policies without ``feature_names``),
    "answer" (only the answer-token logits) or "none" (static depth, full model). At the exit layer
    the full lens runs once in every case: the prediction is its argmax."""
    if getattr(policy, "needs_full_lens", False) or not hasattr(policy, "feature_names"):
        return "full"
    names = set(policy.feature_names()) - DEPTH_ONLY_FEATURES
    if not names:  # static depth, full model, or a score of the layer index alone (calibrated depth)
        return "none"
    return "answer" if names <= ANSWER_ONLY_FEATURES else "full"


class _AllExited(Exception):
    """Raised inside the forward once every example has exited."""


@dataclass
class _State:
    batch: int                                   # original batch size B
    active: torch.Tensor                         # (n_active,) original indices still running
    prev_logp: torch.Tensor | None = None        # (n_active, vocab)
    prev: dict[str, torch.Tensor] = field(default_factory=dict)  # last-token attn/mlp/hidden
    history: list[pd.DataFrame] = field(default_factory=list)
    exit_layer: np.ndarray | None = None         # (B,)
    pred_id: np.ndarray | None = None            # (B,)
    batch_per_layer: list[int] = field(default_factory=list)


def _slice(x: object, keep: torch.Tensor, batch: int) -> object:
    """Slice batch-first tensors (dim >= 2 and size(0) == batch) inside args/kwargs structures."""
    if isinstance(x, torch.Tensor):
        return x.index_select(0, keep.to(x.device)) if x.dim() >= 2 and x.size(0) == batch else x
    if isinstance(x, tuple):
        return tuple(_slice(v, keep, batch) for v in x)
    if isinstance(x, list):
        return [_slice(v, keep, batch) for v in x]
    return x


@torch.no_grad()
def run_early_exit(lm: LM, prompts: list[str], policy, *, target_ids: list[int] | None = None,
                   answer_ids: list[int] | None = None, example_ids: list[int] | None = None,
                   extra_columns: dict[str, list] | None = None) -> pd.DataFrame:
    """Early-exit inference on one batch of prompts.

    ``policy``: a fitted policy from :mod:`policies` (``predict(frame)`` -> per-row exit signals,
    computed online from layers 1..l). ``target_ids`` are needed only by the oracle and to score.
    ``extra_columns`` are constant-per-example columns the policy's frame should carry (e.g.
    ``task``, ``shots``). Returns one row per prompt: ``example_id``, ``exit_layer``, ``pred_id``,
    ``target_id`` (or -1), ``correct``, ``seq_len``; and ``df.attrs["batch_per_layer"]``, the
    number of examples each layer actually ran on.
    """
    p = lm.parts
    L = len(p.layers)
    inputs = model_inputs(lm, prompts)
    B = len(prompts)
    ids = np.asarray(example_ids if example_ids is not None else range(B))
    tgt = torch.tensor(target_ids if target_ids is not None else [0] * B, device=lm.device)
    ans = torch.tensor(answer_ids, device=lm.device) if answer_ids else None
    seq_len = inputs["attention_mask"].sum(-1).cpu().numpy()
    st = _State(batch=B, active=torch.arange(B), exit_layer=np.zeros(B, int), pred_id=np.zeros(B, int))
    extra = extra_columns or {}
    need = lens_need(policy)
    want_attn = any(f == "cos_attn" for f in getattr(policy, "feature_names", lambda: [])())
    want_mlp = any(f == "cos_mlp" for f in getattr(policy, "feature_names", lambda: [])())
    scratch: dict[str, torch.Tensor] = {}

    def pre_hook(layer_idx: int):
        def hook(_mod, args, kwargs):
            st.batch_per_layer.append(int(st.active.numel()))
            if st.active.numel() == B:
                return None
            if layer_idx == 0:  # cannot happen: nothing exits before layer 1
                return None
            # args[0] (hidden states) arrives already sliced; masks may come positionally (gpt2)
            return ((args[0],) + tuple(_slice(v, st.active, B) for v in args[1:]),
                    {k: _slice(v, st.active, B) for k, v in kwargs.items()})
        return hook

    def save(key: str):
        def hook(_mod, _inp, out):
            scratch[key] = last_token(first_tensor(out), int(st.active.numel()))
        return hook

    def post_hook(layer_idx: int):
        def hook(_mod, args, kwargs, output):
            out = first_tensor(output)
            h = out[:, -1, :]                                                # (n_active, hidden)
            act = st.active
            if need == "full":
                feats, logp = lens_features(p, h, tgt[act], ans, st.prev_logp)
            else:  # cheap check: nothing, or only the answer-token logits (A x hidden per row)
                nan = torch.full((act.numel(),), float("nan"))
                feats = {k: nan for k in FEATURE_NAMES}
                feats["top1_id"] = torch.full((act.numel(),), -1)
                feats["ans_top1_id"] = torch.full((act.numel(),), -1)
                logp = None
                if need == "answer" and ans is not None:
                    a = torch.softmax(lens_logits_subset(p, h, ans).float(), dim=-1)  # (n_active, A)
                    at = a.topk(2, dim=-1)
                    feats.update(ans_top1_id=ans[at.indices[:, 0]], ans_gap=at.values[:, 0] - at.values[:, 1],
                                 ans_top_prob=at.values[:, 0])
            if layer_idx == 0:
                h_in = (args[0] if args else kwargs["hidden_states"])[:, -1, :]
                feats["cos_hidden"] = _cos(h, h_in)
            else:
                feats["cos_hidden"] = _cos(h, st.prev["hidden"])
            for key, want in (("attn", want_attn), ("mlp", want_mlp)):
                feats[f"cos_{key}"] = (_cos(scratch[key], st.prev[key]) if want and layer_idx
                                       else torch.full((act.numel(),), float("nan")))
            row = {k: v.detach().cpu().numpy() for k, v in feats.items()}
            a = act.numpy()
            row.update(example_id=ids[a], layer=layer_idx + 1, num_layers=L, target_id=tgt[act].cpu().numpy(),
                       seq_len=seq_len[a], **{k: np.asarray(v)[a] for k, v in extra.items()})
            st.history.append(pd.DataFrame(row))
            frame = pd.concat(st.history, ignore_index=True)
            frame = frame[frame["example_id"].isin(ids[a])]
            signal = np.asarray(policy.predict(frame))[frame["layer"].to_numpy() == layer_idx + 1]
            # predict() returns rows in input order; current-layer rows follow the order of `act`
            exit_now = (signal.astype(bool)) | (layer_idx + 1 == L)
            st.exit_layer[a[exit_now]] = layer_idx + 1
            if need == "full":
                st.pred_id[a[exit_now]] = row["top1_id"][exit_now]
            elif exit_now.any():  # the one full-vocabulary lens evaluation, at the exit layer
                st.pred_id[a[exit_now]] = lens_logits(p, h[torch.from_numpy(exit_now)]).argmax(-1).cpu().numpy()
            keep = torch.from_numpy(~exit_now).nonzero().flatten()
            if keep.numel() == 0:
                raise _AllExited
            st.active = act[keep]
            st.prev_logp = logp[keep] if logp is not None else None
            st.prev = {"hidden": h[keep]}
            for key, want in (("attn", want_attn), ("mlp", want_mlp)):
                if want:
                    st.prev[key] = scratch[key][keep]
            if keep.numel() == act.numel():
                return None
            sliced = out.index_select(0, keep.to(out.device))
            if isinstance(output, torch.Tensor):
                return sliced
            return (sliced,) + tuple(_slice(o, keep, act.numel()) for o in output[1:])
        return hook

    handles = []
    try:
        for i, layer in enumerate(p.layers):
            handles.append(layer.register_forward_pre_hook(pre_hook(i), with_kwargs=True))
            handles.append(layer.register_forward_hook(post_hook(i), with_kwargs=True))
            if want_attn:
                handles.append(p.attn[i].register_forward_hook(save("attn")))
            if want_mlp:
                handles.append(p.mlp[i].register_forward_hook(save("mlp")))
        try:
            p.base(**inputs, use_cache=False)
        except _AllExited:
            pass
        else:  # pragma: no cover - layer L always exits everyone
            raise RuntimeError("early-exit forward finished without every example exiting")
    finally:
        for h in handles:
            h.remove()
    res = pd.DataFrame({"example_id": ids, "exit_layer": st.exit_layer, "pred_id": st.pred_id,
                        "target_id": tgt.cpu().numpy() if target_ids is not None else -1,
                        "seq_len": seq_len, "num_layers": L})
    res["correct"] = (res["pred_id"] == res["target_id"]) if target_ids is not None else False
    res.attrs["batch_per_layer"] = st.batch_per_layer
    return res
