"""k-shot prompts in the paper's template (§5.2) and first-token targets.

Template ``Q: {x}\\nA: {y}\\n\\n`` per demonstration, then the query ``Q: {x}\\nA:``. Zero-shot is
k=0. Demonstrations are drawn (seeded per example) from the seeded train split; for tasks with a
separate demonstration pool (MMLU's dev rows) that pool comes first: the query's own subject's dev
rows, then other subjects' dev rows, then the train split (so 5-shot MMLU is the standard 5 dev rows). The target is the FIRST token of
``" " + y`` (leading space, as the tokenizer sees it after ``A:``), as in Todd et al. 2024.

Prompt-length control: if a prompt exceeds ``max_prompt_tokens``, demonstrations are dropped one
at a time from the front (never the query) and the number dropped is reported.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from transformers import PreTrainedTokenizerBase

from .tasks import Task, TaskError

DEMO_TEMPLATE = "Q: {x}\nA: {y}\n\n"
QUERY_TEMPLATE = "Q: {x}\nA:"


@dataclass(frozen=True)
class PromptItem:
    """One test query rendered as a prompt."""

    example_id: int        # index into task.examples
    prompt: str            # the exact text fed to the model
    answer: str            # the gold output y
    target_id: int         # first token of " " + y
    shots: int             # demonstrations requested
    shots_used: int        # demonstrations kept after length control
    n_tokens: int          # prompt length in tokens (with special tokens)


def render(demos: list[dict[str, str]], query: str) -> str:
    """The prompt text for demonstrations ``demos`` and query input ``query``."""
    return "".join(DEMO_TEMPLATE.format(x=d["input"], y=d["output"]) for d in demos) + \
        QUERY_TEMPLATE.format(x=query)


def target_token_id(tokenizer: PreTrainedTokenizerBase, answer: str, where: str = "") -> int:
    """Id of the first token of ``" " + answer``; a clear error if it tokenizes to nothing."""
    ids = tokenizer(" " + answer.strip(), add_special_tokens=False)["input_ids"]
    if not ids:
        raise TaskError(f"{where}answer {answer!r} tokenizes to nothing")
    return int(ids[0])


def answer_token_ids(tokenizer: PreTrainedTokenizerBase, vocab: list[str] | None) -> list[int] | None:
    """First-token ids of a classification task's answers (deduplicated, order kept), or None."""
    if not vocab:
        return None
    ids = list(dict.fromkeys(target_token_id(tokenizer, v) for v in vocab))
    return ids if len(ids) >= 2 else None


def build_prompts(task: Task, tokenizer: PreTrainedTokenizerBase, *, shots: int, seed: int = 0,
                  limit: int | None = None, max_prompt_tokens: int = 2048,
                  test_fraction: float = 0.3, split: str = "test") -> list[PromptItem]:
    """Render up to ``limit`` prompts of the task's seeded ``split`` ("test" or "train") with
    ``shots`` demonstrations each, drawn from the demonstration pool without the query itself."""
    if shots < 0:
        raise TaskError(f"task {task.name!r}: shots must be >= 0, got {shots}")
    train_ids, test_ids = task.split(seed, test_fraction)
    query_ids = test_ids if split == "test" else train_ids
    if limit is not None:
        query_ids = query_ids[:limit]
    pool = list(task.demos or []) + [task.examples[i] for i in train_ids]
    if shots > len(pool) - (1 if split == "train" else 0):
        raise TaskError(f"task {task.name!r}: {shots} shots requested but the demonstration pool has "
                        f"only {len(pool)} examples")
    items: list[PromptItem] = []
    dropped = 0
    for qid in query_ids:
        ex = task.examples[qid]
        rng = np.random.default_rng([seed, qid, shots])
        cand = [p for p in pool if p is not ex and p != ex]  # nor a duplicate row (it leaks the answer)
        if shots > len(cand):
            raise TaskError(f"task {task.name!r} example {qid}: {shots} shots requested but only "
                            f"{len(cand)} demonstrations differ from the query")
        if task.demos:  # e.g. MMLU: the query's own subject's dev rows first, then other dev rows, then train
            is_demo = {id(d) for d in task.demos}
            same = [p for p in cand if id(p) in is_demo and p.get("subject") == ex.get("subject")]
            other = [p for p in cand if id(p) in is_demo and p.get("subject") != ex.get("subject")]
            rest = [p for p in cand if id(p) not in is_demo]
            tiers = [[t[i] for i in rng.permutation(len(t))] for t in (same, other, rest)]
            demos = [d for t in tiers for d in t][:shots]
        else:
            demos = [cand[i] for i in rng.choice(len(cand), size=shots, replace=False)] if shots else []
        where = f"task {task.name!r} example {qid}: "
        target = target_token_id(tokenizer, ex["output"], where)
        while True:
            text = render(demos, ex["input"])
            n_tok = len(tokenizer(text)["input_ids"])
            if n_tok <= max_prompt_tokens or not demos:
                break
            demos = demos[1:]
            dropped += 1
        items.append(PromptItem(qid, text, ex["output"], target, shots, len(demos), n_tok))
    if dropped:
        short = sum(i.shots_used < i.shots for i in items)
        warnings.warn(f"task {task.name!r}, {shots} shots: dropped {dropped} demonstrations from {short} "
                      f"of {len(items)} prompts to fit max_prompt_tokens={max_prompt_tokens}", stacklevel=2)
    return items
