"""Formulas and cards from hostile hands: no payload in a formula runs (Python API, a card run by
the command line, a tampered saved fit, `hierbayes report`), each is refused naming its token; the
allowed transforms give formulaic's numbers, and the stateful ones (scale, center, standardize,
poly, bs) work in the fixed part, in bars and on new data; card data stay in the card's folder and
a file that is not a table is never quoted."""

import contextlib
import json
import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from formulaic import model_matrix

import hierbayes as hb
from hierbayes import cli
from hierbayes.bayes.persist import META_KEY
from hierbayes.cards import CardError, load_card
from hierbayes.datasets import load
from hierbayes.design import make_design
from hierbayes.testing.fakes import fake_fit

ROOT = Path(__file__).resolve().parents[1]
SLEEP = load("sleepstudy")
LIBC = "/lib/x86_64-linux-gnu"

# (payload: Python that would write the marker file {m}, the token the refusal must name)
PAYLOADS = [
    ("np.savetxt('{m}', [1])", r"'np\.savetxt'"),
    ("open('{m}', 'w')", r"open\(\) is not a known function"),
    ("__import__('os').system('touch {m}')", r"__import__"),
    (f"np.ctypeslib.load_library('libc.so.6', '{LIBC}').system(b'id > {{m}}')",
     r"np\.ctypeslib\.load_library"),
]
# Where a payload can sit: fixed part, a bar's own terms, the response, a cbind argument.
PLACES = [
    ("Reaction ~ Days + I(Days + 0 * {p}) + (1 | Subject)", "gaussian"),
    ("Reaction ~ Days + (1 + I(Days + 0 * {p}) | Subject)", "gaussian"),
    ("I(Reaction + 0 * {p}) ~ Days + (1 | Subject)", "gaussian"),
    ("cbind(incidence, size - incidence + 0 * {p}) ~ period + (1 | herd)", "binomial"),
]


def payload_formula(tmp_path, payload: int, place: int) -> tuple[str, str, Path, str]:
    marker = tmp_path / f"marker-{payload}-{place}"
    code, token = PAYLOADS[payload]
    formula, family = PLACES[place]
    return formula.format(p=code.format(m=marker)), family, marker, token


def data_for(family: str) -> pd.DataFrame:
    return SLEEP if family == "gaussian" else load("cbpp")


@pytest.mark.parametrize("code", [PAYLOADS[0][0], PAYLOADS[1][0], PAYLOADS[2][0]])
def test_the_payloads_do_run_in_formulaic_itself(tmp_path, code):
    """What the allow-list stands between: formulaic evaluates these (so the tests below can
    fail)."""
    marker = tmp_path / "marker"
    with contextlib.suppress(Exception):  # the side effect is what counts, not the value
        model_matrix(f"I(Days + 0 * {code.format(m=marker)})", SLEEP)
    assert marker.exists()


@pytest.mark.parametrize("place", range(len(PLACES)))
@pytest.mark.parametrize("payload", range(len(PAYLOADS)))
@pytest.mark.parametrize("entry", ["make_design", "fit_reml", "fit_bayes"])
def test_python_api_refuses_payloads(tmp_path, entry, payload, place):
    formula, family, marker, token = payload_formula(tmp_path, payload, place)
    call = {"make_design": make_design, "fit_reml": hb.fit_reml, "fit_bayes": hb.fit_bayes}[entry]
    with pytest.raises(hb.FormulaError, match=token):
        call(formula, data_for(family), family=family)
    assert not marker.exists()


def test_known_sigma_is_a_column_name_never_code(tmp_path):
    marker = tmp_path / "marker"
    schools = hb.simulate.eight_schools()
    with pytest.raises(hb.FormulaError, match=r"'__import__'"):
        make_design("effect ~ 1 + (1 | school)", schools,
                    known_sigma=f"__import__('os').system('touch {marker}')")
    assert not marker.exists()
    design = make_design("effect ~ 1 + (1 | school)", schools, known_sigma="se")  # a column: fine
    assert np.array_equal(design.known_sigma, schools["se"].to_numpy(float))


def write_card(folder: Path, formula: str, data_path: str = "data.csv", **extra) -> Path:
    lines = ['name = "card"', 'description = "A card."', f"formula = {json.dumps(formula)}",
             'family = "gaussian"', *(f"{k} = {json.dumps(v)}" for k, v in extra.items()),
             "[data]", f"path = {json.dumps(data_path)}", 'factors = ["Subject"]']
    path = folder / "card.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("payload", range(len(PAYLOADS)))
def test_card_run_by_the_cli_refuses_payloads(tmp_path, capsys, payload):
    formula, _, marker, token = payload_formula(tmp_path, payload, 0)
    SLEEP.to_csv(tmp_path / "data.csv", index=False)
    card = write_card(tmp_path, formula)
    with pytest.raises(hb.FormulaError, match=token):
        load_card(card)
    status = cli.main(["fit", str(card), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and "card.toml" in err and "Traceback" not in err
    assert re.search(token, err), err
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def saved_fit(tmp_path_factory):
    fit = fake_fit(hb.build_model("Reaction ~ Days + (Days | Subject)", SLEEP), draws=30)
    path = tmp_path_factory.mktemp("fit") / "posterior.nc"
    fit.save(path)
    return path


def tamper(saved: Path, folder: Path, formula: str) -> Path:
    path = folder / "posterior.nc"
    path.write_bytes(saved.read_bytes())
    with h5py.File(path, "r+") as f:
        meta = json.loads(f.attrs[META_KEY])
        meta["formula"] = formula
        f.attrs[META_KEY] = json.dumps(meta)
    return path


@pytest.mark.parametrize("payload", range(len(PAYLOADS)))
def test_tampered_saved_fit_refuses_payloads(tmp_path, capsys, saved_fit, payload):
    formula, _, marker, token = payload_formula(tmp_path, payload, 1)
    path = tamper(saved_fit, tmp_path, formula)
    with pytest.raises(hb.FormulaError, match=token) as info:
        hb.load(path)
    assert str(path) in str(info.value)
    status = cli.main(["report", str(path), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and str(path) in err and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / "report.html").exists()


@pytest.mark.parametrize(
    ("formula", "token"),
    [
        ("y ~ x.real + (1 | g)", None),  # a name with a dot is looked up as a column, not run
        ("y ~ I(x.real) + (1 | g)", r"'x\.real' .*quote it with backticks"),
        ("y ~ I(x[0]) + (1 | g)", r"'x\[0\]' .*\(a subscript\)"),
        ("y ~ {(lambda: x)()} + (1 | g)", r"lambda"),
        ("y ~ I([v for v in x]) + (1 | g)", r"comprehension"),
        ("y ~ I(x.__class__) + (1 | g)", r"x\.__class__"),
        ("y ~ I(__builtins__) + (1 | g)", r"'__builtins__' .*dunder"),
        ("y ~ x + 'text' + (1 | g)", r"\"'text'\" .*string outside C"),
        ("y ~ I(x + 'a') + (1 | g)", r"string outside C"),
        ("y ~ contr.sum(x) + (1 | g)", r"'contr\.sum' .*contrast outside C"),
        ("y ~ scale(x, _state={}) + (1 | g)", r"scale\(_state=\.\.\.\)"),
        ("y ~ scale(x, **{}) + (1 | g)", r"scale\(\*\*=\.\.\.\)"),
        ("y ~ x + (1 | g) + x[0] | g", r"outside parentheses"),
        ("y ~ log(x) + (1 | g)", r"log\(\) is not a known function \(numpy's is np\.log\)"),
        ("y ~ I(x * 10 ** 10 ** 10) + (1 | g)", r"'10 \*\* 10 \*\* 10' .*power of numbers"),
        ("y ~ I(x ** (9 ** 9)) + (1 | g)", r"'9 \*\* 9' .*power of numbers"),
    ],
)
def test_what_the_allow_list_refuses(formula, token):
    data = pd.DataFrame({"y": np.arange(8.0), "x": np.arange(8.0) % 3, "g": list("aabbccdd")})
    if token is None:
        with pytest.raises(hb.DesignError, match=r"column 'x\.real', which is not in the data"):
            make_design(formula, data)
        return
    with pytest.raises(hb.FormulaError, match=token):
        make_design(formula, data)


# --- what the allow-list lets through -------------------------------------------------------

ALLOWED = [
    "np.log(Days + 1)", "np.log1p(Days)", "np.exp(Days / 10)", "np.sqrt(Days)",
    "np.abs(Days - 4.5)", "I(Days ** 2 - 3 * Days)", "I(Days >= 5)", "scale(Days)",
    "center(Days)", "standardize(Days)", "poly(Days, 2)", "poly(Days, degree=3, raw=True)",
    "bs(Days, df=4)", "cr(Days, df=4) - 1", "C(Subject, contr.sum)", "C(Subject, Treatment('372'))",
    "C(Subject, contr.treatment('372'))", "Days:C(Subject, contr.helmert)", "np.log(`Days` + 1)",
]


@pytest.mark.parametrize("piece", ALLOWED)
def test_allowed_transforms_give_formulaics_numbers(piece):
    design = make_design(f"Reaction ~ {piece} + (1 | Subject)", SLEEP)
    direct = model_matrix(f"1 + {piece}", SLEEP, output="pandas")
    assert list(design.fixed_names) == list(direct.columns)
    np.testing.assert_array_equal(design.X, direct.to_numpy(dtype=float))


def test_stateful_transforms_against_their_definitions():
    days = SLEEP["Days"].to_numpy(float)
    mean, sd = days.mean(), days.std(ddof=1)
    for piece, expected in [("scale(Days)", (days - mean) / sd), ("center(Days)", days - mean),
                            ("standardize(Days)", (days - mean) / days.std())]:
        X = make_design(f"Reaction ~ {piece} + (1 | Subject)", SLEEP).X
        np.testing.assert_allclose(X[:, 1], expected, rtol=1e-12, atol=1e-12)
    poly = make_design("Reaction ~ poly(Days, 2) + (1 | Subject)", SLEEP).X[:, 1:]
    np.testing.assert_allclose(poly.T @ poly, np.eye(2), atol=1e-12)  # orthonormal
    np.testing.assert_allclose(poly.sum(axis=0), 0, atol=1e-12)  # and centred
    coef, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(days), poly]), days**2, rcond=None)
    np.testing.assert_allclose(np.column_stack([np.ones_like(days), poly]) @ coef, days**2,
                               atol=1e-9)


def test_stateful_transforms_in_bars_and_on_new_data():
    days = SLEEP["Days"].to_numpy(float)
    mean, sd = days.mean(), days.std(ddof=1)
    design = make_design(
        "Reaction ~ poly(Days, 2) + bs(Days, df=4) + (1 + scale(Days) | Subject)"
        " + (0 + standardize(Days) | Subject)", SLEEP)
    assert design.blocks[0].terms == ("Intercept", "scale(Days)")
    np.testing.assert_allclose(design.blocks[0].Z[:, 1], (days - mean) / sd, rtol=1e-12)
    np.testing.assert_allclose(design.blocks[1].Z[:, 0], (days - mean) / days.std(), rtol=1e-12)
    rows = [5, 100, 177]
    new = design.evaluate(SLEEP.iloc[rows].drop(columns="Reaction"))
    np.testing.assert_allclose(new.X, design.X[rows], rtol=1e-12)
    for block, Z in zip(design.blocks, new.Z, strict=True):
        np.testing.assert_allclose(Z, block.Z[rows], rtol=1e-12)
    # One new row: the training mean and SD are applied, not the new data's own (0 and NaN).
    one = design.evaluate(pd.DataFrame({"Days": [0.0], "Subject": ["308"]}))
    np.testing.assert_allclose(one.Z[0][0], [1.0, -mean / sd], rtol=1e-12)
    np.testing.assert_allclose(one.X[0], design.X[SLEEP.index[SLEEP["Days"] == 0][0]])


def test_scaled_slope_is_the_same_model_as_lme4s_sleepstudy():
    """(Days | Subject) and (scale(Days) | Subject) span the same model: the ML deviance is equal,
    the REML criterion differs by exactly -2 log sd(Days) (the log-determinant of the change of
    fixed-effect basis), and β and the group slopes are rescaled by sd(Days)."""
    ref = json.loads((ROOT / "tests" / "reference" / "sleepstudy.json").read_text())
    sd = SLEEP["Days"].std(ddof=1)
    scaled = hb.fit_reml("Reaction ~ scale(Days) + (scale(Days) | Subject)", SLEEP)
    expected = ref["fit_criteria"]["REML_criterion"] - 2 * np.log(sd)
    assert scaled.criterion == pytest.approx(expected, abs=1e-5)
    plain = hb.fit_reml("Reaction ~ Days + (Days | Subject)", SLEEP, method="ML")
    scaled_ml = hb.fit_reml("Reaction ~ scale(Days) + (scale(Days) | Subject)", SLEEP,
                            method="ML")
    assert scaled_ml.criterion == pytest.approx(plain.criterion, abs=1e-5)
    assert scaled.fixef().loc["scale(Days)", "estimate"] == pytest.approx(
        ref["fixed_effects"]["estimate"]["Days"] * sd, rel=1e-5)
    ours = scaled.ranef().query("term == 'scale(Days)'").set_index("level")["estimate"]
    lme4 = pd.DataFrame(ref["ranef"]).query("term == 'Days'").set_index("grp")["condval"]
    np.testing.assert_allclose(ours.loc[lme4.index.astype(str)], lme4 * sd, rtol=1e-4)


# --- card data paths ------------------------------------------------------------------------

SECRET = "password=hunter2"


def card_folder(tmp_path) -> Path:
    folder = tmp_path / "cards"
    (folder / "data").mkdir(parents=True)
    SLEEP.to_csv(folder / "data" / "sleep.csv", index=False)
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    SLEEP.to_csv(tmp_path / "outside.csv", index=False)
    return folder


def test_card_data_inside_its_folder_load(tmp_path):
    card = load_card(write_card(card_folder(tmp_path), "Reaction ~ Days + (1 | Subject)",
                                "data/../data/sleep.csv"))
    assert card.data_path == (tmp_path / "cards" / "data" / "sleep.csv").resolve()
    assert len(card.load_data()) == 180


@pytest.mark.parametrize("where", ["../secret.txt", "../../nowhere.csv", "{abs}", "link.csv"])
def test_card_data_outside_its_folder_refused(tmp_path, where):
    folder = card_folder(tmp_path)
    (folder / "link.csv").symlink_to(tmp_path / "outside.csv")  # a link leading out counts too
    path = write_card(folder, "Reaction ~ Days + (1 | Subject)",
                      where.format(abs=tmp_path / "outside.csv"))
    with pytest.raises(CardError, match=r"lies outside the card's folder .*--allow-outside-data"):
        load_card(path)
    card = None if "nowhere" in where else load_card(path, allow_outside=True)
    if card is not None and where != "../secret.txt":
        assert len(card.load_data()) == 180  # opting in reads it


@pytest.mark.parametrize("content", [SECRET + "\n", SECRET + "\nline two\n", "\x00\xff\xfe" * 50,
                                     "", "a,b\n"])
def test_a_file_that_is_not_a_table_is_never_quoted(tmp_path, capsys, content):
    folder = card_folder(tmp_path)
    (tmp_path / "secret.txt").write_bytes(content.encode("latin-1"))
    path = write_card(folder, "Reaction ~ Days + (1 | Subject)", "../secret.txt")
    card = load_card(path, allow_outside=True)
    refusal = r"secret\.txt .*(cannot be read as|is not) a CSV table"
    with pytest.raises(CardError, match=refusal) as e:
        card.load_data()
    assert "hunter2" not in str(e.value) and "password" not in str(e.value)
    status = cli.main(["fit", str(path), "--out", str(tmp_path / "out"), "--quiet",
                       "--allow-outside-data"])
    err = capsys.readouterr().err
    assert status == 2 and "not" in err and "CSV table" in err and "hunter2" not in err


def test_a_real_table_lacking_columns_lists_its_columns(tmp_path):
    folder = card_folder(tmp_path)
    SLEEP.rename(columns={"Subject": "subj"}).to_csv(folder / "data" / "sleep.csv", index=False)
    card = load_card(write_card(folder, "Reaction ~ Days + (1 | Subject)", "data/sleep.csv"))
    with pytest.raises(CardError, match=r"'Subject' named by the card .* Reaction, Days, subj"):
        card.load_data()


def test_cli_opt_in_reads_outside_data(tmp_path, capsys, monkeypatch):
    folder = card_folder(tmp_path)
    path = write_card(folder, "Reaction ~ Days + (1 | Subject)", str(tmp_path / "outside.csv"))
    def sampling(*args, **kwargs):
        raise RuntimeError("sampling reached")

    monkeypatch.setattr(cli, "fit_bayes", sampling)
    status = cli.main(["fit", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert status == 2 and "outside the card's folder" in capsys.readouterr().err
    status = cli.main(["fit", str(path), "--out", str(tmp_path / "out"), "--quiet",
                       "--allow-outside-data"])
    assert status == 1 and "sampling reached" in capsys.readouterr().err  # got past the data
