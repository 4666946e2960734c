"""Execute every notebook so they cannot rot (small draws via HIERBAYES_DRAWS)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
DRAWS = 100

# Appended to a copy of each notebook: the draws of every Bayesian fit it made (fits and the
# fits inside comparisons), so the test knows the notebook honoured HIERBAYES_DRAWS.
PROBE = """
import hierbayes as _hb
_fits = [v for v in list(globals().values()) if isinstance(v, _hb.BayesFit)]
_fits += [v.bayes for v in list(globals().values()) if isinstance(v, _hb.Comparison)]
print("probe draws", sorted({f.settings["draws"] for f in _fits}))
"""


def test_notebooks_exist():
    assert len(NOTEBOOKS) >= 4


def test_every_cell_is_executed():
    """nbclient lets cells tagged raises-exception fail and skips skip-execution ones."""
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            tags = set(cell.get("metadata", {}).get("tags", ()))
            assert not tags & {"raises-exception", "skip-execution"}, (path.name, tags)


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
    monkeypatch.setenv("HIERBAYES_DRAWS", str(DRAWS))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code)
    (probe,) = [o["text"] for o in code[-1]["outputs"] if o.get("name") == "stdout"]
    fits = [c for c in code if "fit_bayes" in c.source or "compare_formula" in c.source]
    assert probe.strip() == (f"probe draws [{DRAWS}]" if fits else "probe draws []"), probe
