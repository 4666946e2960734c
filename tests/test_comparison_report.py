"""Real `Comparison`s of mocked posteriors (prior draws stand in for NUTS, see
`hierbayes.testing.fakes`) with real REML/ML/Laplace fits: what the verdict, the report header,
headings, plots and displays say, and that they say the opposite when the case is the opposite."""

import re
import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import hierbayes as hb
from hierbayes.datasets import load
from hierbayes.report import comparison_report, fit_report
from hierbayes.report.plots import sd_density
from hierbayes.testing.fakes import fake_fit

matplotlib.use("Agg")

SLEEP = "Reaction ~ Days + (Days | Subject)"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def quiet_reml(formula, data, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.SingularFitWarning)
        return hb.fit_reml(formula, data, **kwargs)


@pytest.fixture(scope="module")
def sleep_fake():
    # 2 × 500 independent draws: every sampler check passes.
    return fake_fit(hb.build_model(SLEEP, load("sleepstudy")), chains=2, draws=500, seed=3)


@pytest.fixture(scope="module")
def clean_cmp(sleep_fake):
    return hb.compare(sleep_fake, quiet_reml(SLEEP, load("sleepstudy")))


def shifted(fit, shift: float):
    """The fit with chain 0 of every fixed effect moved by `shift` posterior SDs: the chains
    disagree, as when a sampler got stuck."""
    idata = fit.idata.copy()
    post = idata["posterior"].to_dataset()
    beta = post["beta"]
    post["beta"] = beta + shift * beta.std(("chain", "draw")) * xr.DataArray([1.0, 0.0],
                                                                             dims="chain")
    idata["posterior"] = xr.DataTree(post)
    return hb.BayesFit(fit.spec, idata, fit.settings)


@pytest.fixture(scope="module")
def failed_cmp(sleep_fake):
    return hb.compare(shifted(sleep_fake, 3.0), quiet_reml(SLEEP, load("sleepstudy")))


# --- failed sampler checks lead ---------------------------------------------------------------


def test_clean_posterior_passes_and_the_verdict_starts_with_the_fits(clean_cmp):
    assert clean_cmp.diagnostics["ok"].all()
    lines = clean_cmp.verdict()
    assert lines[0].startswith("Fixed effects")
    assert not any("FAILED" in line for line in lines)
    report = comparison_report(clean_cmp, plots=False)
    assert "Sampler checks FAILED" not in report.html and "role=\"alert\"" not in report.html
    assert ">Sampling diagnostics</h2>" in report.html and "All sampler checks pass." in report.html


def test_failed_rhat_leads_the_verdict_and_the_header(failed_cmp, tmp_path):
    table = failed_cmp.diagnostics.set_index("check")
    assert not table.loc["max R-hat", "ok"] and table.loc["max R-hat", "where"].startswith("beta")
    first = failed_cmp.verdict()[0]
    assert first.startswith("Sampler checks FAILED (max R-hat")
    assert "do not read the comparison until the sampling is fixed" in first
    assert "target_accept" in first and "tune" in first and "reparameterise" in first
    assert "prior" not in first  # a stronger prior is not a sampler remedy
    for report in (comparison_report(failed_cmp, tmp_path, plots=False),
                   fit_report(failed_cmp.bayes, tmp_path / "fit", comparison=failed_cmp,
                              plots=False)):
        head = report.html_path.read_text().split("<section", 1)[0]
        assert "Sampler checks FAILED (max R-hat" in head
        markdown = report.markdown_path.read_text()
        assert markdown.split("\n## ", 1)[0].count("**Warning:** Sampler checks FAILED") == 1
        assert "| max R-hat |" in markdown and "FAIL" in markdown  # the table, too


def test_no_remedy_suggests_a_stronger_prior(failed_cmp):
    messages = " ".join(failed_cmp.diagnostics["message"])
    assert "R-hat" in messages and "Run longer" in messages
    assert "prior" not in messages.lower()


# --- the method in every heading ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ml_cmp(sleep_fake):
    return hb.compare(sleep_fake, quiet_reml(SLEEP, load("sleepstudy"), method="ML"))


@pytest.fixture(scope="module")
def laplace_cmp():
    spec = hb.build_model(CBPP, load("cbpp"), "binomial")
    return hb.compare(fake_fit(spec, chains=2, draws=300, seed=1),
                      quiet_reml(CBPP, load("cbpp"), family="binomial"))


def figure_text(fig) -> str:
    texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    plt.close(fig)
    return " ".join(texts)


@pytest.mark.parametrize(("name", "method"), [("ml_cmp", "ML"), ("laplace_cmp", "Laplace")])
def test_ml_and_laplace_are_never_called_reml(name, method, request, tmp_path):
    cmp = request.getfixturevalue(name)
    assert cmp.method == method
    assert all(f.attrs["method"] == method for f in (cmp.fixed, cmp.variance, cmp.groups))
    report = comparison_report(cmp, tmp_path)
    words = [report.html_path.read_text(), report.markdown_path.read_text(), *cmp.verdict(),
             figure_text(cmp.plot_forest()), figure_text(cmp.plot_variance()),
             figure_text(cmp.plot_shrinkage())]
    for text in words:
        assert "REML" not in text  # the API's reml_* column names are lower case
    html = words[0]
    for heading in ("Bayes vs {m}: verdict", "Fixed effects: Bayes vs {m}",
                    "Variance components: Bayes vs {m}", "Group effects: Bayes vs {m}",
                    "Plots: Bayes vs {m}"):
        assert f">{heading.format(m=method)}</h2>" in html
    assert f"Posterior (NUTS) vs {method} fit" in html
    assert re.search(rf"\b{method}\b", figure_text(cmp.plot_forest()))
    laplace_note = "The frequentist side is a Laplace approximation"
    assert any(line.startswith(laplace_note) for line in cmp.verdict()) == (method == "Laplace")


def test_reml_is_named_when_it_is_reml(clean_cmp):
    html = comparison_report(clean_cmp, plots=False).html
    assert ">Bayes vs REML: verdict</h2>" in html
    assert not re.search(r"\b(ML|Laplace)\b", html)


# --- plots ----------------------------------------------------------------------------------------


def plotted_posteriors(fig) -> list:
    """(x, y) of every line labelled "posterior" in the variance plot, panel by panel."""
    out = [(line.get_xdata(), line.get_ydata()) for ax in fig.axes for line in ax.get_lines()
           if line.get_label() == "posterior"]
    plt.close(fig)
    return out


def mass(x, y, lower, upper) -> float:
    fine = np.linspace(lower, upper, 2001)
    return float(np.trapezoid(np.interp(fine, x, y, left=0, right=0), fine))


def test_variance_densities_carry_the_table_intervals_at_the_boundary(clean_cmp):
    # Prior draws as the posterior: half-normal SDs piled up at zero, the hard case for a KDE.
    rows = clean_cmp.variance[clean_cmp.variance["term2"].isna()]
    curves = plotted_posteriors(clean_cmp.plot_variance())
    assert len(curves) == len(rows) == 3
    for (x, y), row in zip(curves, rows.to_dict("records"), strict=True):
        assert mass(x, y, x[0], x[-1]) == pytest.approx(1, abs=0.01)
        assert mass(x, y, row["bayes_lower"], row["bayes_upper"]) == pytest.approx(0.95, abs=0.02)


def test_a_narrow_posterior_far_from_zero_is_not_spread_out():
    # The old mirrored KDE plotted a posterior with interval [0.49, 0.62] over [0.30, 0.79].
    draws = np.random.default_rng(0).normal(0.555, 0.033, 2000)
    x, y = sd_density(draws)
    lower, upper = np.quantile(draws, [0.025, 0.975])
    assert mass(x, y, lower, upper) == pytest.approx(0.95, abs=0.02)
    assert mass(x, y, 0, 0.45) < 0.005 and x.min() > 0.4


def test_plot_arguments_are_checked(clean_cmp):
    with pytest.raises(hb.HierbayesError, match=r"no term 'nope'.*'Intercept', 'Days'"):
        clean_cmp.plot_shrinkage(term="nope")
    with pytest.raises(hb.HierbayesError, match=r"no grouping factor 'Days'.*'Subject'"):
        clean_cmp.plot_shrinkage(group="Days")


def test_shrinkage_plot_labels_extremes_and_draws_intervals(clean_cmp):
    fig = clean_cmp.plot_shrinkage(term="Days")
    ax = fig.axes[0]
    part = clean_cmp.groups.query("term == 'Days'").sort_values("bayes_estimate")
    labels = {t.get_text() for t in ax.texts}
    assert labels == set(part["level"].head(3)) | set(part["level"].tail(3))
    assert any(c.get_label().startswith("posterior 95% interval") for c in ax.collections)
    plt.close(fig)


def test_group_size_ticks_are_whole_numbers():
    from hierbayes.report.plots import _whole_number

    assert [_whole_number(v) for v in (1, 2, 2.5, 5, 20, 0.5)] == ["1", "2", "", "5", "20", ""]


def test_forest_shares_an_axis_per_parameter_class(clean_cmp):
    fig = clean_cmp.plot_forest()
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == ["fixed effects", "standard deviations", "correlations"]
    ticks = [[t.get_text() for t in ax.get_yticklabels()] for ax in fig.axes]
    assert ticks[0] == ["Intercept", "Days"]  # both fixed effects on one axis
    assert len(ticks[1]) == 3 and fig.axes[2].get_xlim() == (-1.05, 1.05)
    plt.close(fig)


# --- displays -----------------------------------------------------------------------------------


def test_both_fits_display_themselves(sleep_fake, clean_cmp):
    for fit, kind in ((sleep_fake, "Bayesian fit (NUTS)"), (clean_cmp.reml, "REML fit")):
        html = fit._repr_html_()
        assert html.startswith("<div class=\"hb-report hb-compact\">") and kind in html
        assert "Reaction ~ Days + (Days | Subject)" in html and "18 levels" in html
        assert "Intercept" in html and "SD(Days | Subject)" in html and "lower/upper" in html
    assert "max R-hat" in sleep_fake._repr_html_()
    assert "All sampler checks pass." in sleep_fake._repr_html_()
    assert "REML criterion" in clean_cmp.reml._repr_html_()
    assert "converged; not singular" in clean_cmp.reml._repr_html_()


def test_a_singular_frequentist_fit_says_so_in_its_display():
    rng = np.random.default_rng(5)
    flat = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(8)], 4),
                         "y": rng.normal(10, 2, size=32)})
    reml = quiet_reml("y ~ 1 + (1 | g)", flat)
    assert reml.singular
    html = reml._repr_html_()
    assert "singular (a variance component at the boundary)" in html and "not singular" not in html


def test_bayes_summary_is_rounded_text_and_the_tables_keep_full_precision(sleep_fake):
    text = sleep_fake.summary()
    assert isinstance(text, str) and repr(text) == str(text) and str(sleep_fake).endswith(text)
    fixef = sleep_fake.fixef()
    se = fixef.loc["Days", "std_error"]
    decimals = max(1 - int(np.floor(np.log10(se))), 0)
    assert f"{fixef.loc['Days', 'estimate']:.{decimals}f}" in text
    assert f"{fixef.loc['Days', 'estimate']:.6f}" not in text
    assert fixef.loc["Days", "estimate"] != round(fixef.loc["Days", "estimate"], decimals)
    for part in ("Formula: Reaction ~ Days + (Days | Subject)", "Subject: 18 levels",
                 "Population-level effects", "Sampler checks: all pass"):
        assert part in text
    assert "mcse_mean" in sleep_fake.arviz_summary().columns


def test_a_failed_fit_says_so_in_its_summary(failed_cmp):
    text = failed_cmp.bayes.summary()
    assert "Sampler checks FAILED (max R-hat" in text and "all pass" not in text
    html = failed_cmp.bayes._repr_html_()
    assert "role=\"alert\"" in html and "Failed checks: see fit.diagnostics()" in html
    assert "All sampler checks pass." not in html
