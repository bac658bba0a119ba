"""Where things live: repository folders, the raw-data folder and the user cache.

Paths never depend on the current working directory (nbval starts a kernel in the notebook's
folder, papermill in the caller's), so everything is derived from this file's location or from
environment variables:

- ``ADAINFER_DATA_DIR``: raw task data (default ``<repo>/data``). CI points it at ``../shared/data``.
- ``ADAINFER_CACHE_DIR``: converted models and features caches (default ``~/.cache/adainfer``).
- ``ADAINFER_RESULTS_DIR``: result tables (default ``<repo>/results``).
- ``ADAINFER_FIGURES_DIR``: figures (default ``<repo>/figures``).
- ``ADAINFER_CACHE_ONLY=1``: figure regeneration mode: no forward pass may run; a features-cache
  miss is an error and notebooks skip their live engine timings (``adainfer figures``).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parents[1]


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def data_dir() -> Path:
    """Folder holding raw task data (function_vectors/, mmlu/, sst2/, squad/)."""
    return _env_path("ADAINFER_DATA_DIR", REPO_ROOT / "data")


def cache_dir() -> Path:
    """User cache for converted models (``models/``) and features (``features/``). Created on use."""
    path = _env_path("ADAINFER_CACHE_DIR", Path.home() / ".cache" / "adainfer")
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    """Folder for result tables (CSV / Markdown / JSON). Created on use."""
    path = _env_path("ADAINFER_RESULTS_DIR", REPO_ROOT / "results")
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir() -> Path:
    """Folder for figures (PNG and PDF, with the CSV behind each). Created on use."""
    path = _env_path("ADAINFER_FIGURES_DIR", REPO_ROOT / "figures")
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_only() -> bool:
    """True in figure-regeneration mode (``ADAINFER_CACHE_ONLY=1``): never run the model."""
    return os.environ.get("ADAINFER_CACHE_ONLY", "") not in ("", "0")
