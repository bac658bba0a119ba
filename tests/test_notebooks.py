"""The committed notebooks: valid nbformat (cell ids included), stripped of outputs, and each with a
papermill ``parameters`` cell whose PROFILE defaults to the nbval smoke test."""

from __future__ import annotations

import nbformat
import pytest

from adainfer_lib.notebooks import notebook_paths


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_notebook_is_valid_stripped_and_parameterised(path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert all("id" in c for c in nb.cells), "every cell needs an id (nbformat 4.5)"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks stripped of outputs"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and 'PROFILE: str = "ci"' in params[0].source


def test_notebooks_are_numbered_in_order() -> None:
    names = [p.name for p in notebook_paths()]
    assert names == sorted(names) and [n[:2] for n in names] == [f"{i:02d}" for i in range(1, len(names) + 1)]
