"""Ctrl-C aborts: `fit_bayes` raises `SamplingInterrupted` (a KeyboardInterrupt) whose partial fit
is flagged and counts its real draws, whether the sampler cut the chains (PyMC) or padded them with
NaN (nutpie); `hierbayes fit` prints "interrupted", exits 130 and writes nothing; NaN draws fail
the R-hat and ESS checks instead of passing them."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hierbayes as hb
from hierbayes.bayes import sampling
from hierbayes.bayes.interrupt import SamplingInterrupted, finite_draws
from hierbayes.datasets import load
from hierbayes.testing.fakes import fake_fit, fake_posterior

ROOT = Path(__file__).resolve().parents[1]
SLEEP = "Reaction ~ Days + (Days | Subject)"


def mock_sampler(monkeypatch, shape_result):
    """`pm.sample` and nutpie's cached path (`run_nutpie`) replaced by prior draws that
    `shape_result(idata, kwargs)` cuts or pads."""
    import warnings

    def fake_sample(**kwargs):
        spec = type("Spec", (), {"model": kwargs["model"]})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # prior draws ignore a potential
            idata = fake_posterior(spec, chains=kwargs["chains"], draws=kwargs["draws"])
        return shape_result(idata, kwargs)

    monkeypatch.setattr(sampling.pm, "sample", fake_sample)
    monkeypatch.setattr(sampling, "run_nutpie", fake_sample)


def cut_like_pymc(idata, kwargs):
    """A real SIGINT while "sampling", swallowed as PyMC does; chains cut to 30 draws."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler raises here
    except KeyboardInterrupt:
        pass
    posterior = idata["posterior"].to_dataset().isel(draw=slice(0, 30))
    stats = idata["sample_stats"].to_dataset().isel(draw=slice(0, 30))
    idata["posterior"], idata["sample_stats"] = posterior, stats
    return idata


def pad_like_nutpie(idata, kwargs):
    """No signal seen (another thread, say), but chain 1 stops after 25 draws: NaN after."""
    posterior = idata["posterior"].to_dataset()
    for name, var in posterior.data_vars.items():
        values = var.values.astype(float).copy()
        values[1, 25:] = np.nan
        posterior[name] = (var.dims, values)
    idata["posterior"] = posterior
    return idata


@pytest.mark.parametrize("marginalize", [False, None])
@pytest.mark.parametrize(("shape", "chains", "draws"),
                         [(cut_like_pymc, 2, 30), (pad_like_nutpie, 2, 25)])
def test_interrupted_sampling_raises_with_a_flagged_partial_fit(monkeypatch, marginalize, shape,
                                                                chains, draws):
    mock_sampler(monkeypatch, shape)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(SamplingInterrupted, match="interrupted") as info:
        hb.fit_bayes(SLEEP, load("sleepstudy"), draws=80, tune=10, chains=2, random_seed=1,
                     marginalize=marginalize, progressbar=False)
    assert isinstance(info.value, KeyboardInterrupt)
    partial = info.value.partial
    s = partial.settings
    assert s["interrupted"] is True and (s["chains"], s["draws"]) == (chains, draws)
    assert s["requested"] == {"chains": 2, "draws": 80}
    assert (partial.posterior.sizes["chain"], partial.posterior.sizes["draw"]) == (chains, draws)
    assert finite_draws(partial.posterior) == [draws] * chains
    assert np.isfinite(partial.fixef()["estimate"]).all()
    assert signal.getsignal(signal.SIGINT) is before  # our handler is gone again


def test_complete_sampling_returns_normally(monkeypatch):
    mock_sampler(monkeypatch, lambda idata, kwargs: idata)
    fit = hb.fit_bayes(SLEEP, load("sleepstudy"), draws=40, tune=10, chains=2, random_seed=1,
                       progressbar=False, warn=False)
    assert "interrupted" not in fit.settings and fit.posterior.sizes["draw"] == 40


def test_finite_draws_counts_leading_finite_draws():
    import xarray as xr

    values = np.ones((3, 6, 2))
    values[1, 4:, 0] = np.nan
    values[2, 0, 1] = np.inf
    ds = xr.Dataset({"a": (("chain", "draw", "k"), values),
                     "flag": (("chain", "draw"), np.ones((3, 6), bool))})
    assert finite_draws(ds) == [6, 4, 0]


# --- NaN diagnostics ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_fit():
    return fake_fit(hb.build_model(SLEEP, load("sleepstudy")), chains=4, draws=1000, seed=3)


def with_nan(fit, where):
    posterior = fit.idata["posterior"].to_dataset()
    beta = posterior["beta"].values.copy()
    beta[where] = np.nan
    tree = fit.idata.copy()
    tree["posterior"] = posterior.assign(beta=(posterior["beta"].dims, beta))
    return type(fit)(fit.spec, tree, fit.settings)


def check(fit, name):
    table = fit.diagnostics().set_index("check")
    return bool(table.loc[name, "ok"]), str(table.loc[name, "message"])


def test_clean_draws_pass_rhat_and_ess(clean_fit):
    for name in ("max R-hat", "min bulk ESS", "min tail ESS"):
        assert check(clean_fit, name) == (True, "")


@pytest.mark.parametrize(("where", "chains"),
                         [((1, slice(None)), "1"), ((2, slice(500, 510)), "2")])
@pytest.mark.parametrize("name", ["max R-hat", "min bulk ESS", "min tail ESS"])
def test_nan_draws_fail_rhat_and_ess(clean_fit, where, chains, name):
    ok, message = check(with_nan(clean_fit, where), name)
    assert not ok
    assert f"chain(s) {chains} hold non-finite (NaN) draws of it" in message
    assert "beta[Intercept]" in message


def test_draws_that_never_move_fail_rhat(clean_fit):
    posterior = clean_fit.idata["posterior"].to_dataset()
    beta = posterior["beta"].values.copy()
    beta[..., 0] = 250.0  # a stuck sampler: the same value in every draw of every chain
    tree = clean_fit.idata.copy()
    tree["posterior"] = posterior.assign(beta=(posterior["beta"].dims, beta))
    ok, message = check(type(clean_fit)(clean_fit.spec, tree, clean_fit.settings), "max R-hat")
    assert not ok and "beta[Intercept]: its draws do not vary" in message


# --- real NUTS, interrupted with SIGINT (slow) -----------------------------------------------

CHILD = """
import json, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as an interactive Python has it
import numpy as np, pandas as pd, nutpie
real = nutpie.sample
def announced(*args, **kwargs):
    print("SAMPLING", flush=True)
    return real(*args, **kwargs)
nutpie.sample = announced
rng = np.random.default_rng(1)
g = np.repeat(np.arange(100), 20)
x = rng.normal(size=g.size)
y = 1 + 0.5 * x + rng.normal(0, 1, 100)[g] + rng.normal(size=g.size)
data = pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g]})
data.to_csv(sys.argv[1] + "/data.csv", index=False)
if sys.argv[2] == "cli":
    from hierbayes.cli import main
    sys.exit(main(["fit", sys.argv[1] + "/card.toml", "--out", sys.argv[1] + "/out"]))
import hierbayes as hb
from hierbayes.bayes.interrupt import SamplingInterrupted
try:
    hb.fit_bayes("y ~ x + (1 | g)", data, draws=2_000_000, tune=300, chains=2, random_seed=1,
                 progressbar=False)
    print(json.dumps({"returned": True}), flush=True)
except SamplingInterrupted as err:
    caught = time.time()
    p = err.partial
    print(json.dumps({"caught": caught, "settings": p.settings,
                      "sizes": [p.posterior.sizes["chain"], p.posterior.sizes["draw"]],
                      "finite": bool(np.isfinite(p.fixef()["estimate"]).all())}), flush=True)
"""
CARD = """name = "big"
description = "Many draws, to be interrupted."
formula = "y ~ x + (1 | g)"
family = "gaussian"
[data]
path = "data.csv"
[sampler]
draws = 2000000
tune = 300
chains = 2
seed = 1
"""


def interrupt_child(tmp_path, mode: str, after: float = 2.0):
    """Start the child, SIGINT it `after` seconds into sampling; (returncode, stdout, stderr,
    time of the signal)."""
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "card.toml").write_text(CARD)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, str(tmp_path / "child.py"), str(tmp_path), mode],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stdout.readline()
        assert line.strip() == "SAMPLING", (line, child.stderr.read() if child.poll() else "")
        time.sleep(after)
        assert child.poll() is None, "sampling ended before the interrupt"
        sent = time.time()
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=120)
    finally:
        child.kill()
    return child.returncode, stdout, stderr, sent


@pytest.mark.slow
def test_sigint_stops_fit_bayes_within_seconds(tmp_path):
    status, stdout, stderr, sent = interrupt_child(tmp_path, "api")
    assert status == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert "returned" not in result
    assert result["caught"] - sent < 10  # within a few seconds, on a busy machine
    s = result["settings"]
    assert s["interrupted"] is True and s["requested"] == {"chains": 2, "draws": 2_000_000}
    assert 0 < s["draws"] < 2_000_000 and result["sizes"] == [s["chains"], s["draws"]]
    assert result["finite"]


@pytest.mark.slow
def test_sigint_stops_hierbayes_fit_with_130_and_no_files(tmp_path):
    status, _, stderr, _ = interrupt_child(tmp_path, "cli")
    assert status == 130, stderr
    assert "hierbayes: interrupted" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()
    assert sorted(os.listdir(tmp_path)) == ["card.toml", "child.py", "data.csv"]
