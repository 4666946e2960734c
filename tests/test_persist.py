"""Saving is atomic and loading trusts nothing: a save killed halfway leaves the old file readable;
truncated, bit-flipped, foreign, JSON-corrupt, wrong-version or edited files each raise a
`HierbayesError` naming the file; atomic writes leave the old file and no temporary behind."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes import atomic
from hierbayes.bayes.persist import META_KEY
from hierbayes.bayes.restore import LoadError
from hierbayes.datasets import load
from hierbayes.testing.fakes import fake_fit

ROOT = Path(__file__).resolve().parents[1]
SLEEP = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(path, fit) of a small fake fit saved once; tests copy the file before damaging it."""
    fit = fake_fit(hb.build_model(SLEEP, load("sleepstudy")), chains=2, draws=40)
    path = tmp_path_factory.mktemp("saved") / "fit.nc"
    fit.save(path)
    return path, fit


@pytest.fixture
def copy(saved, tmp_path):
    path = tmp_path / "fit.nc"
    path.write_bytes(saved[0].read_bytes())
    return path


def edit_meta(path: Path, change) -> None:
    with h5py.File(path, "r+") as f:
        meta = json.loads(f.attrs[META_KEY])
        change(meta)
        f.attrs[META_KEY] = json.dumps(meta)


def data_offset(path: Path, variable: str) -> tuple[int, int]:
    """(byte offset, byte size) of a posterior variable's values in the file."""
    with h5py.File(path, "r") as f:
        ds = f["posterior"][variable]
        assert ds.chunks is None and ds.compression is None  # stored contiguous, raw
        return ds.id.get_offset(), ds.id.get_storage_size()


def flip_bit(path: Path, offset: int, bit: int = 3) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))


def assert_same_tables(a, b) -> None:
    pd.testing.assert_frame_equal(a.fixef(), b.fixef())
    pd.testing.assert_frame_equal(a.varcorr(), b.varcorr())
    pd.testing.assert_frame_equal(a.ranef(), b.ranef())


# --- what loads, and what does not ----------------------------------------------------------


def test_intact_file_loads_with_the_same_tables(saved):
    path, fit = saved
    assert_same_tables(hb.load(path), fit)


def test_truncated_file(copy):
    data = copy.read_bytes()
    copy.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError, match=rf"{copy}: not a readable netCDF file .*truncated"):
        hb.load(copy)


def test_bit_flip_in_the_draws_is_caught_by_the_checksum(copy, saved):
    offset, size = data_offset(copy, "beta")
    flip_bit(copy, offset + size // 2)
    with h5py.File(copy) as f:  # the file is still valid HDF5: only a value changed
        assert not np.array_equal(f["posterior"]["beta"][...], saved[1].posterior["beta"].values)
    with pytest.raises(LoadError, match=rf"{copy}: the stored draws do not match their checksum"):
        hb.load(copy)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # h5netcdf's del
def test_bit_flips_anywhere_never_give_a_raw_error_or_wrong_tables(copy, saved):
    """Flips spread over the whole file: each load fails with HierbayesError or gives exactly
    the saved tables (a flip in unused bytes), never a raw h5py/JSON error nor other numbers."""
    original = copy.read_bytes()
    outcomes = {"refused": 0, "same": 0}
    for k in range(24):
        copy.write_bytes(original)
        flip_bit(copy, (k * 7919 + 101) % len(original), bit=k % 8)
        try:
            loaded = hb.load(copy)
        except hb.HierbayesError as err:
            assert str(copy) in str(err)
            outcomes["refused"] += 1
        else:
            assert_same_tables(loaded, saved[1])
            outcomes["same"] += 1
    assert outcomes["refused"] >= 1, outcomes  # the damage was seen at least somewhere


def test_foreign_files(tmp_path):
    text = tmp_path / "notes.nc"
    text.write_text("not netCDF at all\n")
    with pytest.raises(LoadError, match=rf"{text}: not a readable netCDF file"):
        hb.load(text)
    other = tmp_path / "other.nc"
    pd.DataFrame({"a": [1.0, 2.0]}).to_xarray().to_netcdf(other)
    with pytest.raises(LoadError, match=rf"{other} was not written by BayesFit\.save"):
        hb.load(other)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(format_version=99), r"format_version 99 is not one this hierbayes"),
        (lambda m: m.update(format_version="2"), r"format_version '2' is not one"),
        (lambda m: m.pop("formula"), r"the metadata lack the key 'formula'"),
        (lambda m: m.update(family=3), r"metadata 'family' is 3, not of type str"),
        (lambda m: m["settings"].update(draws="many"), r"settings 'draws' is 'many', not of type"),
        (lambda m: m.update(missing="ignore"), r"'missing' is 'ignore', not drop or raise"),
        (lambda m: m.update(checksum="0" * 64), r"do not match their checksum"),
        (lambda m: m["settings"].update(draws=41), r"2 chains × 40 draws, but its settings say"),
        (lambda m: m.update(priors={"sd_Subject": {"distribution": 5}}), r"cannot be rebuilt"),
    ],
)
def test_bad_metadata(copy, change, message):
    edit_meta(copy, change)
    with pytest.raises(LoadError, match=message) as info:
        hb.load(copy)
    assert str(copy) in str(info.value)


def test_metadata_that_is_not_json(copy):
    with h5py.File(copy, "r+") as f:
        f.attrs[META_KEY] = '{"format_version": 2, "formula": '
    with pytest.raises(LoadError, match=rf"{copy}: its hierbayes metadata is not valid JSON"):
        hb.load(copy)


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("Reaction ~ 1 + (Days | Subject)", r"coordinate 'fixed' of 'beta' \(Intercept, Days\)"),
        ("Reaction ~ Days + (1 | Subject)", r"coordinate 'Subject__term' of '(sd|z)_Subject'"),
        ("Reaction ~ Days + (Days | Subject) + (1 | Days)", r"lacks the variable '(sd|z)_Days'"),
    ],
)
def test_stored_formula_must_match_the_draws(copy, formula, message):
    edit_meta(copy, lambda m: m.update(formula=formula))
    with pytest.raises(LoadError, match=message) as info:
        hb.load(copy)
    assert str(copy) in str(info.value)


def test_version_1_files_without_checksum_still_load(copy, saved):
    def to_v1(meta):
        meta["format_version"] = 1
        del meta["checksum"]

    edit_meta(copy, to_v1)
    assert_same_tables(hb.load(copy), saved[1])


def test_fits_saved_before_chol_was_a_free_variable_still_load(copy, saved, tmp_path):
    """Files written before the correlation's Cholesky factor was a free variable have
    ``corr_<b>`` but no ``chol_<b>``: it is rebuilt from the correlations on load."""
    import xarray as xr

    from hierbayes.bayes.persist import checksum

    with xr.open_datatree(copy) as opened:
        tree = opened.load()
    tree["posterior"] = xr.DataTree(tree["posterior"].to_dataset().drop_vars("chol_Subject"))
    meta = json.loads(tree.attrs[META_KEY])
    meta["checksum"] = checksum(tree)
    tree.attrs = {**tree.attrs, META_KEY: json.dumps(meta)}
    old = tmp_path / "old.nc"
    tree.to_netcdf(old)
    fit = hb.load(old)
    corr = fit.posterior["corr_Subject"].values
    np.testing.assert_allclose(fit.posterior["chol_Subject"].values, np.linalg.cholesky(corr))
    assert fit.posterior["chol_Subject"].dims == fit.posterior["corr_Subject"].dims
    assert_same_tables(fit, saved[1])


# --- atomic writes --------------------------------------------------------------------------


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_failed_save_keeps_the_old_file_and_no_temporary(copy, saved, monkeypatch):
    import xarray as xr

    def half_then_fail(self, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89HDF half")
        raise OSError("disk full")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        saved[1].save(copy)
    assert leftovers(copy.parent) == []
    assert_same_tables(hb.load(copy), saved[1])


def test_atomic_helpers(tmp_path):
    target = tmp_path / "a.txt"
    atomic.write_text(target, "old")
    os.chmod(target, 0o640)

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("new, half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic.write_via(target, half_then_fail)
    assert target.read_text() == "old" and leftovers(tmp_path) == []
    atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and (target.stat().st_mode & 0o777) == 0o640
    # A link is replaced, never written through.
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    link = tmp_path / "link.txt"
    link.symlink_to(outside)
    atomic.write_text(link, "mine")
    assert outside.read_text() == "keep" and not link.is_symlink() and link.read_text() == "mine"
    # A folder is swapped in whole; a failing fill leaves the old one.
    folder = tmp_path / "figs"
    atomic.replace_dir(folder, lambda d: (d / "a.png").write_bytes(b"1"))
    with pytest.raises(ZeroDivisionError):
        atomic.replace_dir(folder, lambda d: ((d / "b.png").write_bytes(b"2"), 1 / 0))
    assert sorted(p.name for p in folder.iterdir()) == ["a.png"] and leftovers(tmp_path) == []
    atomic.replace_dir(folder, lambda d: (d / "b.png").write_bytes(b"2"))
    assert sorted(p.name for p in folder.iterdir()) == ["b.png"] and leftovers(tmp_path) == []


KILLED_SAVE = """
import sys, numpy as np, xarray as xr
import hierbayes as hb
from hierbayes.datasets import load
from hierbayes.testing.fakes import fake_fit
fit = fake_fit(hb.build_model({formula!r}, load("sleepstudy")), chains=2, draws=50)
# A big posterior (2 x 100000 draws, ~130 MB) so that writing it takes a while.
post = fit.idata["posterior"].to_dataset()
big = xr.concat([post] * 2000, dim="draw").assign_coords(draw=np.arange(100000))
fit.idata["posterior"] = xr.DataTree(big)
fit.settings["draws"] = 100000
print("saving", flush=True)
fit.save(sys.argv[1])
print("saved", flush=True)
"""


@pytest.mark.slow
def test_save_killed_while_writing_leaves_the_old_file(copy, saved, tmp_path):
    script = tmp_path / "save.py"
    script.write_text(KILLED_SAVE.format(formula=SLEEP))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, str(script), str(copy)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "saving"
        deadline, size = time.monotonic() + 120, 0
        while time.monotonic() < deadline and child.poll() is None:
            temps = [p for p in copy.parent.iterdir() if p.name.startswith(".fit.nc.")]
            size = temps[0].stat().st_size if temps else 0
            if size > 10_000_000:  # well into writing the new file
                break
            time.sleep(0.005)
        assert child.poll() is None, "the save finished before it could be killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert size > 10_000_000 and child.returncode == -signal.SIGKILL
    assert_same_tables(hb.load(copy), saved[1])  # the old file, intact
