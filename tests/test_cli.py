"""The command line as a new user drives it: train -> evaluate, calibrate -> evaluate on a task given
as a JSON file that nothing was trained or calibrated on, the real engine checked against the
simulation, and one-line errors for bad input. Real SmolLM2-135M, a handful of examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adainfer_lib import builtin_tasks
from adainfer_lib.cli import main
from adainfer_lib.models import TEST_MODEL

pytestmark = pytest.mark.slow
COMMON = ["--model", TEST_MODEL, "--batch-size", "4", "--max-prompt-tokens", "256"]
KEYS = {"model", "task", "shots", "n", "accuracy", "flops_ratio_paper", "flops_ratio_honest", "mean_exit_layer",
        "exit_layer_variance", "num_layers"}


@pytest.fixture(scope="module")
def unseen_json(tmp_path_factory, smollm2) -> Path:  # smollm2: skip when the model package is missing
    """A task as a user would bring it: a function-vector JSON file (the offline antonym task)."""
    folder = tmp_path_factory.mktemp("tasks")
    return next(p for p in builtin_tasks.write_builtin_tasks(folder) if p.stem == "builtin_antonym")


def _evaluate(tmp_path: Path, task: Path, *extra: str) -> dict:
    out = tmp_path / "result.json"
    assert main(["evaluate", *COMMON, "--task", str(task), "--shots", "2", "--limit", "4", "--json", str(out),
                 *extra]) == 0
    result = json.loads(out.read_text())
    assert KEYS <= set(result) and result["task"] == task.stem and result["n"] == 4
    assert 0 <= result["accuracy"] <= 1 and 0 < result["flops_ratio_paper"] <= 1 + 1e-9
    assert 1 <= result["mean_exit_layer"] <= result["num_layers"] == 30
    return result


def test_train_then_evaluate_on_a_json_task(tmp_path, unseen_json) -> None:
    policy = tmp_path / "svm.json"
    assert main(["train", *COMMON, "--tasks", "builtin_capitalize,builtin_country_capital", "--shots", "0,2",
                 "--limit", "4", "--policy", "svm", "--class-weight", "balanced", "--features",
                 "gap,top_prob,rel_depth", "--out", str(policy)]) == 0
    saved = json.loads(policy.read_text())
    assert saved["class"] == "SVMPolicy" and saved["features"] == ["gap", "top_prob", "rel_depth"]
    result = _evaluate(tmp_path, unseen_json, "--policy-file", str(policy), "--engine")
    assert result["policy"] == "SVMPolicy" and result["trained_on"] == f"file {policy}"
    assert result["engine_matches_simulation"] is True and result["wall_clock_speedup"] > 0


def test_calibrate_then_evaluate_on_an_unseen_json_task(tmp_path, unseen_json, capsys) -> None:
    policy = tmp_path / "calibrated.json"
    assert main(["calibrate", *COMMON, "--tasks", "builtin_sentiment", "--shots", "2", "--limit", "10",
                 "--scorer", "logistic", "--train-tasks", "builtin_capitalize", "--train-limit", "4",
                 "--epsilon", "0.3", "--delta", "0.2", "--out", str(policy)]) == 0
    assert "calibrated on 10 examples of ['builtin_sentiment']" in capsys.readouterr().out
    saved = json.loads(policy.read_text())
    assert saved["class"] == "CalibratedPolicy" and saved["params"]["scorer"]["class"] == "ExitScorer"
    assert saved["features_meta"]["scorer_tasks"] == ["builtin_capitalize"] and saved["fitted"]["n_calib"] == 10
    result = _evaluate(tmp_path, unseen_json, "--policy-file", str(policy), "--engine")
    assert result["policy"] == "CalibratedPolicy" and result["policy_params"]["scorer"]["class"] == "ExitScorer"
    assert result["policy_params"]["epsilon"] == 0.3 and result["engine_matches_simulation"] is True
    # a calibrated exit on a feature column needs no scorer training
    feature = tmp_path / "feature.json"
    assert main(["calibrate", *COMMON, "--tasks", "builtin_sentiment", "--shots", "2", "--limit", "10",
                 "--scorer", "feature", "--score-feature", "ans_top_prob", "--epsilon", "0.3", "--out",
                 str(feature)]) == 0
    assert json.loads(feature.read_text())["params"]["scorer"] is None


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--task", "no/such/task.json", "--shots", "0", "--limit", "2"], "no/such/task.json"),
    (["evaluate", "--task", "builtin_antonym", "--shots", "0", "--limit", "2", "--policy-file", "missing.json"],
     "missing.json"),
    (["calibrate", "--tasks", "builtin_sentiment", "--shots", "0", "--limit", "2", "--scorer", "feature",
      "--epsilon", "2", "--out", "x.json"], "epsilon must be in (0, 1)"),
])
def test_errors_are_one_line(argv, message, capsys, smollm2) -> None:
    assert main([argv[0], *COMMON, *argv[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert "Loading weights" not in err, "bad input must fail before the model loads"
    assert err.startswith("adainfer: error:") and message in err and "\n" not in err
