"""Command line: ``adainfer extract | train | calibrate | evaluate | notebooks | figures | report | data``.

Examples::

    adainfer extract --model smollm2-135m --task builtin_capitalize --shots 5 --limit 20 --out f.parquet
    adainfer train --model gemma3-270m --tasks builtin_capitalize,builtin_antonym --shots 0,5 \\
        --policy svm --out svm.json
    adainfer evaluate --model gemma3-270m --task sentiment --shots 5 --limit 50 --policy svm \\
        --policy-file svm.json --json result.json [--engine]
    adainfer calibrate --model gemma3-270m --tasks sentiment,ag_news --shots 5 --limit 120 \\
        --scorer hgb --epsilon 0.05 --out calibrated.json      # Learn-then-Test on the TRAIN splits
    adainfer evaluate --model gemma3-270m --task my_task.json --shots 5 --policy-file calibrated.json
    adainfer data builtin            # write the offline tasks as JSON into the data folder
    adainfer data download           # fetch MMLU / SST-2 / AG News / ... with HF datasets (online)

T may be a registry name (``adainfer data list``) or a path to a JSON file in the function-vector
format (a list of {"input": ..., "output": ...}).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import builtin_tasks
from .paths import data_dir


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="gemma3-270m", help="alias, Hugging Face id, local folder or .gguf")
    p.add_argument("--limit", type=int, default=50, help="examples per task (for quick runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-prompt-tokens", type=int, default=1024)


def cmd_extract(a: argparse.Namespace) -> int:
    from .features import extract

    df = extract(a.model, a.task, shots=a.shots, limit=a.limit, seed=a.seed, batch_size=a.batch_size,
                 max_prompt_tokens=a.max_prompt_tokens, split=a.split)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out, index=False)
    print(f"wrote {len(df)} rows ({df['example_id'].nunique()} examples x {df['num_layers'].iloc[0]} layers) "
          f"to {out}")
    return 0


def _policy_params(a: argparse.Namespace) -> dict:
    params: dict = {}
    if a.policy in ("svm", "crf") and a.features:
        params["features"] = tuple(_names(a.features))
    if a.policy == "svm" and a.class_weight:
        params["class_weight"] = a.class_weight
    if a.policy == "rule":
        params["threshold"] = a.threshold
    if a.policy == "static":
        params["depth"] = a.depth
    return params


def cmd_train(a: argparse.Namespace) -> int:
    from .experiments import fit, training_frame
    from .policy_io import save_policy

    train = training_frame(a.model, _names(a.tasks), a.shots, limit=a.limit, seed=a.seed,
                           batch_size=a.batch_size, max_prompt_tokens=a.max_prompt_tokens)
    policy = fit(a.policy, train, **_policy_params(a))
    save_policy(policy, a.out, model=a.model,
                features_meta={"tasks": _names(a.tasks), "shots": a.shots, "limit": a.limit, "seed": a.seed})
    print(f"trained {a.policy} on {train['example_id'].nunique()} examples x layers "
          f"({len(train)} rows) from {a.tasks}; wrote {a.out}")
    return 0


def cmd_calibrate(a: argparse.Namespace) -> int:
    """Fit a calibrated exit (:class:`calibration.CalibratedPolicy`): a confidence score (a feature
    column, or a scorer trained on a task pool / read from a saved SVM policy) and the threshold that
    Learn-then-Test certifies on the TRAIN splits of ``--tasks`` (so ``evaluate`` on their test splits
    never sees a calibration example)."""
    import warnings

    from .calibration import CalibratedPolicy, ExitScorer
    from .experiments import sample_training_pool, training_frame
    from .models import load_model
    from .policies import SVMPolicy
    from .policy_io import load_policy, save_policy

    calib_tasks = _names(a.tasks)
    CalibratedPolicy(epsilon=a.epsilon, delta=a.delta, min_layer=a.min_layer)._check_params()  # fail fast
    lm = load_model(a.model)
    fs = dict(seed=a.seed, batch_size=a.batch_size, max_prompt_tokens=a.max_prompt_tokens)
    meta: dict = {"calibration_tasks": calib_tasks, "shots": a.shots, "limit": a.limit, "seed": a.seed}
    if a.scorer_file:
        scorer = load_policy(a.scorer_file, model=a.model)
        if not isinstance(scorer, (SVMPolicy, ExitScorer)):
            raise ValueError(f"{a.scorer_file}: a scorer must be a fitted SVMPolicy or ExitScorer, "
                             f"not {type(scorer).__name__}")
        meta["scorer"] = "file " + a.scorer_file
    elif a.scorer == "feature":
        scorer = None
        meta["scorer"] = "feature " + a.score_feature
    else:
        pool = _names(a.train_tasks) if a.train_tasks else sample_training_pool(
            list(builtin_tasks.BUILTIN_TASK_NAMES), 6, a.seed, exclude=tuple(calib_tasks))
        train = training_frame(lm, pool, a.shots, limit=a.train_limit, **fs)
        feats = tuple(_names(a.features)) if a.features else None
        if a.scorer == "svm":
            scorer = SVMPolicy(**({"features": feats} if feats else {}), class_weight="balanced").fit(train)
        else:
            scorer = ExitScorer(**({"features": feats} if feats else {}), model=a.scorer).fit(train)
        meta.update(scorer=f"{a.scorer} trained on", scorer_tasks=pool, scorer_limit=a.train_limit)
    calib = training_frame(lm, calib_tasks, a.shots, limit=a.limit, **fs)
    policy = CalibratedPolicy(score_feature=a.score_feature, scorer=scorer, min_layer=a.min_layer,
                              epsilon=a.epsilon, delta=a.delta, loss=a.loss)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        policy.fit(calib)
    for w in caught:
        print(f"adainfer: warning: {w.message}", file=sys.stderr)
    save_policy(policy, a.out, model=a.model, features_meta=meta)
    verdict = (f"certified threshold {policy.threshold_:.4g}: calibration risk {policy.risk_hat_:.3f}, mean exit "
               f"layer {policy.mean_exit_layer_:.2f} of {policy.num_layers_}" if policy.certified_
               else "nothing certified: the policy is the full model")
    print(f"calibrated on {policy.n_calib_} examples of {calib_tasks} (train split, k={a.shots}); "
          f"epsilon={a.epsilon}, delta={a.delta}, loss={a.loss}; {verdict}; wrote {a.out}")
    return 0


def _json_params(policy) -> dict:
    """A policy's hyper-parameters as JSON values (a nested scorer by class and parameters)."""
    out = {}
    for k, v in policy.get_params(deep=False).items():
        if hasattr(v, "get_params"):
            v = {"class": type(v).__name__, **_json_params(v)}
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


def cmd_evaluate(a: argparse.Namespace) -> int:
    from .experiments import fit, sample_training_pool, score, training_frame
    from .features import extract
    from .models import load_model
    from .policy_io import load_policy
    from .tasks import load_task

    task = load_task(a.task)
    policy = load_policy(a.policy_file, model=a.model) if a.policy_file else None  # bad file: fail before any work
    lm = load_model(a.model)
    test = extract(lm, task, shots=a.shots, limit=a.limit, seed=a.seed, batch_size=a.batch_size,
                   max_prompt_tokens=a.max_prompt_tokens)
    if policy is not None:
        trained_on = "file " + a.policy_file
    elif a.policy in ("svm", "crf"):
        pool = _names(a.train_tasks) if a.train_tasks else sample_training_pool(
            list(builtin_tasks.BUILTIN_TASK_NAMES), 6, a.seed, exclude=(task.name,))
        train = training_frame(lm, pool, [a.shots], limit=a.limit, seed=a.seed, batch_size=a.batch_size,
                               max_prompt_tokens=a.max_prompt_tokens)
        policy = fit(a.policy, train, **_policy_params(a))
        trained_on = "tasks " + ",".join(pool)
    else:
        policy = fit(a.policy, test, **_policy_params(a))  # rule/static/full/oracle: fit learns nothing
        trained_on = "no training"
    summary, sim = score(policy, test, lm.model.config)
    full, _ = score(fit("full", test), test, lm.model.config)
    result = {"model": a.model, "task": task.name, "shots": a.shots, "policy": type(policy).__name__,
              "policy_params": _json_params(policy),
              "trained_on": trained_on, **summary, "full_model_accuracy": full["accuracy"], "seed": a.seed,
              "mode": "simulated from the features cache"}
    if a.engine:
        from .experiments import run_engine, time_full_model
        from .prompts import build_prompts

        eng, secs = run_engine(lm, task, policy, shots=a.shots, limit=a.limit, seed=a.seed,
                               batch_size=a.batch_size, max_prompt_tokens=a.max_prompt_tokens)
        merged = sim.merge(eng, on="example_id", suffixes=("", "_engine"))
        prompts = [i.prompt for i in build_prompts(task, lm.tokenizer, shots=a.shots, seed=a.seed, limit=a.limit,
                                                   max_prompt_tokens=a.max_prompt_tokens)]
        full_secs = time_full_model(lm, prompts, a.batch_size)
        result.update(mode="real early-exit engine (simulation checked)", engine_seconds=secs,
                      full_model_seconds=full_secs, wall_clock_speedup=full_secs / secs,
                      engine_matches_simulation=bool((merged["exit_layer"] == merged["exit_layer_engine"]).all()
                                                     and (merged["pred_id"] == merged["pred_id_engine"]).all()))
    text = json.dumps(result, indent=2)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(text + "\n")
    print(text)
    return 0


def cmd_data(a: argparse.Namespace) -> int:
    from .tasks import available_tasks

    if a.action == "list":
        print("\n".join(available_tasks()))
    elif a.action == "builtin":
        paths = builtin_tasks.write_builtin_tasks(data_dir() / "builtin")
        print(f"wrote {len(paths)} offline tasks to {data_dir() / 'builtin'}")
    elif a.action == "download":
        from .download import download_all

        download_all(data_dir())
    return 0


def cmd_notebooks(a: argparse.Namespace) -> int:
    from .notebooks import run_all

    timings = run_all(a.profile, _names(a.only) if a.only else None)
    total = sum(t for _, t in timings)
    print("\n".join(f"{name:40s} {secs:7.0f} s" for name, secs in timings) + f"\n{'total':40s} {total:7.0f} s")
    return 0


def cmd_figures(a: argparse.Namespace) -> int:
    import os

    from .notebooks import run_all
    from .report import update_readme

    os.environ["ADAINFER_CACHE_ONLY"] = "1"  # a features-cache miss is an error; no forward pass runs
    run_all(a.profile, _names(a.only) if a.only else None)
    print(f"regenerated figures and tables from cached features; updated {update_readme()}")
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from .report import update_readme

    print(f"updated the Results section of {update_readme()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adainfer", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("extract", help="layer-wise features of a task -> parquet")
    _common(p)
    p.add_argument("--task", required=True)
    p.add_argument("--shots", type=int, default=0)
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_extract)

    for name, func in (("train", cmd_train), ("evaluate", cmd_evaluate)):
        p = sub.add_parser(name, help="fit an exit classifier" if name == "train" else "score an exit policy")
        _common(p)
        p.add_argument("--policy", choices=["svm", "crf", "rule", "static", "full", "oracle"], default="svm")
        p.add_argument("--features", help="comma-separated feature names for svm/crf (default gap,top_prob)")
        p.add_argument("--class-weight", choices=["balanced"], default=None)
        p.add_argument("--threshold", type=float, default=0.8, help="rule: exit when gap > threshold")
        p.add_argument("--depth", type=int, default=1, help="static: exit layer")
        if name == "train":
            p.add_argument("--tasks", required=True, help="comma-separated training tasks")
            p.add_argument("--shots", type=_ints, default=[0])
            p.add_argument("--out", required=True)
        else:
            p.add_argument("--task", required=True)
            p.add_argument("--shots", type=int, default=0)
            p.add_argument("--policy-file")
            p.add_argument("--train-tasks", help="svm/crf without --policy-file: training tasks "
                                                 "(default: 6 sampled offline tasks)")
            p.add_argument("--engine", action="store_true", help="also run the real early-exit engine")
            p.add_argument("--json")
        p.set_defaults(func=func)

    p = sub.add_parser("calibrate", help="certify an exit threshold (Learn-then-Test) on tasks' train splits")
    _common(p)
    p.set_defaults(limit=120)
    p.add_argument("--tasks", required=True, help="comma-separated calibration tasks (their TRAIN splits are used)")
    p.add_argument("--shots", type=_ints, default=[5], help="comma-separated k (the calibration mixes them)")
    p.add_argument("--scorer", choices=["feature", "hgb", "logistic", "svm"], default="hgb",
                   help="feature: the --score-feature column; hgb/logistic: an ExitScorer, svm: a balanced SVM "
                        "(sigmoid of its decision function), both trained on --train-tasks")
    p.add_argument("--scorer-file", help="a saved fitted SVMPolicy or ExitScorer (policy_io) as the scorer (overrides --scorer)")
    p.add_argument("--score-feature", default="top1_ans_prob", help="--scorer feature: the score column")
    p.add_argument("--features", help="comma-separated features of a trained scorer")
    p.add_argument("--train-tasks", help="scorer training tasks (default: 6 sampled offline tasks)")
    p.add_argument("--train-limit", type=int, default=24, help="scorer training examples per task and k")
    p.add_argument("--epsilon", type=float, default=0.05, help="promised bound on the expected loss")
    p.add_argument("--delta", type=float, default=0.1, help="the promise holds with probability >= 1 - delta")
    p.add_argument("--loss", choices=["drop", "consistency"], default="drop")
    p.add_argument("--min-layer", type=int, default=2, help="earliest exit layer")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("notebooks", help="execute every notebook in order with papermill")
    p.add_argument("--profile", default="default", choices=["ci", "default", "full"])
    p.add_argument("--only", help="comma-separated notebook numbers, e.g. 01,02")
    p.set_defaults(func=cmd_notebooks)

    p = sub.add_parser("figures", help="regenerate every figure and table from the features cache "
                                       "(no forward passes), then the README's Results section")
    p.add_argument("--profile", default="default", choices=["ci", "default", "full"])
    p.add_argument("--only", help="comma-separated notebook numbers, e.g. 01,02")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("report", help="rewrite the README's Results section from results/ and figures/")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("data", help="task data: list | builtin | download")
    p.add_argument("action", choices=["list", "builtin", "download"])
    p.set_defaults(func=cmd_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, ModuleNotFoundError, NotImplementedError) as err:
        print(f"adainfer: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
