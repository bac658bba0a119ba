"""Calibrated early exit with a finite-sample risk guarantee (CALM, Schuster et al. 2022; Learn-then-
Test, Angelopoulos et al. 2021).

(The Pareto bookkeeping of notebook 08, :func:`sweeps.oracle_fraction` and
:class:`sweeps.NoLossOraclePolicy`, lives in :mod:`sweeps`.)

**Policy family.** A per-row confidence score ``s(e, l)`` in [0, 1], computed causally from layers
1..l of example e: a column of the features table or one of :data:`EXTRA_FEATURES`
(``score_feature``, e.g. ``top1_ans_prob``: the lens restricted to the task's answer tokens, counted
only when the exit's own prediction is that answer), or the probability of a fitted scorer
(:class:`ExitScorer`, or ``sigmoid(decision_function)`` of a fitted :class:`policies.SVMPolicy`).
With a threshold ``lambda``, example e exits at the first layer ``l >= min_layer`` with
``s(e, l) > lambda``, else at L; its prediction is the lens top-1 at that layer (as everywhere in
this library). A larger lambda exits later: lambda >= 1 is the full model.

**Loss** of example i at lambda, in {0, 1}:

- ``"drop"``: ``1[full model correct_i and early prediction wrong_i]``. Its mean bounds the accuracy
  drop from above: ``acc(full) - acc(lambda) = mean(drop) - mean(1[full wrong, early right])``.
- ``"consistency"`` (CALM's): ``1[early prediction_i != full model prediction_i]``; needs no labels
  (it can be calibrated on unlabelled prompts) and is >= the drop loss, so it is more conservative.

**Choice of lambda (Learn-then-Test, fixed-sequence testing).** On a grid ``lambda_1 > lambda_2 >
...`` fixed BEFORE seeing the calibration data (default: :func:`default_grid`, 1000 points, dense
near 0 and 1), test the null hypotheses ``H_j: R(lambda_j) > epsilon`` in that order with a p-value
of the calibration risk (``"binomial"``: exact binomial tail ``P(Bin(n, epsilon) <= k)``, valid for
{0, 1} losses; ``"hoeffding_bentkus"``: LTT's HB p-value, valid for any loss in [0, 1]) and stop at
the first ``p_j > delta``. ``threshold_`` is the last lambda rejected; if none is rejected,
``threshold_ = inf`` (never exit early: the full model, loss 0) and a warning says how many
calibration examples the target would need (``n >= log(delta) / log(1 - epsilon)`` even with zero
losses, e.g. 230 for epsilon = 0.01, delta = 0.1).

**The guarantee, precisely.** If the n calibration examples and the test examples are i.i.d. draws
from one distribution D (a uniformly random split of one finite pool also qualifies: sampling
without replacement concentrates at least as well, Hoeffding 1963 §6), then over the draw of the
calibration set::

    P( R(threshold_) <= epsilon ) >= 1 - delta,   R(lambda) = E_{x ~ D}[loss(x, lambda)],

i.e. with probability >= 1 - delta the EXPECTED loss of a new example from D is at most epsilon;
for ``loss="drop"`` that bounds the expected accuracy drop against the full model. It is not a
per-example promise, nor a bound on the average over one finite test set (that fluctuates around
R by about sqrt(R / n_test)), and it holds for D only: calibrate per task (on the mix of shots you
report) to get it per task. On a task or model it was not calibrated on nothing is promised.
The grid must not depend on the calibration data (it would break the fixed-sequence argument):
hence scores live in [0, 1] and the grid is fixed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binom
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from .policies import SVMPolicy, _order, _Policy, feature_matrix, make_labels

LOSSES: tuple[str, ...] = ("drop", "consistency")
EXTRA_FEATURES: tuple[str, ...] = ("top1_is_answer", "top1_ans_prob")  # see score_matrix
PVALUES: tuple[str, ...] = ("binomial", "hoeffding_bentkus")
SCORER_MODELS: tuple[str, ...] = ("hgb", "logistic")

# The honest FLOPs count charges a policy's per-layer lens checks from its feature_names()
# (engine.lens_need: full-vocabulary scores such as top_prob or top1_ans_prob -> one full lens
# check per layer up to the exit).


# ----------------------------------------------------------------------------- p-values (LTT §3)
def binomial_pvalue(n_loss: np.ndarray | int, n: int, epsilon: float) -> np.ndarray | float:
    """Exact binomial p-value of ``H: R > epsilon`` for {0, 1} losses: ``P(Bin(n, epsilon) <= k)``
    with k = number of losses among n (vectorised over k)."""
    return binom.cdf(np.asarray(n_loss), n, epsilon)


def hoeffding_bentkus_pvalue(risk_hat: np.ndarray | float, n: int, epsilon: float) -> np.ndarray | float:
    """Hoeffding-Bentkus p-value of ``H: R > epsilon`` for losses in [0, 1] (Bates et al. 2021,
    LTT Prop. 1): ``min(exp(-n h(min(r, eps), eps)), e * P(Bin(n, eps) <= ceil(n r)))`` with
    ``h(a, b) = a log(a/b) + (1-a) log((1-a)/(1-b))``."""
    r = np.minimum(np.asarray(risk_hat, dtype=float), epsilon)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(r > 0, r * np.log(r / epsilon), 0.0) + (1 - r) * np.log((1 - r) / (1 - epsilon))
    hoeffding = np.exp(-n * h)
    bentkus = math.e * binom.cdf(np.ceil(n * np.asarray(risk_hat, dtype=float) - 1e-9), n, epsilon)
    return np.minimum(np.minimum(hoeffding, bentkus), 1.0)


def fixed_sequence_rejections(pvalues: Sequence[float], delta: float) -> int:
    """Fixed-sequence testing (LTT §4): the number of leading hypotheses with p <= delta. Controls
    the family-wise error at delta for any (data-independent) order, without a multiplicity cost."""
    p = np.asarray(pvalues, dtype=float)
    fails = np.flatnonzero(~(p <= delta))
    return int(fails[0]) if len(fails) else int(len(p))


def min_calibration_size(epsilon: float, delta: float) -> int:
    """The fewest calibration examples that can certify ANY early exit at (epsilon, delta) with the
    binomial p-value: even with zero losses, ``(1 - epsilon)^n <= delta`` is needed."""
    return int(math.ceil(math.log(delta) / math.log1p(-epsilon)))


def default_grid(n: int = 1000) -> np.ndarray:
    """Thresholds from conservative to aggressive, fixed in advance: ``sigmoid`` of n points evenly
    spaced on [10, -10] (dense near 1 and 0, where confidence scores pile up). Shape (n,)."""
    return 1.0 / (1.0 + np.exp(-np.linspace(10.0, -10.0, n)))


# ----------------------------------------------------------------------------- per-example matrices
def example_matrices(df: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Reshape a features frame of complete examples into (examples, L) matrices.

    Returns (one row per example: its key columns, in order; {column: (n_examples, L) array} plus
    ``"row"``: the input-row index of each cell). Raises if an example lacks a layer of 1..L or if
    the frame mixes model depths (calibrate one model at a time)."""
    if len(df) == 0:
        raise ValueError("empty features frame: nothing to calibrate on")
    depths = df["num_layers"].unique()
    if len(depths) != 1:
        raise ValueError(f"the frame mixes model depths {sorted(depths.tolist())}: calibrate one model at a time")
    L = int(depths[0])
    gid, order = _order(df)
    n_ex = len(np.unique(gid))
    if len(df) != n_ex * L:
        raise ValueError(f"{len(df)} rows for {n_ex} examples x {L} layers: every example needs all layers 1..L "
                         "(calibration uses the full-model prediction at layer L)")
    layer = df["layer"].to_numpy()[order].reshape(n_ex, L)
    if not (layer == np.arange(1, L + 1)).all():
        raise ValueError(f"every example needs exactly the layers 1..{L}")
    mats = {c: df[c].to_numpy()[order].reshape(n_ex, L) for c in columns}
    mats["row"] = order.reshape(n_ex, L)
    keys = [k for k in ("model", "task", "split", "shots", "example_id") if k in df.columns]
    return df.iloc[order[::L]][keys].reset_index(drop=True), mats


def exit_layers(scores: np.ndarray, thresholds: np.ndarray, min_layer: int = 1) -> np.ndarray:
    """Exit layer (1-based) of every example at every threshold: the first layer ``l >= min_layer``
    with score > threshold, else L. scores: (n, L); thresholds: (k,) -> (k, n) ints."""
    n, L = scores.shape
    s = scores.astype(float).copy()
    s[:, : max(min_layer, 1) - 1] = -np.inf
    running = np.maximum.accumulate(s, axis=1)          # (n, L), nondecreasing along layers
    t = np.asarray(thresholds, dtype=float)
    out = np.empty((len(t), n), dtype=int)
    for i in range(n):                                  # first l with running max > t = #(running <= t)
        out[:, i] = np.searchsorted(running[i], t, side="right")
    return np.minimum(out + 1, L)


def losses(top1: np.ndarray, target: np.ndarray, exits: np.ndarray, loss: str) -> np.ndarray:
    """Per-example {0, 1} losses at each threshold. top1: (n, L) lens top-1 ids; target: (n,);
    exits: (k, n) exit layers -> (k, n)."""
    pred = np.take_along_axis(top1, (exits - 1).T, axis=1).T          # (k, n)
    final = top1[:, -1]
    if loss == "drop":
        return ((final == target)[None, :] & (pred != target[None, :])).astype(np.int8)
    if loss == "consistency":
        return (pred != final[None, :]).astype(np.int8)
    raise ValueError(f"unknown loss {loss!r}; valid: {list(LOSSES)}")


# ----------------------------------------------------------------------------- scores
def score_matrix(df: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """:func:`policies.feature_matrix` plus the scores of :data:`EXTRA_FEATURES` (rows in input
    order, one column per name; all causal: they read layer l only):

    - ``top1_is_answer``: 1.0 when the full-vocabulary top-1 (the prediction an exit makes) is the
      top answer token (``ans_top1_id``), else 0.0 (always 0 for tasks without an answer vocabulary);
    - ``top1_ans_prob``: ``ans_top_prob`` when ``top1_is_answer`` else 0.0: how confident the lens,
      restricted to the answers, is in the token an exit would output. On small models whose early
      layers put junk at top-1 (Gemma-3-270M: no answer token at top-1 before layer 12 of 18 on
      sentiment) it is 0 exactly where exiting cannot be right.
    """
    names = list(features)
    extra = {n: i for i, n in enumerate(names) if n in EXTRA_FEATURES}
    base = feature_matrix(df, [n for n in names if n not in extra])
    if not extra:
        return base
    is_ans = ((df["top1_id"].to_numpy() == df["ans_top1_id"].to_numpy()) & (df["ans_top1_id"].to_numpy() >= 0))
    cols = {"top1_is_answer": is_ans.astype(float),
            "top1_ans_prob": np.where(is_ans, np.nan_to_num(df["ans_top_prob"].to_numpy(dtype=float, na_value=0.0)),
                                      0.0)}
    out = np.empty((len(df), len(names)))
    j = 0
    for i, n in enumerate(names):
        if n in extra:
            out[:, i] = cols[n]
        else:
            out[:, i] = base[:, j]
            j += 1
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


class ExitScorer(BaseEstimator):
    """A per-row probability that exiting here is safe, learned from a features frame.

    One classifier over all layers on ``features`` (any of :data:`policies.VALID_FEATURES` and
    :data:`EXTRA_FEATURES`;
    ``rel_depth`` lets it learn depth-dependent confidence), label ``"consistent"`` (top-1 equals
    the final layer's; CALM) or ``"correct"`` (paper Eq. 1). ``model="hgb"``: gradient-boosted trees
    (non-linear in depth: can learn "layer 1 of Gemma is always wrong"; fitted and evaluated on one
    OpenMP thread, which on a busy 2-core machine is 10x faster than contending threads);
    ``"logistic"``: standardised logistic regression. :meth:`exit_score` -> (rows,) in [0, 1];
    causal, like the features.
    """

    def __init__(self, features: Sequence[str] = ("ans_top_prob", "ans_gap", "top_prob", "gap", "rel_depth"),
                 label: str = "consistent", model: str = "hgb", class_weight: Any = None,
                 random_state: int = 0) -> None:
        self.features = features
        self.label = label
        self.model = model
        self.class_weight = class_weight
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any = None) -> "ExitScorer":
        if len(X) == 0:
            raise ValueError("ExitScorer.fit: empty features frame")
        if self.model not in SCORER_MODELS:
            raise ValueError(f"unknown scorer model {self.model!r}; valid: {list(SCORER_MODELS)}")
        x = score_matrix(X, self.features)
        labels = make_labels(X, self.label) if y is None else np.asarray(y).astype(int).ravel()
        classes = np.unique(labels)
        self.constant_: float | None = float(classes[0]) if len(classes) == 1 else None
        if self.constant_ is not None:
            warnings.warn(f"ExitScorer: all training labels are {int(self.constant_)}; the score is constant",
                          stacklevel=2)
            self.estimator_ = None
            return self
        if self.model == "hgb":
            from sklearn.ensemble import HistGradientBoostingClassifier

            est = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, max_leaf_nodes=15,
                                                 class_weight=self.class_weight, random_state=self.random_state)
        else:
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight=self.class_weight))
        with threadpool_limits(1, user_api="openmp"):  # tiny trees: OpenMP threads only contend
            self.estimator_ = est.fit(x, labels)
        return self

    def feature_names(self) -> list[str]:
        return list(self.features)

    def exit_score(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of the positive label per row (input order), shape (rows,)."""
        if not hasattr(self, "constant_"):
            raise ValueError("ExitScorer is not fitted; call fit() first")
        if self.constant_ is not None:
            return np.full(len(X), self.constant_)
        with threadpool_limits(1, user_api="openmp"):
            return self.estimator_.predict_proba(score_matrix(X, self.features))[:, 1]


def row_scores(df: pd.DataFrame, score_feature: str, scorer: Any = None) -> np.ndarray:
    """The confidence score of every row, (rows,), input order: the ``score_feature`` column (or
    one of :data:`EXTRA_FEATURES`; non-finite -> 0), else the fitted ``scorer``'s: :meth:`ExitScorer.exit_score`, or
    ``sigmoid(decision_function)`` of a fitted :class:`policies.SVMPolicy` (its one-class fallback:
    0 or 1)."""
    if scorer is None:
        return score_matrix(df, [score_feature])[:, 0]
    if hasattr(scorer, "exit_score"):
        return np.asarray(scorer.exit_score(df), dtype=float)
    if isinstance(scorer, SVMPolicy):
        scorer._check_fitted()
        if scorer.constant_ is not None or len(df) == 0:
            return np.full(len(df), float(scorer.constant_ or 0))
        return _sigmoid(scorer.svc_.decision_function(feature_matrix(df, scorer.features)))
    raise TypeError(f"unsupported scorer {type(scorer).__name__}: give a fitted ExitScorer, a fitted SVMPolicy "
                    "or any object with exit_score(frame) -> per-row scores in [0, 1]")


# ----------------------------------------------------------------------------- the policy
class CalibratedPolicy(_Policy):
    """Exit at the first layer ``>= min_layer`` whose score exceeds a threshold chosen by Learn-then-
    Test so that P(risk <= epsilon) >= 1 - delta (see the module docstring for the exact statement).

    ``fit(calib_df)`` takes a features frame of COMPLETE examples (all layers 1..L, one model) that
    was used neither to train ``scorer`` nor for testing; ``predict(df)`` gives online per-row
    signals like every policy, so :func:`policies.simulate`, :func:`experiments.score` and the
    real engine use it unchanged. ``scorer``: None (use the ``score_feature`` column) or a FITTED
    scorer (see :func:`row_scores`); it is not refitted. Fitted attributes: ``threshold_`` (inf
    when nothing is certified), ``certified_``, ``n_calib_``, ``risk_hat_`` / ``p_value_`` /
    ``mean_exit_layer_`` on the calibration set at ``threshold_``, and ``calibration_`` (one row per
    grid threshold: risk, losses, p-value, mean exit layer, whether it was tested/rejected).
    """

    def __init__(self, score_feature: str = "top_prob", scorer: Any = None, min_layer: int = 1,
                 epsilon: float = 0.01, delta: float = 0.1, loss: str = "drop", pvalue: str = "binomial",
                 thresholds: int | Sequence[float] = 1000) -> None:
        self.score_feature = score_feature
        self.scorer = scorer
        self.min_layer = min_layer
        self.epsilon = epsilon
        self.delta = delta
        self.loss = loss
        self.pvalue = pvalue
        self.thresholds = thresholds

    def _check_params(self) -> np.ndarray:
        for name in ("epsilon", "delta"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v < 1):
                raise ValueError(f"{name} must be in (0, 1), got {v!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; valid: {list(LOSSES)}")
        if self.pvalue not in PVALUES:
            raise ValueError(f"unknown pvalue {self.pvalue!r}; valid: {list(PVALUES)}")
        if int(self.min_layer) < 1:
            raise ValueError(f"min_layer must be >= 1, got {self.min_layer}")
        grid = default_grid(int(self.thresholds)) if np.isscalar(self.thresholds) \
            else np.asarray(self.thresholds, dtype=float)
        if grid.ndim != 1 or len(grid) == 0 or not np.all(np.diff(grid) < 0):
            raise ValueError("thresholds must be a positive count or a non-empty, strictly decreasing sequence "
                             "(most conservative first)")
        return grid

    def feature_names(self) -> list[str]:
        if self.scorer is None:
            return [self.score_feature]
        return list(getattr(self.scorer, "feature_names", lambda: list(self.scorer.features))())

    def scores(self, X: pd.DataFrame) -> np.ndarray:
        """Per-row confidence scores in [0, 1], shape (rows,). Raises on NaN or out-of-range values."""
        s = row_scores(X, self.score_feature, self.scorer)
        if s.shape != (len(X),) or np.isnan(s).any():
            raise ValueError(f"the score must give one finite value per row (got shape {s.shape}, NaN present: "
                             f"{bool(np.isnan(s).any())})")
        if len(s) and (s.min() < 0 or s.max() > 1):
            raise ValueError(f"scores must lie in [0, 1] (got [{s.min():.3g}, {s.max():.3g}]): use a probability-"
                             f"like score_feature (top_prob, gap, ans_top_prob, ans_gap) or a scorer")
        return s

    def fit(self, X: pd.DataFrame, y: Any = None) -> "CalibratedPolicy":
        grid = self._check_params()
        cols = ["top1_id"] + (["target_id"] if self.loss == "drop" else [])
        missing = [c for c in cols if c not in X.columns]
        if missing:
            raise ValueError(f"calibration frame lacks column(s) {missing} (loss={self.loss!r})")
        keys, mats = example_matrices(X, cols)
        L = mats["top1_id"].shape[1]
        if int(self.min_layer) > L:
            raise ValueError(f"min_layer={self.min_layer} exceeds the model's {L} layers")
        s = self.scores(X)[mats["row"]]                                    # (n, L)
        exits = exit_layers(s, grid, int(self.min_layer))                   # (k, n)
        target = mats["target_id"][:, 0] if self.loss == "drop" else mats["top1_id"][:, -1]
        lo = losses(mats["top1_id"], target, exits, self.loss)              # (k, n)
        n = lo.shape[1]
        n_loss = lo.sum(axis=1)
        risk = n_loss / n
        p = binomial_pvalue(n_loss, n, self.epsilon) if self.pvalue == "binomial" \
            else hoeffding_bentkus_pvalue(risk, n, self.epsilon)
        r = fixed_sequence_rejections(p, self.delta)
        self.n_calib_ = int(n)
        self.num_layers_ = L
        self.calibration_ = pd.DataFrame({"threshold": grid, "risk": risk, "n_loss": n_loss, "p_value": p,
                                          "mean_exit_layer": exits.mean(axis=1), "tested": np.arange(len(grid)) <= r,
                                          "rejected": np.arange(len(grid)) < r})
        self.certified_ = r > 0
        if self.certified_:
            self.threshold_ = float(grid[r - 1])
            self.risk_hat_, self.p_value_ = float(risk[r - 1]), float(p[r - 1])
            self.mean_exit_layer_ = float(exits[r - 1].mean())
        else:
            self.threshold_ = float("inf")
            self.risk_hat_, self.p_value_, self.mean_exit_layer_ = 0.0, float("nan"), float(L)
            need = min_calibration_size(self.epsilon, self.delta)
            warnings.warn(f"CalibratedPolicy: no threshold certified at epsilon={self.epsilon}, delta={self.delta} "
                          f"with {n} calibration examples (at least {need} are needed even with zero losses); "
                          f"the policy never exits early (full model)", stacklevel=2)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "threshold_")

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "threshold_"):
            raise ValueError("CalibratedPolicy is not fitted; call fit(calibration_frame) first")
        if len(X) == 0:
            return np.zeros(0, dtype=int)
        if not np.isfinite(self.threshold_):
            return np.zeros(len(X), dtype=int)
        fire = (self.scores(X) > self.threshold_) & (X["layer"].to_numpy() >= int(self.min_layer))
        return fire.astype(int)

    def risk(self, X: pd.DataFrame, loss: str | None = None) -> float:
        """Empirical mean loss (``loss`` default: the policy's) of the fitted policy on complete
        examples of ``X``: the realised counterpart of epsilon on a held-out split."""
        if not hasattr(self, "threshold_"):
            raise ValueError("CalibratedPolicy is not fitted; call fit(calibration_frame) first")
        loss = loss or self.loss
        keys, mats = example_matrices(X, ["top1_id"] + (["target_id"] if loss == "drop" else []))
        thr = np.array([self.threshold_ if np.isfinite(self.threshold_) else 2.0])
        exits = exit_layers(self.scores(X)[mats["row"]], thr, int(self.min_layer))
        target = mats["target_id"][:, 0] if loss == "drop" else mats["top1_id"][:, -1]
        return float(losses(mats["top1_id"], target, exits, loss).mean())
