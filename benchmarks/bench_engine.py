"""Benchmark: wall-clock of the real early-exit engine against the full model (run on demand).

For each model and batch size, on the same few-shot test prompts: the plain model
(:func:`experiments.time_full_model`, last-token logits only) and the engine
(:func:`experiments.run_engine` -> :func:`engine.run_early_exit`) with the policies ``full`` (exit
at L: the engine's own overhead), ``static`` (layer L/2), ``rule`` (gap > 0.8), ``svm`` (the paper's
SVC on gap/top_prob, class_weight="balanced" so that it exits at all, trained on the task's TRAIN
split), ``oracle`` and ``never`` (gap > 2: checks the full lens at every layer and never exits,
which isolates the cost of the checks). Each time is the median of ``--repeats`` runs after a warm-up.

Printed per policy: mean exit layer, realised speed-up (full model seconds / engine seconds), the
speed-up the FLOPs predict (1 / mean ratio, paper Eq. 2 and the honest count), and where the time
goes: ``lens checks`` (mean exit x batches x the in-engine cost of one full-vocabulary lens check
per layer and batch, from ``never`` - ``full``, for policies the engine checks with the full
lens), ``predict`` (seconds inside
``policy.predict``, measured on a shallow copy whose ``predict`` is timed), the rest of the engine's per-layer overhead
(hooks, slicing, the pandas frame rebuilt at every layer; estimated from the ``full`` policy
against the plain model) and the padding share of the batches.

    python benchmarks/bench_engine.py --models gemma3-270m smollm2-135m --threads 2 --n 16

Not part of the test suite. Numbers depend on the machine and its load: see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from adainfer_lib.experiments import flops_columns, run_engine, time_full_model  # noqa: E402
from adainfer_lib.features import extract  # noqa: E402
from adainfer_lib import engine  # noqa: E402
from adainfer_lib.lens import model_inputs  # noqa: E402
from adainfer_lib.models import load_model  # noqa: E402
from adainfer_lib.policies import (FullModelPolicy, OraclePolicy, RulePolicy, StaticDepthPolicy,  # noqa: E402
                                   SVMPolicy)
from adainfer_lib.prompts import build_prompts  # noqa: E402
from adainfer_lib.tasks import load_task, resolve_tasks  # noqa: E402


def timed(policy: object) -> tuple[object, list[float]]:
    """A shallow copy of ``policy`` whose ``predict`` adds the seconds it spends to the returned
    one-element list. The copy keeps the policy's class, so the engine (``engine.lens_need``) and
    the FLOPs count treat it exactly as the policy itself; a wrapper object would not."""
    twin = copy.copy(policy)
    spent = [0.0]
    inner = policy.predict

    def predict(frame: pd.DataFrame) -> np.ndarray:
        t0 = time.perf_counter()
        out = inner(frame)
        spent[0] += time.perf_counter() - t0
        return out

    twin.predict = predict
    return twin, spent


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def padding_share(lm, prompts: list[str], batch_size: int) -> float:
    """Share of the token positions the batches spend on padding (prompts in test order)."""
    pad = total = 0
    for s in range(0, len(prompts), batch_size):
        mask = model_inputs(lm, prompts[s:s + batch_size])["attention_mask"]
        pad += int((mask == 0).sum())
        total += mask.numel()
    return pad / total


def bench(name: str, task_name: str, shots: int, n: int, batch_sizes: list[int], repeats: int) -> list[dict]:
    lm = load_model(name, device="cpu")
    config = lm.model.config
    L = lm.num_layers
    task = load_task(task_name)
    prompts = [i.prompt for i in build_prompts(task, lm.tokenizer, shots=shots, seed=0, limit=n)]
    train = extract(lm, task, shots=shots, limit=n, split="train", progress=False)
    policies = {
        "full": FullModelPolicy(),
        "never": RulePolicy(threshold=2.0),  # checks the full lens at every layer, never exits (gap <= 1)
        "static": StaticDepthPolicy(depth=max(1, L // 2)),
        "rule": RulePolicy(threshold=0.8),
        "svm": SVMPolicy(class_weight="balanced").fit(train),
        "oracle": OraclePolicy(),
    }
    run_engine(lm, task, policies["full"], shots=shots, limit=min(n, 2), batch_size=1, progress=False)  # warm-up
    rows = []
    for bs in batch_sizes:
        t_full = median([time_full_model(lm, prompts, bs) for _ in range(repeats + 1)][1:])
        pad = padding_share(lm, prompts, bs)
        n_batches = int(np.ceil(len(prompts) / bs))
        for pname, policy in policies.items():
            secs, pred_secs = [], []
            for _ in range(repeats):
                twin, spent = timed(policy)
                out, s = run_engine(lm, task, twin, shots=shots, limit=n, batch_size=bs, progress=False)
                secs.append(s)
                pred_secs.append(spent[0])
            fl = flops_columns(out, config, policy)
            rows.append({"model": name, "L": L, "batch": bs, "policy": pname, "n": len(out),
                         "mean_exit": out["exit_layer"].mean(), "acc": out["correct"].mean(),
                         "t_full": t_full, "t_engine": median(secs), "t_predict": median(pred_secs),
                         "speedup": t_full / median(secs), "n_batches": n_batches,
                         "full_lens": engine.lens_need(policy) == "full",
                         "pred_paper": 1 / fl["flops_ratio_paper"].mean(),
                         "pred_honest": 1 / fl["flops_ratio_honest"].mean(), "padding": pad})
    return rows


def explain(r: pd.Series, per_layer: float) -> str:
    """Where the gap between realised and honest-predicted speed-up comes from, in words."""
    gap = r["speedup"] / r["pred_honest"] - 1
    head = "within 10% of the honest prediction" if abs(gap) <= 0.10 else f"{100 * gap:+.0f}% vs honest"
    parts = [f"lens checks ~{r['t_lens']:.2f}s ({100 * r['t_lens'] / r['t_engine']:.0f}%)",
             f"policy.predict {r['t_predict']:.2f}s ({100 * r['t_predict'] / r['t_engine']:.0f}%)",
             f"hooks+frames ~{1000 * per_layer:.0f} ms/layer/batch"]
    if r["padding"] > 0.1:
        parts.append(f"padding {100 * r['padding']:.0f}% of positions")
    return head + ": " + "; ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["gemma3-270m", "smollm2-135m"])
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--n", type=int, default=16, help="test prompts per run")
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--task", default=None, help="default: sentiment (or its offline stand-in)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task_name = args.task or resolve_tasks(["sentiment"], ["builtin_sentiment"])[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.n} {args.shots}-shot {task_name} "
          f"prompts, median of {args.repeats} after a warm-up")
    rows = []
    for name in args.models:
        rows += bench(name, task_name, args.shots, args.n, args.batch_sizes, args.repeats)
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(df.drop(columns=["n", "n_batches", "full_lens"]).round(3).to_string(index=False))
    print("\nrealised vs predicted speed-up:")
    for (name, bs), g in df.groupby(["model", "batch"], sort=False):
        g = g.set_index("policy")
        full, never, L, nb = g.loc["full"], g.loc["never"], g.loc["full", "L"], g.loc["full", "n_batches"]
        # in-situ costs per layer and batch: a full-vocabulary lens check ("never" - "full": same depth,
        # only the checks differ) and the rest of the engine's per-layer work ("full" - plain model)
        per_check = max(never["t_engine"] - full["t_engine"], 0) / (L * nb)
        per_layer = max(full["t_engine"] - full["t_full"] - full["t_predict"], 0) / (L * nb)
        g["t_lens"] = np.where(g["full_lens"], g["mean_exit"] * nb * per_check, 0.0)
        print(f"{name} batch {bs}: engine at full depth {full['t_engine'] / full['t_full']:.2f}x the plain model "
              f"(hooks+frames ~{1000 * per_layer:.0f} ms/layer/batch); a full-vocabulary lens check "
              f"~{1000 * per_check:.0f} ms/layer/batch; padding {100 * full['padding']:.0f}% of positions")
        for pname, r in g.iterrows():
            print(f"  {pname:7s} exit {r['mean_exit']:5.1f}/{L}  realised {r['speedup']:5.2f}x  "
                  f"predicted paper {r['pred_paper']:5.2f}x honest {r['pred_honest']:5.2f}x  "
                  f"-> {explain(r, per_layer)}")


if __name__ == "__main__":
    main()
