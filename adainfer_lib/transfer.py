"""Transferring an exit classifier across tasks and models (paper §5.6, Table 6).

The paper trains a classifier on one task's data (intra-task), on other tasks' data (inter-task)
or on another model's features (inter-model: Llama2-7B, 32 layers -> Llama2-13B, 40 layers) and
tests it on sentiment. A classifier transfers across models only if each feature means the same
thing at every depth. Our choice, checked by :func:`check_transferable`:

- depth-free features (:data:`DEPTH_FREE`) are functions of ONE layer's lens distribution (gap,
  top_prob, entropy and their answer-restricted versions): comparable across models by definition,
  whatever their depth. These are the paper's features; the distribution of their values per
  depth still differs between models (paper: "variations in the logits distribution"), which is
  what an inter-model test measures.
- ``rel_depth`` = layer / L is depth-NORMALISED: layer 16 of 32 and layer 20 of 40 both read 0.5.
  This is how our depth-aware features are made comparable; we never feed the absolute layer.
- per-step features (:data:`PER_STEP`) compare layer l with l-1 (cosines, KL, "top-1 changed"):
  defined for any depth, but a model with more layers changes less per layer, so their scale is
  only approximately comparable. Noted, not refused.
- absolute-layer quantities (a static depth d, or a raw ``layer`` feature) are NOT comparable:
  exiting at layer 16 is mid-network for 32 layers and 40% for 40. :func:`rescale_depth` maps a
  static depth proportionally.

A linear-chain CRF additionally learns per-STEP transitions (layer l-1 -> l), so its dynamics are
tied to the source model's layer granularity; the check says so when the depths differ.

Which tasks a training pool may draw from is the protocol (:func:`protocol.training_candidates`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

DEPTH_FREE: frozenset[str] = frozenset({"gap", "top_prob", "entropy", "ans_gap", "ans_top_prob"})
DEPTH_NORMALISED: frozenset[str] = frozenset({"rel_depth"})
PER_STEP: frozenset[str] = frozenset({"cos_attn", "cos_mlp", "cos_hidden", "kl_prev", "top1_changed",
                                      "ans_top1_changed"})
KINDS: tuple[str, ...] = ("depth-free", "depth-normalised", "per-step", "absolute")


def feature_kind(name: str) -> str:
    """One of :data:`KINDS` for a feature name (unknown names, e.g. "layer", count as absolute)."""
    if name in DEPTH_FREE:
        return "depth-free"
    if name in DEPTH_NORMALISED:
        return "depth-normalised"
    if name in PER_STEP:
        return "per-step"
    return "absolute"


@dataclass(frozen=True)
class TransferCheck:
    """Outcome of :func:`check_transferable`: ``ok`` is False only for absolute-layer inputs
    applied to a model of another depth; ``notes`` explain every finding in one sentence each."""

    policy: str
    source_layers: int
    target_layers: int
    kinds: dict[str, str] = field(default_factory=dict)  # feature -> kind
    ok: bool = True
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.source_layers < 1 or self.target_layers < 1:
            raise ValueError(f"layer counts must be >= 1, got {self.source_layers} -> {self.target_layers}")
        bad = {k for k in self.kinds.values() if k not in KINDS}
        if bad:
            raise ValueError(f"unknown feature kind(s) {sorted(bad)}; valid: {list(KINDS)}")


def check_transferable(policy, source_layers: int, target_layers: int, *, warn: bool = True) -> TransferCheck:
    """Can ``policy``, fitted on a model with ``source_layers`` layers, decide exits on a model with
    ``target_layers``? Classifies each feature it reads (:func:`feature_kind`); a static depth is
    absolute. Warns (``UserWarning``) when it is not transferable and ``warn`` is True."""
    name = type(policy).__name__
    features = list(policy.feature_names()) if hasattr(policy, "feature_names") else []
    kinds = {f: feature_kind(f) for f in features}
    same = int(source_layers) == int(target_layers)
    notes: list[str] = []
    ok = True
    if name == "StaticDepthPolicy":
        kinds["depth"] = "absolute"
        if not same:
            ok = False
            notes.append(f"static depth {policy.depth} is an absolute layer: on {target_layers} layers use "
                         f"rescale_depth(...) = {rescale_depth(policy.depth, source_layers, target_layers)}")
    absolute = [f for f, k in kinds.items() if k == "absolute" and f != "depth"]
    if absolute and not same:
        ok = False
        notes.append(f"feature(s) {absolute} read the absolute layer index: not comparable between "
                     f"{source_layers} and {target_layers} layers; use rel_depth = layer / L instead")
    step = [f for f, k in kinds.items() if k == "per-step"]
    if step and not same:
        notes.append(f"per-step feature(s) {step} compare consecutive layers: their scale differs between "
                     f"{source_layers} and {target_layers} layers (approximately comparable)")
    if name == "CRFPolicy" and not same:
        notes.append(f"the CRF's transition weights are per layer step, learned on {source_layers}-layer "
                     f"sequences and applied to {target_layers}-layer ones")
    if [f for f, k in kinds.items() if k == "depth-normalised"]:
        notes.append("rel_depth = layer / L is comparable across depths by construction")
    if features and all(k == "depth-free" for k in kinds.values()):
        notes.append(f"features {features} depend on one layer's lens distribution only: comparable "
                     f"across depths (their per-depth distribution may still differ between models)")
    check = TransferCheck(name, int(source_layers), int(target_layers), kinds, ok, tuple(notes))
    if warn and not ok:
        warnings.warn(f"{name} is not transferable from {source_layers} to {target_layers} layers: "
                      + "; ".join(notes), stacklevel=2)
    return check


def rescale_depth(depth: int, source_layers: int, target_layers: int) -> int:
    """A static exit depth mapped proportionally: round(depth * target / source), within [1, target]."""
    if not 1 <= depth <= source_layers:
        raise ValueError(f"depth must be in [1, {source_layers}], got {depth}")
    return int(min(target_layers, max(1, round(depth * target_layers / source_layers))))
