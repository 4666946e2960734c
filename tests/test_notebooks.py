"""Execute every notebook so they cannot rot (small draws via HIERBAYES_DRAWS)."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_notebooks_exist():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_outputs_are_clean(path):
    """The shipped outputs (notebooks/make_notebooks.py --run) show results, not warnings."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert cells and all(c.get("execution_count") for c in cells)  # executed, not just written
    for cell in cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", cell.source
            assert out.get("name") != "stderr", (cell.source, out.get("text", "")[:300])
            text = out.get("text", "") or "".join(out.get("data", {}).get("text/plain", ""))
            assert "Warning" not in text, (cell.source, text[:300])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    monkeypatch.setenv("HIERBAYES_DRAWS", "100")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert os.environ["HIERBAYES_DRAWS"] == "100"
