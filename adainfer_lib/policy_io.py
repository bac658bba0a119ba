"""Save and load exit policies as JSON (no pickle of untrusted code).

File layout (``format`` "adainfer-policy", ``version`` 1)::

    {"format": "adainfer-policy", "version": 1, "class": "SVMPolicy", "params": {...get_params()},
     "model": "<model the features came from>", "features": [...], "features_meta": {...} | null,
     "fitted": null | {...}}

``fitted`` is null for an unfitted trained policy and ``{}`` for the untrained ones (rule, static,
full, oracle). SVM: ``{"constant": 0|1|null, "n_train_rows": n, "skops": base64(skops.io.dumps(svc))}``,
loaded with ``skops.io.loads`` trusting only the scikit-learn / numpy types listed in
``TRUSTED_SKOPS_TYPES`` (anything else in the file -> ValueError). CRF: ``{"constant": ...,
"n_train_rows": n, "crfsuite": base64(model file bytes)}``, opened with
``pycrfsuite.Tagger.open_inmemory``.

Calibrated exits (:class:`calibration.CalibratedPolicy`) save their parameters, with the scorer
(``params.scorer``: null, or a nested ``{"class", "params", "features", "fitted"}`` of a fitted
:class:`policies.SVMPolicy` or :class:`calibration.ExitScorer`), and the certified threshold:
``fitted = {"threshold": float | null (inf: nothing certified), "certified", "n_calib", "num_layers",
"risk_hat", "p_value", "mean_exit_layer"}``. The per-threshold ``calibration_`` table is not saved
(a loaded policy has ``calibration_ = None``). ExitScorer: ``{"constant": 0|1|null, "skops": ...}``
(gradient-boosted trees or a scaler + logistic-regression pipeline).

A classifier reads features from one model's logit lens (paper §5.5, Table 6 "inter-model"), so the
file records the model and the feature list; ``load_policy`` checks both when asked. Feature-free
policies (static, full, oracle) save ``features: []`` and skip the feature check.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

from .calibration import CalibratedPolicy, ExitScorer
from .policies import POLICIES, CRFPolicy, SVMPolicy, _Policy

FORMAT = "adainfer-policy"
VERSION = 1
TRUSTED_SKOPS_TYPES: frozenset[str] = frozenset({
    "sklearn.svm._classes.SVC",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.float64",
    "numpy.int32",
    "numpy.int64",
    "numpy.random.mtrand.RandomState",
    "numpy.random._mt19937.MT19937",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.str",
    "builtins.int",
    "builtins.float",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # ExitScorer(model="hgb")
})
# What a policy file may hold: the policies of :mod:`policies`, calibrated exits and their scorers.
_CLASSES: dict[str, type] = {cls.__name__: cls for cls in (*POLICIES.values(), CalibratedPolicy, ExitScorer)}


def _jsonable(value: Any) -> Any:
    """Hyper-parameters to JSON: tuples -> lists, dict keys -> str (class_weight {0: w}).
    ``load_policy`` returns ``features`` as a tuple and ``class_weight`` keys as ints."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value


def _params_from_json(cls: type[_Policy], params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    if "features" in out and isinstance(out["features"], list):
        out["features"] = tuple(out["features"])
    if isinstance(out.get("class_weight"), dict):
        out["class_weight"] = {int(k): float(v) for k, v in out["class_weight"].items()}
    valid = set(cls().get_params(deep=False))
    extra = set(out) - valid
    if extra:
        raise ValueError(f"unknown parameter(s) {sorted(extra)} for {cls.__name__}")
    return out


def _skops_blob(estimator: Any) -> str:
    import skops.io as sio

    return base64.b64encode(sio.dumps(estimator)).decode("ascii")


def _fitted_state(policy: Any) -> dict[str, Any] | None:
    if isinstance(policy, CalibratedPolicy):
        if not hasattr(policy, "threshold_"):
            return None
        finite = math.isfinite(policy.threshold_)
        return {"threshold": policy.threshold_ if finite else None, "certified": bool(policy.certified_),
                "n_calib": policy.n_calib_, "num_layers": policy.num_layers_, "risk_hat": policy.risk_hat_,
                "p_value": None if math.isnan(policy.p_value_) else policy.p_value_,
                "mean_exit_layer": policy.mean_exit_layer_}
    if isinstance(policy, ExitScorer):
        if not hasattr(policy, "constant_"):
            return None
        return {"constant": policy.constant_,
                "skops": None if policy.estimator_ is None else _skops_blob(policy.estimator_)}
    if isinstance(policy, SVMPolicy):
        if not hasattr(policy, "constant_"):
            return None
        blob = None if policy.svc_ is None else _skops_blob(policy.svc_)
        return {"constant": policy.constant_, "n_train_rows": policy.n_train_rows_, "skops": blob}
    if isinstance(policy, CRFPolicy):
        if not hasattr(policy, "constant_"):
            return None
        blob = None if policy.model_bytes_ is None else base64.b64encode(policy.model_bytes_).decode("ascii")
        return {"constant": policy.constant_, "n_train_rows": policy.n_train_rows_, "crfsuite": blob}
    return {}


def save_policy(policy: _Policy, path: str | Path, *, model: str,
                features_meta: dict[str, Any] | None = None) -> Path:
    """Write ``policy`` (fitted or not) to ``path`` as JSON; returns the path."""
    if not isinstance(model, str) or not model:
        raise ValueError("save_policy needs model=<non-empty model name>")
    doc = {"format": FORMAT, "version": VERSION, **_doc(policy), "model": model,
           "features_meta": _jsonable(features_meta)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")
    return path


def _doc(policy: Any) -> dict[str, Any]:
    """``{"class", "params", "features", "fitted"}`` of a policy or scorer (nested for scorers)."""
    name = type(policy).__name__
    if name not in _CLASSES:
        raise ValueError(f"cannot save {name}; known classes: {sorted(_CLASSES)}")
    params = policy.get_params(deep=False)
    if name == "CalibratedPolicy" and params.get("scorer") is not None:
        params["scorer"] = _doc(params["scorer"])
    return {"class": name, "params": _jsonable(params), "features": list(policy.feature_names()),
            "fitted": _fitted_state(policy)}


def _load_skops(blob: str, path: Path, what: str, expected: tuple[type, ...]) -> Any:
    import skops.io as sio

    data = base64.b64decode(blob)
    untrusted = sio.get_untrusted_types(data=data)
    bad = [t for t in untrusted if t not in TRUSTED_SKOPS_TYPES]
    if bad:
        raise ValueError(f"{path}: {what} state contains untrusted types {bad}")
    est = sio.loads(data, trusted=untrusted)
    if not isinstance(est, expected):
        raise ValueError(f"{path}: {what} state is a {type(est).__name__}, not one of "
                         f"{[c.__name__ for c in expected]}")
    return est


def _load_svc(blob: str, path: Path) -> Any:
    from sklearn.svm import SVC

    return _load_skops(blob, path, "SVM", (SVC,))


def load_policy(path: str | Path, *, model: str | None = None,
                features: list[str] | tuple[str, ...] | None = None) -> _Policy:
    """Read a policy written by :func:`save_policy`.

    ``model`` / ``features``: when given, must equal the saved model / feature list (ValueError
    naming both otherwise). Malformed files, wrong format/version and unknown classes raise
    ValueError naming the path.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable policy file ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not an {FORMAT!r} file")
    if doc.get("version") != VERSION:
        raise ValueError(f"{path}: unsupported version {doc.get('version')!r} (expected {VERSION})")
    missing = [k for k in ("class", "params", "model", "features", "fitted") if k not in doc]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}")
    if model is not None and doc["model"] != model:
        raise ValueError(f"{path}: policy was trained for model {doc['model']!r}, requested {model!r}")
    saved = list(doc["features"])
    if features is not None and saved and saved != list(features):
        raise ValueError(f"{path}: policy was saved for features {saved}, requested {list(features)}")
    return _from_doc(doc, path)


def _from_doc(doc: dict[str, Any], path: Path) -> Any:
    """Rebuild a policy or scorer from :func:`_doc`'s dict (ValueError naming ``path``)."""
    cls = _CLASSES.get(doc.get("class"))
    if cls is None:
        raise ValueError(f"{path}: unknown policy class {doc.get('class')!r}; known: {sorted(_CLASSES)}")
    if not isinstance(doc.get("params"), dict):
        raise ValueError(f"{path}: 'params' must be an object")
    params = dict(doc["params"])
    if cls is CalibratedPolicy and params.get("scorer") is not None:
        if not isinstance(params["scorer"], dict) or params["scorer"].get("class") not in ("SVMPolicy", "ExitScorer"):
            raise ValueError(f"{path}: a calibrated policy's scorer must be a saved SVMPolicy or ExitScorer")
        params["scorer"] = _from_doc(params["scorer"], path)
    try:
        policy = cls(**_params_from_json(cls, params))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: bad parameters for {cls.__name__}: {exc}") from exc
    fitted = doc.get("fitted")
    if fitted is None or not isinstance(policy, (SVMPolicy, CRFPolicy, CalibratedPolicy, ExitScorer)):
        return policy
    try:
        if isinstance(policy, CalibratedPolicy):
            thr = fitted["threshold"]
            policy.threshold_ = float("inf") if thr is None else float(thr)
            policy.certified_ = bool(fitted["certified"])
            policy.n_calib_, policy.num_layers_ = int(fitted["n_calib"]), int(fitted["num_layers"])
            policy.risk_hat_ = float(fitted["risk_hat"])
            policy.p_value_ = float("nan") if fitted["p_value"] is None else float(fitted["p_value"])
            policy.mean_exit_layer_ = float(fitted["mean_exit_layer"])
            policy.calibration_ = None
            policy._check_params()
            return policy
        constant = fitted["constant"]
        if isinstance(policy, ExitScorer):
            from sklearn.ensemble import HistGradientBoostingClassifier
            from sklearn.pipeline import Pipeline

            policy.constant_ = None if constant is None else float(constant)
            policy.estimator_ = None if fitted["skops"] is None else _load_skops(
                fitted["skops"], path, "ExitScorer", (HistGradientBoostingClassifier, Pipeline))
            ok = policy.estimator_ is not None or policy.constant_ is not None
        else:
            policy.constant_ = None if constant is None else int(constant)
            policy.n_train_rows_ = int(fitted["n_train_rows"])
        if isinstance(policy, SVMPolicy):
            policy.svc_ = None if fitted["skops"] is None else _load_svc(fitted["skops"], path)
            ok = policy.svc_ is not None or policy.constant_ is not None
        elif isinstance(policy, CRFPolicy):
            blob = fitted["crfsuite"]
            policy.model_bytes_ = None if blob is None else base64.b64decode(blob)
            policy._tagger = None
            if policy.model_bytes_ is not None:
                policy._get_tagger()  # fail now, not at predict time, on a corrupt model
            ok = policy.model_bytes_ is not None or policy.constant_ is not None
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ValueError(f"{path}: malformed fitted state for {cls.__name__}: {exc}") from exc
    if not ok:
        raise ValueError(f"{path}: fitted state for {cls.__name__} has neither a model nor a constant")
    return policy
