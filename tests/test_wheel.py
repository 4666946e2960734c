"""The model cards ship in the wheel: build it from this checkout (offline, with the build tools
already installed), unpack it, and run the `hierbayes` command from a folder outside the
repository with only the unpacked wheel on the path. The README's command lines must work there.
"""

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hierbayes.cards import card_paths, load_card

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "hierbayes" / "models"


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (no build/ or egg-info in the checkout),
    unpacked into a folder of its own."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "hierbayes", source / "hierbayes",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(root / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    if build.returncode != 0 and "No module named" in build.stderr:
        pytest.skip(f"no offline wheel build here: {build.stderr.strip()[-300:]}")
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (root / "dist").glob("hierbayes-*.whl")
    site = root / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def entry_point(site: Path) -> str:
    """The console script the wheel declares, as module:function."""
    (info,) = site.glob("hierbayes-*.dist-info")
    text = (info / "entry_points.txt").read_text()
    return re.search(r"^hierbayes\s*=\s*(\S+)$", text, re.M).group(1)


def run(site: Path, cwd: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def command(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`hierbayes ARGS` as the installed script would run it."""
    module, func = entry_point(site).split(":")
    code = (f"import sys; from {module} import {func} as main; "
            "sys.argv[0] = 'hierbayes'; sys.exit(main())")
    return run(site, cwd, code, *args)


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    folder = tmp_path / "anywhere"
    folder.mkdir()
    return folder


def test_the_wheel_ships_every_card_and_its_data(unpacked):
    packaged = unpacked / "hierbayes" / "models"
    for card in card_paths(SHIPPED):
        assert (packaged / card.name).is_file(), card.name
        data = load_card(card).data_path
        assert (packaged / data.relative_to(SHIPPED)).is_file(), data


def test_models_lists_the_shipped_cards_outside_the_repository(unpacked, elsewhere):
    where = run(unpacked, elsewhere, "import hierbayes; print(hierbayes.__file__)")
    assert where.stdout.strip().startswith(str(unpacked)), where  # not this checkout's copy
    result = command(unpacked, elsewhere, "models")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert listed == {load_card(p).name for p in card_paths(SHIPPED)}
    assert "sleepstudy" in listed and len(listed) >= 8


def test_a_card_resolves_by_name_outside_the_repository(unpacked, elsewhere):
    code = ("from hierbayes.cli import resolve_card; from hierbayes.cards import load_card; "
            "card = load_card(resolve_card('sleepstudy')); data = card.load_data(); "
            "print(card.path); print(card.formula); print(len(data))")
    result = run(unpacked, elsewhere, code)
    assert result.returncode == 0, result.stderr
    path, formula, rows = result.stdout.strip().splitlines()
    assert Path(path).is_relative_to(unpacked) and formula.startswith("Reaction ~ Days")
    assert rows == "180"
    missing = command(unpacked, elsewhere, "fit", "no_such_card", "--out", "x")
    assert missing.returncode == 2 and "No model card 'no_such_card'" in missing.stderr
    assert "sleepstudy" in missing.stderr  # the message lists the cards there are
    assert not (elsewhere / "x").exists()


def readme_cards() -> list[tuple[str, str]]:
    """(subcommand, card) of each `hierbayes fit|compare CARD` line in the README."""
    text = (REPO / "README.md").read_text()
    return re.findall(r"^hierbayes (fit|compare) (\S+)", text, re.M)


def test_the_readme_command_lines_work_from_any_folder(unpacked, elsewhere):
    lines = readme_cards()
    assert len(lines) >= 2
    code = ("import sys; from hierbayes.cli import resolve_card; "
            "[print(resolve_card(a).is_file()) for a in sys.argv[1:]]")
    result = run(unpacked, elsewhere, code, *(card for _, card in lines))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"] * len(lines), lines
