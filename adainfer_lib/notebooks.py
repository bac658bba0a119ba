"""Run the workbook headlessly: every notebook in order with papermill.

Executed copies go to ``notebooks/executed/`` (ignored by git); the source notebooks stay stripped.
Each notebook gets ``PROFILE`` (and any extra parameters) through its ``parameters`` cell and is
run with the kernel in ``notebooks/`` (as nbval does), so relative behaviour is the same in both.
"""

from __future__ import annotations

import time
from pathlib import Path

from .paths import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def notebook_paths(only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in order (``NN_name.ipynb``), optionally filtered by number/prefix."""
    paths = sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
        if not paths:
            raise ValueError(f"no notebook matches {only}; have: {[p.name for p in notebook_paths()]}")
    return paths


def run_all(profile: str = "default", only: list[str] | None = None, **parameters) -> list[tuple[str, float]]:
    """Execute the notebooks in order; returns (name, seconds) per notebook. Stops at the first failure."""
    import papermill as pm

    out_dir = NOTEBOOK_DIR / "executed"
    out_dir.mkdir(exist_ok=True)
    timings = []
    for path in notebook_paths(only):
        t0 = time.perf_counter()
        print(f"== {path.name} (profile {profile})", flush=True)
        pm.execute_notebook(str(path), str(out_dir / path.name), parameters={"PROFILE": profile, **parameters},
                            cwd=str(NOTEBOOK_DIR), progress_bar=False, log_output=False)
        timings.append((path.name, time.perf_counter() - t0))
        print(f"   done in {timings[-1][1]:.0f} s", flush=True)
    write_run_info(profile, timings, partial=only is not None)
    return timings


def write_run_info(profile: str, timings: list[tuple[str, float]], partial: bool = False) -> Path | None:
    """Record which run produced results/ and figures/ (read by :mod:`report`).

    A full run rewrites ``results/run_info.json``. A partial run (``--only``) of the same profile adds
    its notebooks under ``"reruns"`` (notebook -> commit, date, seconds) so the record says which files
    a later commit rewrote; a partial run of another profile leaves the record alone (returns None)."""
    import datetime
    import json
    import subprocess

    from .paths import results_dir

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    path = results_dir() / "run_info.json"
    today = datetime.date.today().isoformat()
    seconds = {name.split("_")[0]: round(sec, 1) for name, sec in timings}
    if partial:
        info = json.loads(path.read_text()) if path.exists() else None
        if not info or info.get("profile") != profile:
            return None
        info.setdefault("reruns", {}).update({k: {"commit": commit, "date": today, "seconds": v}
                                              for k, v in seconds.items()})
    else:
        info = {"profile": profile, "commit": commit, "date": today, "seconds": seconds}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=1) + "\n")
    return path
