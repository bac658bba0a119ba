"""adainfer_lib.report and notebooks.write_run_info: the README's generated Results section says
which run (profile, commit, re-runs) produced results/, and is replaced in place, never appended twice."""

from __future__ import annotations

import json

import pytest

from adainfer_lib import report
from adainfer_lib.notebooks import write_run_info


@pytest.fixture()
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAINFER_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("ADAINFER_FIGURES_DIR", str(tmp_path / "figures"))
    return tmp_path


def test_run_info_full_then_partial(dirs) -> None:
    path = write_run_info("default", [("01_layer_accuracy.ipynb", 600.04), ("08_pareto.ipynb", 480.0)])
    info = json.loads(path.read_text())
    assert info["profile"] == "default" and info["seconds"] == {"01": 600.0, "08": 480.0} and "reruns" not in info
    assert write_run_info("ci", [("08_pareto.ipynb", 5.0)], partial=True) is None   # another profile: untouched
    assert json.loads(path.read_text()) == info
    write_run_info("default", [("08_pareto.ipynb", 300.0)], partial=True)
    info = json.loads(path.read_text())
    assert info["seconds"]["08"] == 480.0 and info["reruns"]["08"]["seconds"] == 300.0
    text = report.build_section()
    assert "--profile default" in text and "Notebook 08 was re-run alone" in text
    # without any run record the section says the files come from separate runs
    path.unlink()
    assert write_run_info("default", [("08_pareto.ipynb", 1.0)], partial=True) is None
    assert "separate notebook runs" in report.build_section()


def test_update_readme_replaces_the_section(dirs) -> None:
    results = dirs / "results"
    results.mkdir()
    (results / "08_wallclock.md").write_text("| batch | speed-up |\n|---:|---:|\n| 8 | 1.5 |\n")
    readme = dirs / "README.md"
    readme.write_text("# title\n\ntext before\n")
    report.update_readme(readme)
    first = readme.read_text()
    assert first.startswith("# title\n\ntext before\n") and first.count(report.BEGIN) == 1
    assert "batch 1 and 8" in first and "| 8 | 1.5 |" in first
    readme.write_text(first + "\ntext after\n")
    report.update_readme(readme)
    second = readme.read_text()
    assert second.count(report.BEGIN) == second.count(report.END) == 1 and second.endswith("text after\n")
