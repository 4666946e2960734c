"""Model cards: every shipped card loads, its data is shipped and described, its design builds and
its prior overrides name real priors; malformed cards fail with messages that say what to fix."""

import importlib.util
import subprocess
import warnings
from pathlib import Path

import pandas as pd
import pytest

import hierbayes as hb
from hierbayes.cards import (
    TOP_KEYS,
    CardError,
    SamplerSettings,
    card_paths,
    list_cards,
    load_card,
)

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
CARDS = sorted(MODELS.glob("*.toml"))
EXPECTED = {
    "radon_intercepts": ("log_radon ~ floor + (1 | county)", "gaussian"),
    "radon_slopes": ("log_radon ~ floor + (1 + floor | county)", "gaussian"),
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "gaussian"),
    "zip_income": ("income ~ 1 + (1 | zip)", "gaussian"),
    "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "gaussian"),
    "pastes": ("strength ~ 1 + (1 | batch/cask)", "gaussian"),
    "cbpp": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
    "eight_schools": ("effect ~ 1 + (1 | school)", "gaussian"),
}

GOOD = """
name = "tiny"
description = "A tiny model."
formula = "y ~ x + (1 | g)"
family = "gaussian"

[data]
path = "tiny.csv"
factors = ["g"]

[sampler]
draws = 50
chains = 2
"""


def test_the_promised_cards_are_shipped():
    cards = {card.name: card for card in list_cards(MODELS)}
    assert set(cards) == set(EXPECTED)
    for name, (formula, family) in EXPECTED.items():
        assert (cards[name].formula, cards[name].family) == (formula, family)
        assert cards[name].path.stem == name  # `hierbayes fit <name>` finds the card by file


@pytest.mark.parametrize("path", CARDS, ids=[p.stem for p in CARDS])
def test_card_loads_and_builds(path):
    card = load_card(path)
    assert card.description and card.data_path.is_file()
    assert card.data_path.parent == (MODELS / "data").resolve()
    data = card.load_data()
    for column in card.factors:
        assert data[column].map(type).eq(str).all(), column
    design = card.design(data)
    assert design.n_obs == len(data)
    priors = card.make_priors(design)  # raises on an override that names no prior
    for name in card.priors:
        assert priors.entry(name).source == "user"


def test_card_sampler_settings():
    card = load_card(MODELS / "sleepstudy.toml")
    assert card.sampler.draws >= 1000 and card.sampler.chains >= 4
    assert card.sampler.seed is not None and 0 < card.sampler.target_accept < 1
    changed = card.sampler.replace(draws=10, chains=None)
    assert (changed.draws, changed.chains) == (10, card.sampler.chains)
    assert SamplerSettings().target_accept is None


def test_eight_schools_card_carries_known_sigma_and_prior():
    card = load_card(MODELS / "eight_schools.toml")
    assert card.known_sigma == "se"
    assert card.priors["sd_school"] == hb.Prior("HalfCauchy", beta=5.0)


def test_shipped_data_are_documented_and_stored_once():
    readme = (MODELS / "data" / "README.md").read_text()
    csvs = sorted((MODELS / "data").glob("*.csv"))
    for csv in csvs:
        assert f"`{csv.name}`" in readme, f"{csv.name} has no provenance in models/data/README.md"
    assert hb.datasets.available() == sorted(c.stem for c in csvs)
    for name in ("radon", "sleepstudy", "Penicillin", "Pastes", "cbpp"):
        factors = {c: str for c in hb.datasets.FACTOR_COLUMNS[name]}
        expected = pd.read_csv(MODELS / "data" / f"{name}.csv", dtype=factors)
        pd.testing.assert_frame_equal(hb.datasets.load(name), expected)
    tracked = subprocess.run(["git", "ls-files", "*.csv"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    assert tracked and all(p.startswith("hierbayes/models/data/") for p in tracked), tracked
    assert (ROOT / "models").resolve() == (ROOT / "hierbayes" / "models").resolve()


def test_simulated_data_are_reproducible(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("simulate_cards", MODELS / "data" / "simulate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "HERE", tmp_path)
    module.main()
    for name in ("zip_income.csv", "zip_income_truth.csv", "eight_schools.csv"):
        assert (tmp_path / name).read_bytes() == (MODELS / "data" / name).read_bytes(), name
    assert len(pd.read_csv(MODELS / "data" / "zip_income.csv")["zip"].unique()) == 100


# --- bad cards --------------------------------------------------------------------------------


def write_card(folder: Path, text: str, name: str = "tiny.toml") -> Path:
    pd.DataFrame({"y": [1.0, 2, 3, 5], "x": [0, 1, 0, 1], "g": ["a", "a", "b", "b"],
                  "s": [1.0, 1, 1, 0]}).to_csv(folder / "tiny.csv", index=False)
    path = folder / name
    path.write_text(text)
    return path


def test_good_tiny_card(tmp_path):
    card = load_card(write_card(tmp_path, GOOD))
    assert (card.name, card.factors, card.sampler.draws, card.sampler.tune) == (
        "tiny", ("g",), 50, 1000)
    assert card.description == "A tiny model."
    assert [c.name for c in list_cards(tmp_path)] == ["tiny"]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t.replace('family = "gaussian"', 'family = "gaussian"\nformla = "y ~ x"'),
         r"unknown key\(s\) 'formla' in the card; valid keys: " + ", ".join(TOP_KEYS)),
        (lambda t: t.replace("draws = 50", "draw = 50"),
         r"unknown key\(s\) 'draw' in \[sampler\]; valid keys: draws, tune, chains, seed"),
        (lambda t: t.replace('factors = ["g"]', 'factors = ["g"]\nsep = ";"'),
         r"unknown key\(s\) 'sep' in \[data\]; valid keys: path, factors"),
        (lambda t: t.replace('description = "A tiny model."\n', ""),
         r"missing required key\(s\): description"),
        (lambda t: t.replace('"tiny.csv"', '"nothere.csv"'),
         r"data file 'nothere.csv' not found \(looked for .*nothere.csv\)"),
        (lambda t: t.replace("draws = 50", "draws = 0"), r"draws must be a positive integer"),
        (lambda t: t.replace("chains = 2", "chains = 2\ntarget_accept = 1.5"),
         r"target_accept must be a number in \(0, 1\)"),
        (lambda t: t.replace('name = "tiny"', "name = 3"), r"'name' must be a non-empty string"),
        (lambda t: t + "\n[priors.sd_g]\nsigma = 1.0\n", r"\[priors.sd_g\] needs distribution"),
        (lambda t: t.replace('factors = ["g"]', 'factors = "g"'), r"factors must be a list"),
        (lambda t: t.replace("[sampler]", "[sampler"), r"not valid TOML"),
    ],
)
def test_bad_cards_say_what_is_wrong(tmp_path, edit, match):
    path = write_card(tmp_path, edit(GOOD))
    with pytest.raises(CardError, match=match) as info:
        load_card(path)
    assert str(path) in str(info.value)


def test_bad_model_in_card_is_reported_with_the_file(tmp_path):
    path = write_card(tmp_path, GOOD.replace('"gaussian"', '"gausian"'))
    with pytest.raises(hb.FamilyError, match=r"tiny.toml: Unknown family 'gausian'; valid"):
        load_card(path)
    path = write_card(tmp_path, GOOD.replace("y ~ x + (1 | g)", "y ~ x + (1 | )"))
    with pytest.raises(hb.FormulaError, match=r"tiny\.toml"):
        load_card(path)


def test_card_columns_are_checked_against_the_data(tmp_path):
    card = load_card(write_card(tmp_path, GOOD.replace('["g"]', '["g", "h"]')))
    with pytest.raises(CardError, match=r"column\(s\) 'h' named by the card are not in tiny.csv"):
        card.load_data()
    card = load_card(write_card(tmp_path, GOOD.replace('family = "gaussian"',
                                                       'family = "gaussian"\nknown_sigma = "s"')))
    with pytest.raises(CardError, match="known_sigma column 's' must hold positive"):
        card.load_data()


def test_unknown_prior_name_is_rejected_when_the_design_is_known(tmp_path):
    text = GOOD + '\n[priors.sd_h]\ndistribution = "HalfNormal"\nsigma = 1.0\n'
    card = load_card(write_card(tmp_path, text))
    design = card.design()
    with pytest.raises(hb.PriorError, match="sd_h"):
        card.make_priors(design)


def test_missing_card_and_folder(tmp_path):
    with pytest.raises(CardError, match=r"Model card '.*nothere\.toml' not found"):
        load_card(tmp_path / "nothere.toml")
    with pytest.raises(CardError, match=r"folder '.*nowhere' not found"):
        card_paths(tmp_path / "nowhere")
    assert list_cards(tmp_path) == []


# --- the cards fit (slow: real NUTS runs with tiny draws) -------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("path", CARDS, ids=[p.stem for p in CARDS])
def test_card_fits(path):
    card = load_card(path)
    fit = hb.fit_bayes(card.formula, card.load_data(), family=card.family,
                       known_sigma=card.known_sigma,
                       priors=card.priors or None, draws=60, tune=60, chains=2,
                       random_seed=card.sampler.seed, progressbar=False, warn=False)
    assert list(fit.fixef().index) == list(fit.design.fixed_names)
    assert set(fit.varcorr()["group"]) >= {b.group for b in fit.design.blocks}
    # Even 2 × 60 draws put the posterior means of the fixed effects near the REML / Laplace
    # estimates of the same card (measured: within 0.33 posterior SDs, Penicillin the farthest).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.SingularFitWarning)  # eight schools: τ̂ = 0
        reml = hb.fit_reml(card.formula, card.load_data(), family=card.family,
                           known_sigma=card.known_sigma)
    bayes = fit.fixef()
    z = (bayes["estimate"] - reml.fixef()["estimate"]) / bayes["std_error"]
    assert z.abs().max() < 1.0, z
