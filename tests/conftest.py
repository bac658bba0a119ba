"""Shared test setup: offline Hugging Face, the raw-data folder and the real test model.

- ``HF_HUB_OFFLINE=1`` (set before transformers is imported by any test module).
- ``ADAINFER_DATA_DIR``: if unset and ``<repo>/../shared/data`` exists, point it there (CI layout).
- ``smollm2`` fixture: the packaged SmolLM2-135M (``models.TEST_MODEL``), loaded once per session on
  the CPU; tests using it are marked ``slow`` (still run by default, offline).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
_SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
if not os.environ.get("ADAINFER_DATA_DIR") and _SHARED_DATA.is_dir():
    os.environ["ADAINFER_DATA_DIR"] = str(_SHARED_DATA)
for _p in (str(REPO_ROOT), str(Path(__file__).resolve().parent)):  # adainfer_lib and tiny_models
    if _p not in sys.path:
        sys.path.insert(0, _p)


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M test model (float32, CPU, eval, left padding)."""
    from adainfer_lib.models import TEST_MODEL, load_model

    try:
        return load_model(TEST_MODEL, device="cpu")
    except ModuleNotFoundError as err:  # its registry package is not installed here
        pytest.skip(str(err))
