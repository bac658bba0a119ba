"""adainfer_lib.features on the real SmolLM2-135M (``slow``; offline): the table, its parquet cache,
and resuming an interrupted extraction. Only the features cache is redirected (to a tmp folder):
the converted model stays in the user cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adainfer_lib import features
from adainfer_lib.prompts import build_prompts
from adainfer_lib.tasks import load_task

pytestmark = pytest.mark.slow

TASK, SHOTS, LIMIT, BATCH, SEED = "builtin_sentiment", 1, 4, 2, 0
IDENTITY = ["model", "task", "group", "shots", "seed", "example_id", "layer", "num_layers", "prompt",
            "answer", "target_id", "shots_used", "seq_len"]
FLOATS = ["gap", "top_prob", "target_prob", "entropy", "kl_prev", "ans_gap", "ans_top_prob",
          "cos_attn", "cos_mlp", "cos_hidden"]


def _use_cache(monkeypatch, folder: Path) -> Path:
    """Redirect the features cache only, and allow forward passes (no figure-regeneration mode)."""
    monkeypatch.setattr(features, "cache_dir", lambda: folder)
    monkeypatch.delenv("ADAINFER_CACHE_ONLY", raising=False)
    return folder


def _extract(model, **kw) -> pd.DataFrame:
    args = dict(shots=SHOTS, limit=LIMIT, seed=SEED, batch_size=BATCH, progress=False)
    return features.extract(model, TASK, **(args | kw))


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".partial")]


class _Counting:
    """Wraps ``features._batch_frame``: counts calls, optionally raises on call number ``fail_on``."""

    def __init__(self, real, fail_on: int | None = None):
        self.real, self.fail_on, self.calls = real, fail_on, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt("simulated interruption")
        return self.real(*args, **kwargs)


@pytest.fixture(scope="module")
def reference(smollm2, tmp_path_factory):
    """An uninterrupted run: (frame, its cache folder)."""
    folder = tmp_path_factory.mktemp("features_ref")
    with pytest.MonkeyPatch.context() as mp:
        _use_cache(mp, folder)
        counting = _Counting(features._batch_frame)
        mp.setattr(features, "_batch_frame", counting)
        df = _extract(smollm2)
        assert counting.calls == LIMIT // BATCH
    return df, folder


def test_table(smollm2, reference):
    df, folder = reference
    L = smollm2.num_layers
    assert list(df.columns) == list(features.COLUMNS)
    assert len(df) == LIMIT * L
    task = load_task(TASK)
    _, test = task.split(SEED)
    assert sorted(df["example_id"].unique()) == sorted(test[:LIMIT])  # the first LIMIT of the permutation
    items = {i.example_id: i for i in build_prompts(task, smollm2.tokenizer, shots=SHOTS, seed=SEED, limit=LIMIT)}
    for eid, g in df.groupby("example_id"):
        assert g["layer"].tolist() == list(range(1, L + 1))
        it = items[eid]
        for col, want in (("prompt", it.prompt), ("answer", it.answer), ("target_id", it.target_id),
                          ("shots_used", it.shots_used), ("seq_len", it.n_tokens)):
            assert (g[col] == want).all(), col
        assert g["kl_prev"].isna().tolist() == [True] + [False] * (L - 1)
    assert (df["num_layers"] == L).all() and (df["model"] == smollm2.name).all()
    assert (df["task"] == TASK).all() and (df["group"] == task.group).all()
    assert (df["shots"] == SHOTS).all() and (df["seed"] == SEED).all()
    assert df["top_prob"].between(0, 1).all() and (df["gap"] <= df["top_prob"]).all()
    assert set(df["ans_top1_id"]) <= set(features.answer_token_ids(smollm2.tokenizer, task.answer_vocab))
    key = features.cache_key(smollm2.name, task, SHOTS, LIMIT, SEED, 1024)
    assert [p.name for p in (folder / "features").iterdir()] == [f"{key}.parquet"]
    assert _leftovers(folder) == []


def test_second_call_reads_the_cache(reference, monkeypatch):
    df, folder = reference
    _use_cache(monkeypatch, folder)

    def no(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(features, "layerwise_pass", no)
    monkeypatch.setattr(features, "load_model", no)         # a string spec is not even loaded
    again = _extract("smollm2-135m")
    pd.testing.assert_frame_equal(again, df)
    # figure-regeneration mode: a hit is served, a miss is an error (and still nothing runs)
    monkeypatch.setenv("ADAINFER_CACHE_ONLY", "1")
    pd.testing.assert_frame_equal(_extract("smollm2-135m"), df)
    with pytest.raises(RuntimeError, match="not in the cache"):
        _extract("smollm2-135m", limit=LIMIT + 1)


@pytest.fixture(scope="module")
def interrupted(smollm2, tmp_path_factory):
    """A cache folder left by an extraction that died in its 2nd batch (the 1st batch's chunk survives)."""
    folder = tmp_path_factory.mktemp("features_interrupted")
    with pytest.MonkeyPatch.context() as mp:
        _use_cache(mp, folder)
        failing = _Counting(features._batch_frame, fail_on=2)
        mp.setattr(features, "_batch_frame", failing)
        with pytest.raises(KeyboardInterrupt):
            _extract(smollm2)
    assert failing.calls == 2
    (partial,) = (folder / "features").glob("*.partial")
    assert len(list(partial.glob("*.parquet"))) == 1
    assert not list((folder / "features").glob("*.parquet"))  # no final file
    assert not list(folder.rglob("*.tmp"))
    return folder


def _restore(interrupted: Path, tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    shutil.copytree(interrupted, folder)
    return _use_cache(monkeypatch, folder)


def test_resume_computes_only_missing_batches(smollm2, reference, interrupted, tmp_path, monkeypatch):
    ref, _ = reference
    folder = _restore(interrupted, tmp_path, monkeypatch)
    resumed = _Counting(features._batch_frame)
    monkeypatch.setattr(features, "_batch_frame", resumed)
    df = _extract(smollm2)
    assert resumed.calls == LIMIT // BATCH - 1
    pd.testing.assert_frame_equal(df, ref)
    assert _leftovers(folder) == []
    (final,) = (folder / "features").iterdir()
    pd.testing.assert_frame_equal(pd.read_parquet(final), ref)


def test_resume_with_another_batch_size(smollm2, reference, interrupted, tmp_path, monkeypatch):
    """Chunks of an interrupted run with batch size 2 must not be reused as batches of size 4."""
    ref, _ = reference
    folder = _restore(interrupted, tmp_path, monkeypatch)
    resumed = _Counting(features._batch_frame)
    monkeypatch.setattr(features, "_batch_frame", resumed)
    df = _extract(smollm2, batch_size=LIMIT)
    assert resumed.calls == 1
    assert len(df) == len(ref) and not df.duplicated(["example_id", "layer"]).any()
    pd.testing.assert_frame_equal(df[IDENTITY], ref[IDENTITY])
    np.testing.assert_allclose(df[FLOATS].to_numpy(float), ref[FLOATS].to_numpy(float), atol=1e-4, rtol=0)
    assert _leftovers(folder) == []
