"""FLOPs accounting: the paper's ratio (Eq. 2) and an honest count from the model dims.

Two ways to say how much compute an early exit saves:

- :func:`paper_flops_ratio` is the paper's Eq. 2 (Appendix A). Each decoder block costs
  ``24*B*s*h^2 + 4*B*s^2*h`` FLOPs and the LM head ``2*B*s*h*V``, so a model of ``l``
  layers costs ``4*B*s*h*l*(6h + s) + 2*B*s*h*V``; exiting at layer ``l'`` gives the ratio
  ``(2*l'*(6h + s) + V) / (2*l*(6h + s) + V)``. It assumes multi-head attention with
  ``num_kv_heads == num_heads``, a 4h non-gated MLP and an LM head applied to every token,
  and it does not charge the per-layer classifier/lens checks an adaptive policy needs.
- :func:`honest_flops` / :func:`honest_flops_ratio` count from the real dims (GQA, gated
  MLPs, intermediate size) for ONE sequence of ``s`` prompt tokens (prefill, no KV cache),
  a multiply-add counted as 2 FLOPs, and charge every logit-lens check an exit policy
  makes (one last-token LM-head evaluation each).

Ignored in the honest count (all O(s*h) or O(s^2*heads), small next to the matmuls):
RMS/layer norms (including the final norm before each lens check), softmax, rotary
embeddings, activations, residual adds and biases. Attention is counted over the full
``s x s`` score matrix; a causal kernel that skips the masked half could roughly halve the
two attention terms, but we keep the full count (it is what an eager implementation does).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Union

import numpy as np

ArrayLike = Union[int, float, np.ndarray]
Result = Union[float, np.ndarray]

__all__ = [
    "ModelDims",
    "paper_flops_ratio",
    "layer_flops",
    "lens_flops",
    "honest_flops",
    "honest_flops_ratio",
    "mean_ratio",
]


@dataclass(frozen=True)
class ModelDims:
    """The model dimensions the honest FLOPs count needs.

    ``num_kv_heads < num_heads`` means grouped-query attention; ``gated_mlp`` means a
    SwiGLU/GeGLU MLP (gate, up and down projections) rather than up/down only.
    """

    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    gated_mlp: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "gated_mlp":
                if not isinstance(value, (bool, np.bool_)):
                    raise TypeError(f"gated_mlp must be a bool, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{f.name} must be a positive int, got {value!r}")


def _out(x: np.ndarray) -> Result:
    """Return a Python float for 0-d results, the array otherwise."""
    return float(x) if np.ndim(x) == 0 else x


def _check_exit(exit_layer: np.ndarray, num_layers: int) -> None:
    if np.any(exit_layer < 1) or np.any(exit_layer > num_layers):
        bad = exit_layer[(exit_layer < 1) | (exit_layer > num_layers)]
        raise ValueError(
            f"exit_layer must satisfy 1 <= exit_layer <= num_layers={num_layers}; got {bad.tolist()}"
        )


def _check_positive(name: str, x: np.ndarray) -> None:
    if np.any(x < 1):
        raise ValueError(f"{name} must be >= 1, got {x[x < 1].tolist()}")


def paper_flops_ratio(
    exit_layer: ArrayLike, num_layers: int, hidden_size: int, seq_len: ArrayLike, vocab_size: int
) -> Result:
    """The paper's FLOPs ratio, Eq. 2 (Appendix A).

    ``(2*l'*(6h + s) + V) / (2*l*(6h + s) + V)``, obtained by dividing
    ``4*B*s*h*l'*(6h + s) + 2*B*s*h*V`` by the same expression at ``l' = l`` (batch ``B``
    and ``2*s*h`` cancel). ``exit_layer`` (``l'``) and ``seq_len`` (``s``) may be numpy
    arrays (broadcast together); a float is returned for scalar inputs.

    Raises:
        ValueError: if any ``exit_layer`` is outside ``[1, num_layers]`` or ``seq_len < 1``.
    """
    lp = np.asarray(exit_layer, dtype=np.float64)
    s = np.asarray(seq_len, dtype=np.float64)
    _check_exit(lp, num_layers)
    _check_positive("seq_len", s)
    h, v, n = float(hidden_size), float(vocab_size), float(num_layers)
    return _out((2.0 * lp * (6.0 * h + s) + v) / (2.0 * n * (6.0 * h + s) + v))


def layer_flops(dims: ModelDims, seq_len: ArrayLike) -> Result:
    """FLOPs of one decoder layer on one sequence of ``seq_len`` tokens (prefill, no cache).

    Terms (multiply-add = 2 FLOPs; ``q = num_heads*head_dim``, ``kv = num_kv_heads*head_dim``):
    q projection ``2*s*h*q``; k and v projections ``2*s*h*kv`` each; scores ``QK^T``
    ``2*s*s*q``; weighted sum ``AV`` ``2*s*s*q`` (full ``s x s``, a causal kernel could halve
    both); output projection ``2*s*q*h``; MLP ``3*2*s*h*I`` if gated else ``2*2*s*h*I``.
    With ``q = kv = h`` and ``I = 4h`` non-gated this is the paper's ``24*s*h^2 + 4*s^2*h``.
    """
    s = np.asarray(seq_len, dtype=np.float64)
    _check_positive("seq_len", s)
    h = float(dims.hidden_size)
    q = float(dims.num_heads * dims.head_dim)
    kv = float(dims.num_kv_heads * dims.head_dim)
    inter = float(dims.intermediate_size)
    attn_proj = 2 * s * h * q + 2 * (2 * s * h * kv) + 2 * s * q * h
    attn_core = 2 * (2 * s * s * q)
    mlp = (3 if dims.gated_mlp else 2) * (2 * s * h * inter)
    return _out(attn_proj + attn_core + mlp)


def lens_flops(dims: ModelDims) -> float:
    """FLOPs of one logit-lens check: the LM head on the last token, ``2*h*V`` (norm ignored)."""
    return float(2 * dims.hidden_size * dims.vocab_size)


def honest_flops(
    dims: ModelDims, seq_len: ArrayLike, exit_layer: ArrayLike, lens_checks: ArrayLike
) -> Result:
    """Honest FLOPs of one prefill: ``exit_layer*layer_flops + lens_checks*lens_flops``.

    The full model is ``exit_layer = L, lens_checks = 1`` (its own head on the last token).
    An adaptive policy checking the lens at every layer up to its exit has
    ``lens_checks = exit_layer`` (the last check is its prediction); a static-depth policy
    has ``lens_checks = 1``. Inputs may be numpy arrays (broadcast together).

    Raises:
        ValueError: if ``exit_layer`` is outside ``[1, L]``, ``seq_len < 1`` or ``lens_checks < 0``.
    """
    e = np.asarray(exit_layer, dtype=np.float64)
    c = np.asarray(lens_checks, dtype=np.float64)
    _check_exit(e, dims.num_layers)
    if np.any(c < 0):
        raise ValueError(f"lens_checks must be >= 0, got {c[c < 0].tolist()}")
    return _out(e * np.asarray(layer_flops(dims, seq_len)) + c * lens_flops(dims))


def honest_flops_ratio(
    dims: ModelDims, seq_len: ArrayLike, exit_layer: ArrayLike, lens_checks: ArrayLike
) -> Result:
    """``honest_flops(dims, s, exit_layer, lens_checks) / honest_flops(dims, s, L, 1)``.

    The honest counterpart of Eq. 2: same sequence length in numerator and denominator,
    but real dims and the cost of every lens check charged. Vectorised over arrays.
    """
    num = np.asarray(honest_flops(dims, seq_len, exit_layer, lens_checks))
    den = np.asarray(honest_flops(dims, seq_len, dims.num_layers, 1))
    return _out(num / den)


def mean_ratio(ratios: ArrayLike) -> float:
    """Average of per-example FLOPs ratios, as the paper reports per-task FLOPs.

    With per-example sequence lengths this mean of ratios differs slightly from the ratio
    computed at the mean exit layer (the ratio is not linear in ``s``), so we always average
    per-example ratios.

    Raises:
        ValueError: if ``ratios`` is empty.
    """
    r = np.asarray(ratios, dtype=np.float64).ravel()
    if r.size == 0:
        raise ValueError("mean_ratio needs at least one ratio")
    return float(r.mean())
