"""Benchmark: cost of the hooked layer-wise lens pass against a plain forward (run on demand).

For each model, on ONE batch of few-shot prompts (~100-400 tokens), the median over ``--repeats``
timed runs (after one warm-up) of:

- ``plain``: ``lm.model(**inputs, logits_to_keep=1, use_cache=False)`` (the model's own last-token
  logits: what the full model costs);
- ``base``: the base decoder alone (``lm.parts.base``: embeddings -> layers -> final norm, no head);
- ``lens``: :func:`adainfer_lib.lens.layerwise_pass` (tokenisation included, as in ``features``);

and the parts ``lens`` is made of, to say where its extra time goes: ``tokenise``
(:func:`lens.model_inputs`), ``hooked base`` (the base with the capture hooks), ``lens heads``
(final norm + LM head at the last token of every layer: L matmuls of (batch, hidden) x
(hidden, vocab), each streaming the whole unembedding matrix; ``heads stacked``: the same as one
matmul), ``lens stats`` (log-softmax, top-2, entropy, KL, answer restriction over the whole
vocabulary for every layer) and ``cosines``. Prints the ratio lens / plain (target <= 1.10x).

    python benchmarks/bench_lens.py --models smollm2-135m gemma3-270m --threads 2 --batch 8

Not part of the test suite. Numbers depend on the machine and its load: see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from adainfer_lib.arch import lens_logits  # noqa: E402
from adainfer_lib.lens import _cos, capture, layerwise_pass, lens_features, model_inputs  # noqa: E402
from adainfer_lib.models import LM, load_model  # noqa: E402
from adainfer_lib.prompts import answer_token_ids, build_prompts  # noqa: E402
from adainfer_lib.tasks import load_task, resolve_tasks  # noqa: E402


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs, after one untimed warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def prompts_for(lm: LM, batch: int, shots: int, task_name: str) -> tuple[list[str], list[int], list[int] | None]:
    """``batch`` few-shot test prompts of a classification task, their targets and answer ids."""
    task = load_task(task_name)
    items = build_prompts(task, lm.tokenizer, shots=shots, seed=0, limit=batch, max_prompt_tokens=512)
    return [i.prompt for i in items], [i.target_id for i in items], answer_token_ids(lm.tokenizer, task.answer_vocab)


@torch.no_grad()
def bench_model(name: str, batch: int, shots: int, repeats: int, task_name: str) -> dict[str, float]:
    lm = load_model(name, device="cpu")
    p = lm.parts
    prompts, targets, ans = prompts_for(lm, batch, shots, task_name)
    inputs = model_inputs(lm, prompts)
    tgt = torch.tensor(targets)
    ans_t = torch.tensor(ans) if ans else None
    L = len(p.layers)
    with capture(p) as store:
        p.base(**inputs, use_cache=False)
    hidden = store["hidden"]

    def hooked_base() -> None:
        with capture(p):
            p.base(**inputs, use_cache=False)

    def heads() -> None:
        for h in hidden:
            lens_logits(p, h)

    def heads_stacked() -> None:  # the same L heads as ONE matmul: the (vocab, hidden) weight is read once
        lens_logits(p, torch.cat(hidden, dim=0))

    def stats_only() -> None:  # lens_features includes the head; subtract heads() to get the stats
        prev = None
        for h in hidden:
            _, prev = lens_features(p, h, tgt, ans_t, prev)

    def cosines() -> None:
        for l in range(1, L):
            _cos(hidden[l], hidden[l - 1])
            _cos(store["attn"][l], store["attn"][l - 1])
            _cos(store["mlp"][l], store["mlp"][l - 1])

    t = {
        "plain": median_seconds(lambda: lm.model(**inputs, logits_to_keep=1, use_cache=False), repeats),
        "base": median_seconds(lambda: p.base(**inputs, use_cache=False), repeats),
        "lens": median_seconds(lambda: layerwise_pass(lm, prompts, targets, ans), repeats),
        "tokenise": median_seconds(lambda: model_inputs(lm, prompts), repeats),
        "hooked base": median_seconds(hooked_base, repeats),
        "lens heads": median_seconds(heads, repeats),
        "heads stacked": median_seconds(heads_stacked, repeats),
        "lens features": median_seconds(stats_only, repeats),
        "cosines": median_seconds(cosines, repeats),
    }
    t["lens stats"] = max(t["lens features"] - t["lens heads"], 0.0)
    mask = inputs["attention_mask"]
    t.update(layers=L, vocab=int(lm.model.config.get_text_config().vocab_size), batch=batch,
             hidden=int(lm.model.config.get_text_config().hidden_size),
             mean_tokens=float(mask.sum(-1).float().mean()), max_tokens=int(mask.shape[1]))
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--shots", type=int, default=10, help="demonstrations per prompt (sets the length)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--task", default=None, help="default: sentiment (or its offline stand-in)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task_name = args.task or resolve_tasks(["sentiment"], ["builtin_sentiment"])[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {args.shots}-shot "
          f"{task_name}, median of {args.repeats} after a warm-up")
    for name in args.models:
        t = bench_model(name, args.batch, args.shots, args.repeats, task_name)
        ratio = t["lens"] / t["plain"]
        print(f"\n{name}: L={t['layers']} vocab={t['vocab']} batch={t['batch']} tokens mean {t['mean_tokens']:.0f} "
              f"(padded to {t['max_tokens']})")
        for k in ("plain", "base", "lens"):
            print(f"  {k:14s} {1000 * t[k]:9.1f} ms")
        print(f"  lens / plain = {ratio:.2f}x   lens / base = {t['lens'] / t['base']:.2f}x   "
              f"(target <= 1.10x: {'met' if ratio <= 1.10 else 'NOT met'})")
        extra = t["lens"] - t["plain"]
        print(f"  where the lens pass's time goes (extra over plain: {1000 * extra:.1f} ms):")
        for k in ("tokenise", "hooked base", "lens heads", "lens stats", "cosines"):
            print(f"    {k:14s} {1000 * t[k]:9.1f} ms")
        weight_mb = t["vocab"] * t["hidden"] * 4 / 2**20
        print(f"    the L={t['layers']} lens heads each read the {weight_mb:.0f} MB unembedding for only "
              f"{t['batch']} rows (memory-bound); one stacked matmul over all layers takes "
              f"{1000 * t['heads stacked']:.1f} ms")
        print(f"    hooks cost    {1000 * (t['hooked base'] - t['base']):9.1f} ms (hooked base - base); "
              f"plain - base = {1000 * (t['plain'] - t['base']):.1f} ms (the model's own head on 1 token)")


if __name__ == "__main__":
    main()
