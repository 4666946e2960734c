"""The `hierbayes` command line: listing, help, clear errors with exit code 2 and no traceback,
and (slow) a real fit of a shipped card writing the report, the posterior and the tables."""

import subprocess
import sys
from pathlib import Path

import pytest

import hierbayes as hb
from hierbayes import cli

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"


def run(capsys, *argv):
    """(exit status, stdout, stderr) of `hierbayes argv`, in process."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exit_:  # argparse: --help, usage errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_clean_error(status, err, *fragments):
    assert status == 2, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("hierbayes: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])


# --- listing and help -------------------------------------------------------------------------


def test_models_lists_the_shipped_cards(capsys):
    status, out, err = run(capsys, "models", str(MODELS))
    assert status == 0 and not err
    lines = out.splitlines()
    assert len(lines) == 8
    sleep = next(line for line in lines if line.startswith("sleepstudy"))
    assert "gaussian" in sleep and "Reaction ~ Days + (Days | Subject)" in sleep
    assert any(line.startswith("cbpp") and "binomial" in line for line in lines)


def test_models_default_folder_and_long(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    status, out, _ = run(capsys, "models", "--long")
    assert status == 0
    assert "sleepstudy.toml: Reaction times of 18 subjects" in " ".join(out.split())


def test_models_reports_broken_cards(capsys, tmp_path):
    (tmp_path / "good.toml").write_text((MODELS / "sleepstudy.toml").read_text().replace(
        '"data/sleepstudy.csv"', f'"{MODELS / "data" / "sleepstudy.csv"}"'))
    (tmp_path / "bad.toml").write_text('name = "bad"\nformla = "y ~ x"\n')
    status, out, err = run(capsys, "models", str(tmp_path), "--allow-outside-data")
    assert status == 2
    assert out.startswith("sleepstudy ")
    assert "bad.toml: unknown key(s) 'formla'" in err and "Traceback" not in err
    # Without the opt-in the data path (absolute, outside the card's folder) is refused.
    status, out, err = run(capsys, "models", str(tmp_path))
    assert status == 2 and out == ""
    assert "good.toml: data path" in err and "outside the card's folder" in err


@pytest.mark.parametrize("command", [[], ["fit"], ["compare"], ["report"], ["models"]])
def test_help(capsys, command):
    status, out, _ = run(capsys, *command, "--help")
    assert status == 0
    assert out.startswith(f"usage: hierbayes {' '.join(command)}".strip())
    if command == ["fit"]:
        for option in ("--out", "--draws", "--tune", "--chains", "--seed", "--quiet"):
            assert option in out


def test_installed_entry_point():
    """`pip install -e .[test]` (scripts/test.sh) installs the console script: it must work."""
    exe = Path(sys.executable).parent / "hierbayes"
    assert exe.is_file(), f"no hierbayes entry point beside {sys.executable}"
    result = subprocess.run([str(exe), "models", str(MODELS)], capture_output=True, text=True,
                            timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr
    assert "sleepstudy" in result.stdout


# --- errors -----------------------------------------------------------------------------------


def test_unknown_card(capsys, tmp_path):
    status, _, err = run(capsys, "fit", "nosuchcard", "--out", str(tmp_path))
    assert_clean_error(status, err, "No model card 'nosuchcard'", "available: cbpp")
    status, _, err = run(capsys, "fit", str(tmp_path / "x.toml"), "--out", str(tmp_path))
    assert_clean_error(status, err, "x.toml' not found")


def test_bad_card(capsys, tmp_path):
    card = tmp_path / "bad.toml"
    card.write_text((MODELS / "pastes.toml").read_text().replace("draws =", "drawz ="))
    status, _, err = run(capsys, "fit", str(card), "--out", str(tmp_path / "out"))
    assert_clean_error(status, err, "unknown key(s) 'drawz' in [sampler]; valid keys: draws")
    assert not (tmp_path / "out").exists()  # nothing written for a bad card


def test_missing_data_file(capsys, tmp_path):
    card = tmp_path / "pastes.toml"
    card.write_text((MODELS / "pastes.toml").read_text())
    status, _, err = run(capsys, "compare", str(card), "--out", str(tmp_path))
    assert_clean_error(status, err, "data file 'data/Pastes.csv' not found")


def test_bad_formula_in_card(capsys, tmp_path):
    card = tmp_path / "bad.toml"
    text = (MODELS / "pastes.toml").read_text().replace('"data/', f'"{MODELS}/data/')
    card.write_text(text.replace("strength ~ 1", "strength ~ nosuchcolumn"))
    status, _, err = run(capsys, "fit", str(card), "--out", str(tmp_path), "--quiet",
                         "--allow-outside-data")
    assert_clean_error(status, err, "nosuchcolumn")


def test_bad_options(capsys, tmp_path):
    status, _, err = run(capsys, "fit", "sleepstudy", "--out", str(tmp_path), "--draws", "0")
    assert status == 2 and "expected a whole number >= 1, got '0'" in err
    status, _, err = run(capsys, "fit", "sleepstudy", "--draws", "10")
    assert status == 2 and "--out" in err
    status, _, err = run(capsys)
    assert status == 2 and "usage:" in err


def test_report_of_a_missing_fit(capsys, tmp_path):
    status, _, err = run(capsys, "report", str(tmp_path))
    assert_clean_error(status, err, "No saved fit at", "posterior.nc")


def test_internal_errors_exit_1_with_a_hint(capsys, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(cli, "fit_bayes", broken)
    status, _, err = run(capsys, "fit", "pastes", "--out", str(tmp_path), "--quiet")
    assert status == 1
    assert "hierbayes: error: RuntimeError: engine exploded (run with --debug" in err
    assert "Traceback" not in err
    with pytest.raises(RuntimeError, match="engine exploded"):
        cli.main(["--debug", "fit", "pastes", "--out", str(tmp_path), "--quiet"])


# --- a real fit (slow) ------------------------------------------------------------------------

TINY = ["--draws", "100", "--tune", "100", "--chains", "2", "--seed", "3"]


@pytest.mark.slow
def test_fit_writes_report_posterior_and_tables(capsys, tmp_path):
    out = tmp_path / "sleep"
    status, stdout, err = run(capsys, "fit", "sleepstudy", "--out", str(out), *TINY)
    assert "Traceback" not in err
    assert "sampling by NUTS (2 chains × 100 draws, 100 tuning)" in err  # progress on stderr
    assert stdout.startswith("sleepstudy: Reaction ~ Days + (Days | Subject)")
    assert "Fixed effects (posterior mean, SD and 95% equal-tailed" in stdout
    for name in ("report.html", "report.md", "posterior.nc", "card.toml", "fixef.csv",
                 "varcorr.csv", "ranef.csv"):
        assert (out / name).is_file(), name
    html = (out / "report.html").read_text()
    assert "<h1>sleepstudy</h1>" in html and "data:image/png;base64," in html
    assert "Posterior predictive check" in html
    reloaded = hb.load(out / "posterior.nc")
    assert reloaded.fixef().index.tolist() == ["Intercept", "Days"]

    status2, stdout2, _ = run(capsys, "report", str(out), "--out", str(tmp_path / "again"),
                              "--quiet")
    assert stdout2.startswith("wrote ")
    assert "<h1>sleepstudy</h1>" in (tmp_path / "again" / "report.html").read_text()

    assert status == 0 and status2 == 0, err
    for name in ("fixed", "variance", "groups", "reasons"):
        assert (out / f"comparison_{name}.csv").is_file(), name
    assert "Bayes vs REML" in stdout and "Bayes vs REML: verdict" in html

    status, stdout, err = run(capsys, "compare", "sleepstudy", "--out", str(out), "--posterior",
                              str(out / "posterior.nc"), "--quiet")
    assert status == 0, err
    assert (out / "comparison.html").is_file() and (out / "comparison.md").is_file()
    assert "Fixed effects" in stdout
