"""Run profiles: how much work a notebook does. Notebooks take ``PROFILE`` as a papermill parameter.

- ``ci``: what nbval runs in the test suite (seconds to a minute per notebook; a smoke test of the
  whole story on few examples, numbers are NOT meaningful).
- ``default``: what the README's main command runs (all notebooks in under 30 minutes on 2 CPU
  cores; small but real samples: 40 test examples per task and k).
- ``full``: 200 examples per task and k, k = 0/5/10/15/20, prompts up to 2048 tokens, Qwen2.5-0.5B as
  the second model. NOT run end-to-end here; estimated at roughly 10 hours on the 2-core development
  VM from the per-prompt cost of the features pass measured with ``python benchmarks/bench_profile.py
  --models gemma3-270m qwen2.5-0.5b --shots 0 5 20 --n 16`` (2026-12-05, 2 threads, batch 8, sentiment):
  Gemma-3-270M 0.18 / 0.24 / 0.67 s per prompt at k = 0 / 5 / 20 (16 / 101 / 358 tokens),
  Qwen2.5-0.5B 0.36 / 0.53 / 1.91 s; times the prompt counts (8 table tasks x 5 k x 200 = 8,000 test
  prompts per model, about as many training prompts, 2,000 calibration prompts), with the longer
  tasks (MMLU, SQuAD, AG News) at 2-5x sentiment's length. Minutes on a GPU.

Measured: ``default`` from a clean clone (fresh venv, empty model and features cache): 19 min 40 s
wall for ``bash scripts/main.sh`` including set-up at commit 5440168 (notebooks 1,098 s; 01 385 s,
08 481 s); 24 min 56 s at f6017d2 on a busier machine.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .models import DEFAULT_MODEL, TEST_MODEL


@dataclass(frozen=True)
class Profile:
    """Sizes for one run of the notebooks."""

    name: str
    model: str                       # main model of every notebook
    second_model: str                # cross-model tables (paper Table 5, Table 6 inter-model)
    limit: int                       # test examples per (task, shots)
    train_limit: int                 # training examples per task for the exit classifiers
    few_shots: tuple[int, ...]       # the paper's "few-shot" = average over these k
    batch_size: int                  # prompts per forward pass
    max_prompt_tokens: int           # demonstrations are dropped beyond this length
    seed: int = 0


PROFILES: dict[str, Profile] = {
    "ci": Profile("ci", DEFAULT_MODEL, TEST_MODEL, limit=8, train_limit=8, few_shots=(5,),
                  batch_size=8, max_prompt_tokens=512),
    # Trimmed after a contended run of 03+04 took ~92 min with (qwen2.5-0.5b, k=5/10, 768 tokens,
    # train_limit=40); with these values the whole main job took 25 min from a clean clone.
    "default": Profile("default", DEFAULT_MODEL, TEST_MODEL, limit=40, train_limit=24,
                       few_shots=(5,), batch_size=8, max_prompt_tokens=512),
    "full": Profile("full", DEFAULT_MODEL, "qwen2.5-0.5b", limit=200, train_limit=200,
                    few_shots=(5, 10, 15, 20), batch_size=8, max_prompt_tokens=2048),
}


def get_profile(name: str, **overrides) -> Profile:
    """The named profile with any non-None overrides applied (e.g. ``limit=100``)."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: use one of {', '.join(PROFILES)}")
    return replace(PROFILES[name], **{k: v for k, v in overrides.items() if v is not None})
