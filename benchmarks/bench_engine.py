"""Benchmark: wall-clock of the real early-exit engine against the full model (run on demand).

For each model and batch size, on the same few-shot test prompts: the plain model
(:func:`experiments.time_full_model`, last-token logits only) and the engine
(:func:`experiments.run_engine` -> :func:`engine.run_early_exit`) with the policies ``full`` (exit
at L: the engine's own overhead), ``static`` (layer L/2), ``rule`` (gap > 0.8), ``svm`` (the paper's
SVC on gap/top_prob, class_weight="balanced" so that it exits at all, trained on the task's TRAIN
split) and ``oracle``. Each time is the median of ``--repeats`` runs after a warm-up.

Printed per policy: mean exit layer, realised speed-up (full model seconds / engine seconds), the
speed-up the FLOPs predict (1 / mean ratio, paper Eq. 2 and the honest count), and where the time
goes: ``lens checks`` (mean exit x batches x the measured time of one full-vocabulary lens check,
for policies the engine checks with the full lens), ``predict`` (seconds inside
``policy.predict``, measured by a timing wrapper), the rest of the engine's per-layer overhead
(hooks, slicing, the pandas frame rebuilt at every layer; estimated from the ``full`` policy
against the plain model) and the padding share of the batches.

    python benchmarks/bench_engine.py --models gemma3-270m smollm2-135m --threads 2 --n 16

Not part of the test suite. Numbers depend on the machine and its load: see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
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
from adainfer_lib.lens import lens_features, model_inputs  # noqa: E402
from adainfer_lib.models import load_model  # noqa: E402
from adainfer_lib.policies import (FullModelPolicy, OraclePolicy, RulePolicy, StaticDepthPolicy,  # noqa: E402
                                   SVMPolicy)
from adainfer_lib.prompts import build_prompts  # noqa: E402
from adainfer_lib.tasks import load_task, resolve_tasks  # noqa: E402


class Timed:
    """Forwards ``predict`` and ``feature_names`` to a policy and adds up the seconds spent in
    ``predict``. Its class name is not the policy's: FLOPs are computed with the inner policy."""

    def __init__(self, policy: object) -> None:
        self.policy = policy
        self.seconds = 0.0

    def feature_names(self) -> list[str]:
        return list(getattr(self.policy, "feature_names", lambda: [])())

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.policy.predict(frame)
        self.seconds += time.perf_counter() - t0
        return out


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def needs_full_lens(policy: object) -> bool:
    """Whether the engine evaluates the full-vocabulary lens at every layer for this policy
    (``engine.lens_need`` where the engine has it; older engines always did)."""
    need = getattr(engine, "lens_need", None)
    return need is None or need(policy) == "full"


@torch.no_grad()
def lens_check_seconds(lm, batch: int, repeats: int) -> float:
    """Median seconds of ONE full-vocabulary lens check (final norm, head, log-softmax, top-2,
    entropy, KL) on ``batch`` rows: what every layer costs a policy reading gap/top_prob."""
    h = torch.randn(batch, lm.model.config.get_text_config().hidden_size)
    tgt = torch.zeros(batch, dtype=torch.long)
    prev = torch.log_softmax(torch.randn(batch, lm.model.config.get_text_config().vocab_size), -1)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        lens_features(lm.parts, h, tgt, None, prev)
        times.append(time.perf_counter() - t0)
    return median(times[1:])


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
        t_check = lens_check_seconds(lm, bs, repeats)
        n_batches = int(np.ceil(len(prompts) / bs))
        for pname, policy in policies.items():
            secs, pred_secs = [], []
            for _ in range(repeats):
                timed = Timed(policy)
                out, s = run_engine(lm, task, timed, shots=shots, limit=n, batch_size=bs, progress=False)
                secs.append(s)
                pred_secs.append(timed.seconds)
            fl = flops_columns(out, config, policy)
            rows.append({"model": name, "L": L, "batch": bs, "policy": pname, "n": len(out),
                         "mean_exit": out["exit_layer"].mean(), "acc": out["correct"].mean(),
                         "t_full": t_full, "t_engine": median(secs), "t_predict": median(pred_secs),
                         "speedup": t_full / median(secs),
                         "t_lens": (out["exit_layer"].mean() * n_batches * t_check if needs_full_lens(policy)
                                    else 0.0),
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
    print(df.drop(columns=["n"]).round(3).to_string(index=False))
    print("\nrealised vs predicted speed-up:")
    for (name, bs), g in df.groupby(["model", "batch"], sort=False):
        full = g[g.policy == "full"].iloc[0]
        # engine at full depth vs the plain model, minus its lens checks and predict calls: hooks and frames
        n_batches = int(np.ceil(full["n"] / bs))
        rest = full["t_engine"] - full["t_full"] - full["t_lens"] - full["t_predict"]
        per_layer = max(rest, 0) / (full["L"] * n_batches)
        print(f"{name} batch {bs}: engine overhead at full depth {full['t_engine'] / full['t_full']:.2f}x the plain "
              f"model; padding {100 * full['padding']:.0f}% of positions")
        for _, r in g.iterrows():
            print(f"  {r['policy']:7s} exit {r['mean_exit']:5.1f}/{r['L']}  realised {r['speedup']:5.2f}x  "
                  f"predicted paper {r['pred_paper']:5.2f}x honest {r['pred_honest']:5.2f}x  "
                  f"-> {explain(r, per_layer)}")


if __name__ == "__main__":
    main()
