"""Exit policies over the (example, layer) features table (paper §4.2-4.3, §5.4, Appendix B).

Every policy follows the scikit-learn estimator contract (``__init__`` stores hyper-parameters only,
fitted attributes end in ``_``, ``clone``/``get_params`` work). ``fit(df, y=None)`` takes the
features DataFrame (labels default to :func:`make_labels`); ``predict(df)`` returns, for EVERY row
(e, l) in input order, the exit signal at layer l computed only from rows of example e with
layer <= l (online / causal), except ``CRFPolicy(decoding="offline")`` which is a labelled
comparison only. :func:`simulate` turns signals into exits: the first layer signalling 1, else L
(the model's own answer). An example is the group ``("model", "task", "split", "shots", "example_id")`` restricted
to the columns present.

Degenerate training labels (one class): the policy does not call scikit-learn/crfsuite, warns, and
stores ``constant_``: all-0 => it never signals (always exits at L); all-1 => it signals at every
layer (exits at layer 1).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.svm import SVC

GROUP_KEYS: tuple[str, ...] = ("model", "task", "split", "shots", "example_id")
RAW_FEATURES: tuple[str, ...] = (
    "gap", "top_prob", "entropy", "kl_prev", "cos_attn", "cos_mlp", "cos_hidden",
    "ans_gap", "ans_top_prob",
)  # target_prob / target_rank are NOT features: they need the answer (label leakage).
DERIVED_FEATURES: tuple[str, ...] = ("rel_depth", "top1_changed", "ans_top1_changed")
VALID_FEATURES: tuple[str, ...] = RAW_FEATURES + DERIVED_FEATURES
_BASE = ["gap", "top_prob"]
FEATURE_SETS: dict[str, list[str]] = {
    "base": _BASE,  # the paper's (§4.1)
    "attn": _BASE + ["cos_attn"],  # Table 7 increments
    "hidden": _BASE + ["cos_attn", "cos_hidden"],
    "mlp": _BASE + ["cos_attn", "cos_hidden", "cos_mlp"],
    "depth": _BASE + ["rel_depth"],
    "answer": ["ans_gap", "ans_top_prob", "rel_depth"],
    "full_new": _BASE + ["rel_depth", "top1_changed", "kl_prev", "entropy", "ans_gap", "ans_top_prob"],
}
LABELS: tuple[str, ...] = ("correct", "consistent")


# ----------------------------------------------------------------------------- frame helpers
def group_keys(df: pd.DataFrame) -> list[str]:
    """The example key: those of :data:`GROUP_KEYS` present (``example_id`` required)."""
    if "example_id" not in df.columns:
        raise ValueError("features frame has no 'example_id' column")
    return [k for k in GROUP_KEYS if k in df.columns]


def _order(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(group id per row, permutation sorting rows by (group, layer)). Rejects duplicate layers."""
    for col in ("layer", "num_layers"):
        if col not in df.columns:
            raise ValueError(f"features frame has no {col!r} column")
    gid = df.groupby(group_keys(df), sort=False, dropna=False).ngroup().to_numpy()
    layer = df["layer"].to_numpy()
    order = np.lexsort((layer, gid))
    g, lay = gid[order], layer[order]
    if len(order) > 1 and np.any((g[1:] == g[:-1]) & (lay[1:] == lay[:-1])):
        raise ValueError("features frame has duplicate (example, layer) rows")
    return gid, order


def _changed(df: pd.DataFrame, col: str) -> np.ndarray:
    """1.0 where ``col`` differs from the same example's previous (available) layer; 0 at its first."""
    gid, order = _order(df)
    vals, g = df[col].to_numpy()[order], gid[order]
    out_sorted = np.zeros(len(order))
    if len(order) > 1:
        out_sorted[1:] = ((vals[1:] != vals[:-1]) & (g[1:] == g[:-1])).astype(float)
    out = np.empty(len(order))
    out[order] = out_sorted
    return out


def feature_matrix(df: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    """Float matrix (rows in input order, one column per feature) for the policies (paper §4.1).

    Raw columns are taken as they are; derived, causal ones: ``rel_depth`` = layer / num_layers,
    ``top1_changed`` / ``ans_top1_changed`` = 1.0 when top1_id (ans_top1_id) differs from the same
    example's previous layer (0.0 at its first layer). Non-finite values (NaN at layer 1 for
    ``kl_prev`` and the cosines, NaN ``ans_*`` when a task has no answer vocabulary, any +-inf)
    become 0.0. Row order of ``df`` does not matter.
    """
    features = list(features)
    unknown = [f for f in features if f not in VALID_FEATURES]
    if unknown:
        raise ValueError(f"unknown feature(s) {unknown}; valid names: {list(VALID_FEATURES)}")
    cols: list[np.ndarray] = []
    for name in features:
        if name == "rel_depth":
            col = df["layer"].to_numpy(float) / df["num_layers"].to_numpy(float)
        elif name == "top1_changed":
            col = _changed(df, "top1_id")
        elif name == "ans_top1_changed":
            col = _changed(df, "ans_top1_id")
        else:
            if name not in df.columns:
                raise ValueError(f"feature {name!r} is not a column of the features frame")
            col = df[name].to_numpy(dtype=float, na_value=np.nan)
        cols.append(col)
    x = np.column_stack(cols) if cols else np.empty((len(df), 0))
    return np.nan_to_num(x.astype(float), nan=0.0, posinf=0.0, neginf=0.0)


def make_labels(df: pd.DataFrame, label: str = "correct") -> np.ndarray:
    """Per-row labels y_c (input order). ``"correct"`` (paper Eq. 1, Appendix B): top1_id == target_id.
    ``"consistent"`` (CALM): top1_id == the same example's top1_id at its last layer L."""
    if label == "correct":
        return (df["top1_id"].to_numpy() == df["target_id"].to_numpy()).astype(int)
    if label == "consistent":
        keys = group_keys(df)
        last = df.loc[df["layer"] == df["num_layers"], keys + ["top1_id"]]
        last = last.rename(columns={"top1_id": "_final_top1"})
        merged = df[keys].merge(last, on=keys, how="left", validate="many_to_one")
        final = merged["_final_top1"].to_numpy(dtype=float, na_value=np.nan)
        if np.isnan(final).any():
            raise ValueError("label='consistent' needs every example's row at layer L = num_layers")
        return (df["top1_id"].to_numpy() == final).astype(int)
    raise ValueError(f"unknown label {label!r}; valid: {list(LABELS)}")


# ----------------------------------------------------------------------------- base class
class _Policy(BaseEstimator):
    """Shared plumbing. Subclasses implement ``predict``; trained ones ``_fit_model``."""

    def fit(self, X: pd.DataFrame, y: Any = None) -> "_Policy":
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def feature_names(self) -> list[str]:
        """Features the policy reads (saved with it, checked on load)."""
        return []


class _TrainedPolicy(_Policy):
    """Fit = validate, handle one-class labels (``constant_``), else ``_fit_model``."""

    features: Sequence[str]
    label: str

    def fit(self, X: pd.DataFrame, y: Any = None) -> "_TrainedPolicy":
        if len(X) == 0:
            raise ValueError(f"no training rows for {type(self).__name__}.fit (empty features frame)")
        feature_matrix(X.iloc[:1], self.features)  # validate names early
        labels = make_labels(X, self.label) if y is None else np.asarray(y).astype(int).ravel()
        if len(labels) != len(X):
            raise ValueError(f"y has {len(labels)} labels for {len(X)} rows")
        classes = np.unique(labels)
        if not set(classes) <= {0, 1}:
            raise ValueError(f"labels must be 0/1, got {classes.tolist()}")
        self.n_train_rows_ = int(len(labels))
        if len(classes) == 1:
            self.constant_: int | None = int(classes[0])
            what = "never exits early (always layer L)" if self.constant_ == 0 else "exits at layer 1"
            warnings.warn(f"{type(self).__name__}: all training labels are {self.constant_}; "
                          f"no classifier is trained and the policy {what}", stacklevel=2)
            self._clear_model()
        else:
            self.constant_ = None
            self._fit_model(X, labels)
        return self

    def feature_names(self) -> list[str]:
        return list(self.features)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "constant_")

    def _check_fitted(self) -> None:
        if not hasattr(self, "constant_"):
            raise ValueError(f"{type(self).__name__} is not fitted; call fit() first")

    def _clear_model(self) -> None:
        raise NotImplementedError

    def _fit_model(self, X: pd.DataFrame, labels: np.ndarray) -> None:
        raise NotImplementedError


# ----------------------------------------------------------------------------- SVM
def _stratified_subsample(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Row indices: ~n rows, class proportions kept, at least one row per class, seeded."""
    if len(labels) <= n:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, int(round(n * len(idx) / len(labels))))
        picks.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return np.sort(np.concatenate(picks))


class SVMPolicy(_TrainedPolicy):
    """Per-layer SVC on the feature vector (paper §4.3 "SVM Objective"; Appendix A: sklearn defaults).

    Defaults are SVC's (C=1, RBF, gamma="scale", no feature scaling). ``class_weight="balanced"``
    counters the label imbalance of early layers (mostly 0). Training rows are subsampled to
    ``max_train_rows`` (seeded by ``random_state``, stratified by label) since SVC training is
    O(N^2)-O(N^3); ``None`` uses all rows. Per-row prediction is causal by construction.
    """

    def __init__(self, features: Sequence[str] = ("gap", "top_prob"), label: str = "correct",
                 C: float = 1.0, kernel: str = "rbf", gamma: Any = "scale",
                 class_weight: Any = None, max_train_rows: int | None = 20000,
                 random_state: int = 0) -> None:
        self.features = features
        self.label = label
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.class_weight = class_weight
        self.max_train_rows = max_train_rows
        self.random_state = random_state

    def _clear_model(self) -> None:
        self.svc_: SVC | None = None

    def _fit_model(self, X: pd.DataFrame, labels: np.ndarray) -> None:
        x = feature_matrix(X, self.features)
        if self.max_train_rows is not None:
            idx = _stratified_subsample(labels, int(self.max_train_rows), self.random_state)
            x, labels = x[idx], labels[idx]
        self.svc_ = SVC(C=self.C, kernel=self.kernel, gamma=self.gamma,
                        class_weight=self.class_weight, random_state=self.random_state)
        self.svc_.fit(x, labels)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        if self.constant_ is not None or len(X) == 0:
            return np.full(len(X), self.constant_ or 0, dtype=int)
        assert self.svc_ is not None
        return self.svc_.predict(feature_matrix(X, self.features)).astype(int)


# ----------------------------------------------------------------------------- CRF
def _sequences(df: pd.DataFrame, features: Sequence[str]) -> tuple[list[list[dict[str, float]]], list[np.ndarray]]:
    """Per example (sorted by layer): crfsuite item dicts ({feature: value, "bias": 1.0}) and the
    input-row indices of its layers."""
    x = feature_matrix(df, features)
    gid, order = _order(df)
    names = list(features)
    g = gid[order]
    splits = np.flatnonzero(np.diff(g)) + 1 if len(g) else np.array([], dtype=int)
    seqs, rows = [], []
    for idx in np.split(order, splits) if len(order) else []:
        seqs.append([{"bias": 1.0, **dict(zip(names, map(float, r)))} for r in x[idx]])
        rows.append(idx)
    return seqs, rows


class CRFPolicy(_TrainedPolicy):
    """Linear-chain CRF over each example's layer sequence (paper §4.3 "CRF Objective", §5.4).

    sklearn-crfsuite defaults (lbfgs; ``c1``/``c2`` None = crfsuite's 0 / 1) except
    ``max_iterations=100`` to bound training time. Items: the features plus a constant bias.

    ``decoding="online"`` (default): for each layer l, Viterbi-decode the PREFIX 1..l and take
    the label at l; this is all a real early exit can see. ``decoding="offline"`` Viterbi-decodes
    the WHOLE sequence, so the label at l uses LATER layers' features: NOT a realisable early
    exit, reported only as a labelled comparison.

    Train/test mismatch of online decoding: trained on whole sequences, the CRF puts much of the
    "not yet" evidence into the 0->0 transition weight, which the LAST item of a prefix never
    receives, so online decoding can signal 1 at layer 1 for every example (seen on synthetic
    data with L=30; compare paper Table 6, CRF stopping "at very shallow layers").
    ``train_on_prefixes=True`` (not the paper's; default False) trains on every prefix 1..l of
    every example (O(L^2) items per example), matching what the online decoder sees.
    """

    def __init__(self, features: Sequence[str] = ("gap", "top_prob"), label: str = "correct",
                 c1: float | None = None, c2: float | None = None, max_iterations: int = 100,
                 algorithm: str = "lbfgs", decoding: str = "online",
                 train_on_prefixes: bool = False) -> None:
        self.features = features
        self.label = label
        self.c1 = c1
        self.c2 = c2
        self.max_iterations = max_iterations
        self.algorithm = algorithm
        self.decoding = decoding
        self.train_on_prefixes = train_on_prefixes

    def _clear_model(self) -> None:
        self.model_bytes_: bytes | None = None
        self._tagger = None

    def _fit_model(self, X: pd.DataFrame, labels: np.ndarray) -> None:
        import sklearn_crfsuite

        seqs, rows = _sequences(X, self.features)
        ys = [[str(int(v)) for v in labels[idx]] for idx in rows]
        if self.train_on_prefixes:
            pairs = [(s[:i], y[:i]) for s, y in zip(seqs, ys) for i in range(1, len(s) + 1)]
            seqs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        crf = sklearn_crfsuite.CRF(algorithm=self.algorithm, c1=self.c1, c2=self.c2,
                                   max_iterations=self.max_iterations)
        crf.fit(seqs, ys)
        with open(crf.modelfile.name, "rb") as fh:
            self.model_bytes_ = fh.read()
        self._tagger = None

    def _get_tagger(self) -> Any:
        import pycrfsuite

        if getattr(self, "_tagger", None) is None:
            tagger = pycrfsuite.Tagger()
            tagger.open_inmemory(self.model_bytes_)
            self._tagger = tagger
        return self._tagger

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_tagger", None)
        return state

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        if self.decoding not in ("online", "offline"):
            raise ValueError(f"decoding must be 'online' or 'offline', got {self.decoding!r}")
        if self.constant_ is not None or len(X) == 0:
            return np.full(len(X), self.constant_ or 0, dtype=int)
        tagger = self._get_tagger()
        out = np.zeros(len(X), dtype=int)
        seqs, rows = _sequences(X, self.features)
        for seq, idx in zip(seqs, rows):
            if self.decoding == "offline":
                tags = tagger.tag(seq)
            else:
                tags = [tagger.tag(seq[: i + 1])[-1] for i in range(len(seq))]
            out[idx] = [int(t) for t in tags]
        return out


# ----------------------------------------------------------------------------- untrained ones
class RulePolicy(_Policy):
    """Exit when ``feature`` > ``threshold`` (strictly; paper §5.4: gap > 0.8). ``fit`` is a no-op."""

    def __init__(self, threshold: float = 0.8, feature: str = "gap") -> None:
        self.threshold = threshold
        self.feature = feature

    def feature_names(self) -> list[str]:
        return [self.feature]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (feature_matrix(X, [self.feature])[:, 0] > self.threshold).astype(int)


class StaticDepthPolicy(_Policy):
    """Always exit at layer min(depth, L) (a static-pruning baseline)."""

    def __init__(self, depth: int = 1) -> None:
        self.depth = depth

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if int(self.depth) < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")
        stop = np.minimum(int(self.depth), X["num_layers"].to_numpy())
        return (X["layer"].to_numpy() >= stop).astype(int)


class FullModelPolicy(_Policy):
    """Exit at L: the full model (paper tables' baseline row)."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (X["layer"].to_numpy() >= X["num_layers"].to_numpy()).astype(int)


class OraclePolicy(_Policy):
    """Exit at the first layer whose top-1 is the target (L if none). Reads the target: a ceiling
    no policy can beat, not a realisable policy."""

    needs_full_lens = True  # it reads each layer's full-vocabulary top-1 (engine.lens_need)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return make_labels(X, "correct")


POLICIES: dict[str, type[_Policy]] = {
    "svm": SVMPolicy, "crf": CRFPolicy, "rule": RulePolicy,
    "static": StaticDepthPolicy, "full": FullModelPolicy, "oracle": OraclePolicy,
}


def make_policy(name: str, **kwargs: Any) -> _Policy:
    """Build a policy by short name: one of ``POLICIES``."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; valid names: {list(POLICIES)}")
    return POLICIES[name](**kwargs)


# ----------------------------------------------------------------------------- simulation
def simulate(policy: _Policy, df: pd.DataFrame) -> pd.DataFrame:
    """One row per example: key columns, ``exit_layer`` (first layer signalling 1, else L),
    ``num_layers``, ``pred_id`` (top1_id at the exit layer), ``target_id``, ``correct`` and
    ``seq_len`` when present. Exact because layer l never depends on later layers (ALGORITHM.md)."""
    keys = group_keys(df)
    signal = np.asarray(policy.predict(df)).astype(int)
    if signal.shape != (len(df),):
        raise ValueError(f"policy.predict returned shape {signal.shape} for {len(df)} rows")
    work = df.reset_index(drop=True)
    layer = work["layer"].to_numpy()
    work["_fire"] = np.where(signal == 1, layer, np.iinfo(np.int64).max)
    grouped = work.groupby(keys, sort=True, dropna=False)
    agg = {"_fire": ("_fire", "min"), "num_layers": ("num_layers", "first"),
           "target_id": ("target_id", "first")}
    if "seq_len" in work.columns:
        agg["seq_len"] = ("seq_len", "first")
    sim = grouped.agg(**agg).reset_index()
    sim["exit_layer"] = np.minimum(sim.pop("_fire").to_numpy(), sim["num_layers"].to_numpy()).astype(int)
    at = work[keys + ["layer", "top1_id"]].rename(columns={"layer": "exit_layer", "top1_id": "pred_id"})
    sim = sim.merge(at, on=keys + ["exit_layer"], how="left", validate="one_to_one")
    if sim["pred_id"].isna().any():
        raise ValueError("some examples have no row at their exit layer (truncated frame?)")
    sim["pred_id"] = sim["pred_id"].astype(int)
    sim["correct"] = sim["pred_id"].to_numpy() == sim["target_id"].to_numpy()
    cols = keys + ["exit_layer", "num_layers", "pred_id", "target_id", "correct"]
    return sim[cols + (["seq_len"] if "seq_len" in sim.columns else [])]


def summarize(sim: pd.DataFrame) -> dict[str, Any]:
    """``n``, ``accuracy`` (0-1), ``mean_exit_layer``, ``exit_layer_variance`` (population variance,
    ddof=0, as a spread of the activated layer, paper §3.2), ``num_layers`` (L; the mean if mixed)."""
    exits = sim["exit_layer"].to_numpy(float)
    n_layers = sim["num_layers"].unique()
    return {
        "n": int(len(sim)),
        "accuracy": float(sim["correct"].mean()) if len(sim) else float("nan"),
        "mean_exit_layer": float(exits.mean()) if len(sim) else float("nan"),
        "exit_layer_variance": float(exits.var(ddof=0)) if len(sim) else float("nan"),
        "num_layers": int(n_layers[0]) if len(n_layers) == 1 else float(sim["num_layers"].mean()),
    }
