"""Benchmark: cost per prompt of the layer-wise features pass, to size a notebook profile (on demand).

The notebooks' time is almost all features passes (:func:`features.extract`: one hooked forward
per prompt). This times ``--n`` test prompts of one task per model and k (empty features cache:
a temporary cache folder, the converted models are reused), and prints seconds per prompt and
mean prompt length. Multiply by a profile's prompt count to size it, e.g. the ``full`` profile's
tables: 8 table tasks x 5 k x 200 examples = 8,000 prompts per model (plus the training pools and
the calibration splits), with prompts up to 2,048 tokens.

    python benchmarks/bench_profile.py --models gemma3-270m qwen2.5-0.5b --shots 0 5 20 --n 16

Not part of the test suite; numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from adainfer_lib import features  # noqa: E402
from adainfer_lib.models import load_model  # noqa: E402
from adainfer_lib.tasks import resolve_tasks  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["gemma3-270m", "qwen2.5-0.5b"])
    ap.add_argument("--shots", type=int, nargs="+", default=[0, 5, 20])
    ap.add_argument("--n", type=int, default=16, help="prompts per (model, k)")
    ap.add_argument("--task", default=None, help="default: sentiment (or its offline stand-in)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-prompt-tokens", type=int, default=2048)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    task = a.task or resolve_tasks(["sentiment"], ["builtin_sentiment"])[0]
    print(f"torch {torch.__version__}, {a.threads} threads, batch {a.batch_size}, {a.n} {task} prompts per k")
    with tempfile.TemporaryDirectory() as tmp:
        features.cache_dir = lambda: Path(tmp)  # time the pass, not a cache hit
        for model in a.models:
            lm = load_model(model, device="cpu")
            for k in a.shots:
                t0 = time.perf_counter()
                df = features.extract(lm, task, shots=k, limit=a.n, seed=0, batch_size=a.batch_size,
                                      max_prompt_tokens=a.max_prompt_tokens, progress=False)
                dt = time.perf_counter() - t0
                n = df["example_id"].nunique()
                tokens = df.groupby("example_id")["seq_len"].first().mean()
                print(f"{model:14s} k={k:2d}: {dt / n:6.3f} s per prompt, {tokens:5.0f} tokens on average "
                      f"({n} prompts in {dt:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
