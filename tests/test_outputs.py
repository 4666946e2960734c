"""The command line's output folder: a --out that is a file, cannot be created or is not writable
fails before anything is fitted; a link in it that leads out is refused; every output is written
whole or not at all (an error or Ctrl-C in the middle of a write leaves the old file and no
temporary). Sampling is mocked (prior draws): these tests are about files, not NUTS."""

import os
import time
from pathlib import Path

import pandas as pd
import pytest

import hierbayes as hb
from hierbayes import cli
from hierbayes.testing.fakes import fake_fit

ROOT = Path(__file__).resolve().parents[1]
FIT_OUTPUTS = {"posterior.nc", "card.toml", "fixef.csv", "varcorr.csv", "ranef.csv",
               "comparison_fixed.csv", "comparison_variance.csv", "comparison_groups.csv",
               "comparison_reasons.csv", "report.html", "report.md", "report_files"}


@pytest.fixture
def calls(monkeypatch):
    """Mock `fit_bayes` in the CLI by prior draws; the list records each call."""
    made = []

    def fit_bayes(formula, data, family="gaussian", priors=None, link=None, known_sigma=None,
                  **kwargs):
        made.append(formula)
        spec = hb.build_model(formula, data, family, priors, link, known_sigma=known_sigma)
        return fake_fit(spec, chains=2, draws=50)

    monkeypatch.setattr(cli, "fit_bayes", fit_bayes)
    return made


def run(capsys, *argv):
    start = time.perf_counter()
    status = cli.main(["fit", "pastes", "--quiet", *argv])
    _, err = capsys.readouterr()
    return status, err, time.perf_counter() - start


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def test_out_that_is_a_file_fails_before_fitting(tmp_path, capsys, calls):
    out = tmp_path / "taken"
    out.write_text("a file")
    status, err, seconds = run(capsys, "--out", str(out))
    assert status == 2 and f"'{out}' is a file" in err and "Traceback" not in err
    assert calls == [] and seconds < 10 and out.read_text() == "a file"


def test_out_that_cannot_be_created_fails_before_fitting(tmp_path, capsys, calls):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "sub"
    status, err, _ = run(capsys, "--out", str(out))
    assert status == 2 and "cannot be created: Not a directory" in err and calls == []


def test_out_that_is_not_writable_fails_before_fitting(capsys, calls):
    # Root writes anywhere a mode allows, so take a folder the kernel itself refuses.
    if not Path("/sys").is_dir() or _writable("/sys"):
        pytest.skip("no unwritable folder to test with")
    status, err, _ = run(capsys, "--out", "/sys")
    assert status == 2 and "'/sys' is not writable" in err and calls == []


def _writable(folder: str) -> bool:
    try:
        Path(folder, ".hierbayes-probe").touch()
    except OSError:
        return False
    Path(folder, ".hierbayes-probe").unlink()
    return True


@pytest.mark.parametrize("name", ["report.html", "report_files", "posterior.nc", "ranef.csv"])
def test_link_leading_out_of_the_folder_is_refused(tmp_path, capsys, calls, name):
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (outside / "precious").write_text("keep")
    (out / name).symlink_to(outside / ("precious" if "." in name else ""))
    status, err, _ = run(capsys, "--out", str(out))
    assert status == 2 and f"{out / name} is a symbolic link to" in err
    assert "outside the output folder" in err and calls == []
    assert (outside / "precious").read_text() == "keep" and os.listdir(outside) == ["precious"]


@pytest.mark.slow
def test_outputs_complete_or_not_at_all(tmp_path, capsys, calls, monkeypatch):
    out = tmp_path / "new" / "out"
    out.mkdir(parents=True)
    (out / "mine.md").write_text("mine")
    (out / "report.md").symlink_to(out / "mine.md")  # a link inside the folder is fine
    status, err, _ = run(capsys, "--out", str(out))
    assert status == 0, err
    assert set(os.listdir(out)) == FIT_OUTPUTS | {"mine.md"} and hidden(out) == []
    assert (out / "mine.md").read_text() == "mine" and not (out / "report.md").is_symlink()
    assert sorted(p.name for p in (out / "report_files").iterdir())  # PNGs written
    before = {name: (out / name).read_bytes() for name in ("ranef.csv", "report.html")}
    loaded = hb.load(out / "posterior.nc")
    assert list(loaded.fixef().index) == ["Intercept"]

    # A write that breaks halfway (disk full), then one interrupted halfway (Ctrl-C).
    original = pd.DataFrame.to_csv
    for error, status_wanted, said in ((OSError("No space left"), 2, "No space left"),
                                       (KeyboardInterrupt(), 130, "interrupted")):

        def half_then_fail(self, path, *args, error=error, **kwargs):
            if ".ranef.csv." in str(path):
                Path(path).write_text("group,level\nhalf")
                raise error
            return original(self, path, *args, **kwargs)

        monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
        status, err, _ = run(capsys, "--out", str(out))
        assert status == status_wanted and said in err, err
        assert (out / "ranef.csv").read_bytes() == before["ranef.csv"]  # the old, whole
        assert (out / "report.html").read_bytes() == before["report.html"]  # not yet rewritten
        assert hidden(out) == []


def test_failed_command_removes_the_folder_it_created(tmp_path, capsys, calls, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "fit_bayes", interrupted)
    out = tmp_path / "a" / "b"
    status, err, _ = run(capsys, "--out", str(out))
    assert status == 130 and "interrupted" in err
    assert not (tmp_path / "a").exists()  # created for the run, removed again while empty
    existing = tmp_path / "kept"
    existing.mkdir()
    status, _, _ = run(capsys, "--out", str(existing))
    assert status == 130 and existing.is_dir()  # a folder the user had is left alone
