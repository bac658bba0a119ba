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

A classifier reads features from one model's logit lens (paper §5.5, Table 6 "inter-model"), so the
file records the model and the feature list; ``load_policy`` checks both when asked. Feature-free
policies (static, full, oracle) save ``features: []`` and skip the feature check.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

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
})
_CLASSES: dict[str, type[_Policy]] = {cls.__name__: cls for cls in POLICIES.values()}


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


def _fitted_state(policy: _Policy) -> dict[str, Any] | None:
    if isinstance(policy, SVMPolicy):
        if not hasattr(policy, "constant_"):
            return None
        import skops.io as sio

        blob = None if policy.svc_ is None else base64.b64encode(sio.dumps(policy.svc_)).decode("ascii")
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
    name = type(policy).__name__
    if name not in _CLASSES:
        raise ValueError(f"cannot save {name}; known classes: {sorted(_CLASSES)}")
    if not isinstance(model, str) or not model:
        raise ValueError("save_policy needs model=<non-empty model name>")
    doc = {
        "format": FORMAT, "version": VERSION, "class": name,
        "params": _jsonable(policy.get_params(deep=False)), "model": model,
        "features": list(policy.feature_names()), "features_meta": _jsonable(features_meta),
        "fitted": _fitted_state(policy),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")
    return path


def _load_svc(blob: str, path: Path) -> Any:
    import skops.io as sio
    from sklearn.svm import SVC

    data = base64.b64decode(blob)
    untrusted = sio.get_untrusted_types(data=data)
    bad = [t for t in untrusted if t not in TRUSTED_SKOPS_TYPES]
    if bad:
        raise ValueError(f"{path}: SVM state contains untrusted types {bad}")
    svc = sio.loads(data, trusted=untrusted)
    if not isinstance(svc, SVC):
        raise ValueError(f"{path}: SVM state is a {type(svc).__name__}, not an SVC")
    return svc


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
    cls = _CLASSES.get(doc["class"])
    if cls is None:
        raise ValueError(f"{path}: unknown policy class {doc['class']!r}; known: {sorted(_CLASSES)}")
    if model is not None and doc["model"] != model:
        raise ValueError(f"{path}: policy was trained for model {doc['model']!r}, requested {model!r}")
    saved = list(doc["features"])
    if features is not None and saved and saved != list(features):
        raise ValueError(f"{path}: policy was saved for features {saved}, requested {list(features)}")
    if not isinstance(doc["params"], dict):
        raise ValueError(f"{path}: 'params' must be an object")
    try:
        policy = cls(**_params_from_json(cls, doc["params"]))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: bad parameters for {cls.__name__}: {exc}") from exc
    fitted = doc["fitted"]
    if fitted is None or not isinstance(policy, (SVMPolicy, CRFPolicy)):
        return policy
    try:
        constant = fitted["constant"]
        policy.constant_ = None if constant is None else int(constant)
        policy.n_train_rows_ = int(fitted["n_train_rows"])
        if isinstance(policy, SVMPolicy):
            policy.svc_ = None if fitted["skops"] is None else _load_svc(fitted["skops"], path)
            ok = policy.svc_ is not None or policy.constant_ is not None
        else:
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
