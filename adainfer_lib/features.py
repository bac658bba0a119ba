"""The features table: one tidy row per (example, layer), cached as parquet.

:func:`extract` renders the prompts (:mod:`prompts`), runs the hooked layer-wise pass
(:mod:`lens`) batch by batch and returns a pandas DataFrame with the columns in :data:`COLUMNS`.
The result is cached under ``<cache>/features/<key>.parquet`` where the key hashes the model, the
task (name and content), shots, limit, seed, prompt-length limit and :data:`CODE_VERSION`.
Each finished batch is written to ``<key>.partial/<batch>.parquet`` first (atomically), so an
interrupted run resumes where it stopped; the final file is written atomically and the partial
folder removed. Nothing half-written is ever read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .lens import layerwise_pass
from .models import LM, load_model
from .paths import cache_dir, cache_only
from .prompts import PromptItem, answer_token_ids, build_prompts
from .tasks import Task, load_task

CODE_VERSION = "features-v2"  # bump when the meaning of any column or the sampled rows change
# v2: limited runs take the first n ids of the seeded permutation (v1 took the n lowest ids)
COLUMNS: tuple[str, ...] = (
    "model", "task", "group", "split", "shots", "seed", "example_id", "layer", "num_layers", "prompt",
    "answer", "target_id", "shots_used", "seq_len", "top1_id", "top2_id", "gap", "top_prob",
    "target_prob", "target_rank", "entropy", "kl_prev", "ans_top1_id", "ans_gap", "ans_top_prob",
    "cos_attn", "cos_mlp", "cos_hidden",
)


def cache_key(model: str, task: Task, shots: int, limit: int | None, seed: int,
              max_prompt_tokens: int, split: str = "test") -> str:
    """Stable key of everything the features depend on."""
    content = hashlib.sha256(json.dumps([task.examples, task.demos], sort_keys=True).encode()).hexdigest()
    blob = json.dumps([model, task.name, content, shots, limit, seed, max_prompt_tokens, CODE_VERSION]
                      + ([split] if split != "test" else []) + (["demos-v2"] if task.demos else []))
    safe = lambda s: "".join(c if c.isalnum() or c in "-_." else "_" for c in s)  # noqa: E731
    return f"{safe(model)}__{safe(task.name)}__{split}__k{shots}__n{limit}__s{seed}__" + \
        hashlib.sha256(blob.encode()).hexdigest()[:12]


def features_path(model: str, task: Task, shots: int, limit: int | None, seed: int,
                  max_prompt_tokens: int, split: str = "test") -> Path:
    """Where the cached features of this configuration live (whether or not they exist yet)."""
    key = cache_key(model, task, shots, limit, seed, max_prompt_tokens, split)
    return cache_dir() / "features" / f"{key}.parquet"


def _atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _batch_frame(lm: LM, task: Task, items: list[PromptItem], answer_ids: list[int] | None,
                 seed: int, split: str = "test") -> pd.DataFrame:
    res = layerwise_pass(lm, [i.prompt for i in items], [i.target_id for i in items], answer_ids)
    B, L = res.shape
    df = pd.DataFrame({k: v.reshape(-1).numpy() for k, v in res.features.items()})
    df.insert(0, "layer", [l + 1 for _ in range(B) for l in range(L)])
    for col, vals in (("example_id", [i.example_id for i in items]), ("prompt", [i.prompt for i in items]),
                      ("answer", [i.answer for i in items]), ("target_id", [i.target_id for i in items]),
                      ("shots_used", [i.shots_used for i in items]), ("seq_len", [i.n_tokens for i in items])):
        df[col] = [v for v in vals for _ in range(L)]
    df["model"], df["task"], df["group"] = lm.name, task.name, task.group
    df["shots"], df["seed"], df["num_layers"], df["split"] = items[0].shots, seed, L, split
    return df[list(COLUMNS)]


def extract(model: str | LM, task: str | Task, *, shots: int = 0, limit: int | None = 50, seed: int = 0,
            batch_size: int = 8, max_prompt_tokens: int = 1024, split: str = "test", use_cache: bool = True,
            progress: bool = True) -> pd.DataFrame:
    """Features for ``limit`` examples of the task's seeded ``split`` ("test", or "train" for
    classifier training data) with k = ``shots`` demonstrations on ``model``.

    Returns a DataFrame with :data:`COLUMNS`, one row per (example, layer), layers 1..L.
    ``model`` may be a spec for :func:`load_model` (loaded only if the cache misses) or an LM.
    """
    task = load_task(task) if isinstance(task, str) else task
    name = model if isinstance(model, str) else model.name
    final = features_path(name, task, shots, limit, seed, max_prompt_tokens, split)
    partial = final.with_suffix(".partial")
    if use_cache and final.exists():
        return pd.read_parquet(final)
    if cache_only():
        raise RuntimeError(f"features for {name} / {task.name} / k={shots} / {split} / limit={limit} are not in "
                           f"the cache ({final.name}) and ADAINFER_CACHE_ONLY is set: run the main job first")
    lm = load_model(model) if isinstance(model, str) else model
    items = build_prompts(task, lm.tokenizer, shots=shots, seed=seed, limit=limit,
                          max_prompt_tokens=max_prompt_tokens, split=split)
    answer_ids = answer_token_ids(lm.tokenizer, task.answer_vocab)
    # Sort by length so batches pad little; results are independent of batching (tested).
    order = sorted(range(len(items)), key=lambda i: items[i].n_tokens)
    batches = [[items[i] for i in order[s:s + batch_size]] for s in range(0, len(order), batch_size)]
    partial.mkdir(parents=True, exist_ok=True)
    frames = []
    bar = tqdm(batches, desc=f"{name} {task.name} {split} k={shots}", disable=not progress, unit="batch")
    for b, batch in enumerate(bar):
        chunk = partial / f"bs{batch_size}_{b:05d}.parquet"  # a resume with another batch size starts over
        if use_cache and chunk.exists():
            frames.append(pd.read_parquet(chunk))
            continue
        df = _batch_frame(lm, task, batch, answer_ids, seed, split)
        _atomic_parquet(df, chunk)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True).sort_values(["example_id", "layer"], kind="stable")
    out = out.reset_index(drop=True)
    _atomic_parquet(out, final)
    shutil.rmtree(partial, ignore_errors=True)
    return out


def extract_many(model: str | LM, tasks: list[str], shots: list[int], *, limit: int | None = 50,
                 seed: int = 0, max_prompt_tokens: int = 1024, split: str = "test", **kwargs) -> pd.DataFrame:
    """:func:`extract` for every (task, shots) pair, concatenated. Loads the model at most once,
    and only if some pair is not cached yet."""
    loaded = [load_task(t) for t in tasks]
    if isinstance(model, str) and not cache_only() and any(
            not features_path(model, t, k, limit, seed, max_prompt_tokens, split).exists()
            for t in loaded for k in shots):
        model = load_model(model)
    return pd.concat([extract(model, t, shots=k, limit=limit, seed=seed, max_prompt_tokens=max_prompt_tokens,
                              split=split, **kwargs) for t in loaded for k in shots], ignore_index=True)
