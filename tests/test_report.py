"""Reports: self-contained HTML (no network, plots inline), intervals stated, text escaped, a
Markdown twin, notebook display, and a headless browser that opens the file without errors.

The fits here are small stand-ins with the fits' interface and hand-made draws (fast and
deterministic); the command-line tests render reports of real fits."""

import re
import shutil
import subprocess
import warnings
from html.parser import HTMLParser

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import hierbayes as hb
from hierbayes.report import Report, comparison_report, fit_html, fit_report
from hierbayes.report.format import number
from hierbayes.report.markdown import escape_md

matplotlib.use("Agg")

NASTY = "<script>alert('x')</script>"  # a group label that must stay text
INTERVAL = "95% equal-tailed credible interval"


def summarize(draws: np.ndarray, ci_prob: float) -> dict:
    """Posterior summaries over the first two axes, as the tidy tables report them."""
    flat = draws.reshape(-1, *draws.shape[2:])
    lo, hi = np.quantile(flat, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
    return {"estimate": flat.mean(0), "std_error": flat.std(0, ddof=1), "lower": lo, "upper": hi}


class FakeBayes:
    """The BayesFit interface the report reads, over hand-made draws of `y ~ x + (1 | g)`;
    its diagnostics fail R-hat unless `clean`."""

    method = "NUTS"

    def __init__(self, seed: int = 0, with_ppc: bool = True, clean: bool = False):
        self.clean = clean
        rng = np.random.default_rng(seed)
        levels = ["a&b", NASTY, *[f"g{i}" for i in range(28)]]  # 30 levels: top/bottom tables
        data = pd.DataFrame({"g": np.repeat(levels, 4), "x": np.tile([0.0, 1, 2, 3], 30)})
        data["y"] = 1 + 0.5 * data["x"] + rng.normal(size=len(data))
        self.design = hb.make_design("y ~ x + (1 | g)", data)
        self.priors = hb.default_priors("y ~ x + (1 | g)", data)
        self.link = "identity"
        self.idata = self._idata(rng, with_ppc)

    def _idata(self, rng, with_ppc):
        block = self.design.blocks[0]
        c, d, levels = 2, 100, list(block.levels)
        posterior = xr.Dataset({
            "beta": (("chain", "draw", "fixed"), rng.normal([1, 0.5], 0.1, (c, d, 2))),
            "sd_g": (("chain", "draw", "g__term"), np.abs(rng.normal(0.5, 0.1, (c, d, 1)))),
            "r_g": (("chain", "draw", "g", "g__term"), rng.normal(0, 0.4, (c, d, 30, 1))),
            "sigma": (("chain", "draw"), np.abs(rng.normal(1, 0.05, (c, d)))),
        }, coords={"fixed": ["Intercept", "x"], "g": levels, "g__term": ["Intercept"]})
        groups = {"posterior": posterior,
                  "sample_stats": xr.Dataset({"diverging": (("chain", "draw"),
                                                            np.zeros((c, d), bool))}),
                  "observed_data": xr.Dataset({"y": ("obs", self.design.y)})}
        if with_ppc:
            groups["posterior_predictive"] = xr.Dataset(
                {"y": (("chain", "draw", "obs"), rng.normal(self.design.y, 1, (c, d, 120)))})
        return xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})

    def fixef(self, ci_prob=0.95):
        s = summarize(self.idata["posterior"]["beta"].values, ci_prob)
        frame = pd.DataFrame(s, index=pd.Index(["Intercept", "x"], name="term"))
        frame.attrs["interval"] = f"{ci_prob:.0%} equal-tailed credible interval"
        return frame

    def varcorr(self, ci_prob=0.95):
        post = self.idata["posterior"]
        rows = []
        for (group, term), draws in ((("g", "Intercept"), post["sd_g"].values[..., 0]),
                                     (("Residual", None), post["sigma"].values)):
            s = summarize(draws, ci_prob)
            rows.append({"group": group, "term1": term, "term2": None,
                         **{k: float(v) for k, v in s.items()}})
        frame = pd.DataFrame(rows)
        frame.attrs["interval"] = f"{ci_prob:.0%} equal-tailed credible interval"
        return frame

    def ranef(self, ci_prob=0.95):
        s = summarize(self.idata["posterior"]["r_g"].values[..., 0], ci_prob)
        frame = pd.DataFrame({"group": "g", "level": list(self.design.blocks[0].levels),
                              "term": "Intercept", **s})
        frame.attrs["interval"] = f"{ci_prob:.0%} equal-tailed credible interval"
        return frame

    def diagnostics(self):
        rhat = 1.003 if self.clean else 1.05
        return pd.DataFrame({
            "check": ["divergences", "max R-hat"], "value": [0, rhat], "threshold": [0, 1.01],
            "ok": [True, self.clean], "where": ["", "sd_g[Intercept]"],
            "message": ["", "" if self.clean else
                        "R-hat of sd_g is 1.05 (> 1.01): run longer & check <tune>."]})


class FakeReml:
    method, criterion, singular, converged, sigma = "REML", 123.456, True, True, 1.0
    link = "identity"

    def __init__(self, bayes: FakeBayes):
        self.design = bayes.design
        self._bayes = bayes

    def fixef(self, ci_prob=0.95):
        frame = self._bayes.fixef(ci_prob).copy()
        frame.attrs["interval"] = f"{ci_prob:.0%} Wald interval"
        return frame

    def varcorr(self, ci_prob=0.95):
        return self._bayes.varcorr()[["group", "term1", "term2", "estimate"]]

    def ranef(self, ci_prob=0.95):
        return self._bayes.ranef(ci_prob)


class FakeComparison:
    method, ci_prob = "REML", 0.95

    def __init__(self, bayes):
        self.bayes, self.reml, self.design = bayes, FakeReml(bayes), bayes.design
        self.diagnostics = bayes.diagnostics()
        fixef = bayes.fixef()
        self.fixed = pd.DataFrame({
            "term": fixef.index, "reml_estimate": fixef["estimate"].to_numpy(),
            "bayes_estimate": fixef["estimate"].to_numpy() + 0.01, "std_diff": [0.1, 0.9],
            "agree": [True, False]})
        self.variance = bayes.varcorr().rename(columns={"estimate": "bayes_estimate"}).assign(
            reml_estimate=0.4, agree=True, singular=False)
        ranef = bayes.ranef()
        self.groups = ranef.rename(columns={"estimate": "bayes_estimate"}).assign(
            n=4, reml_estimate=ranef["estimate"] * 0.9, std_diff=np.linspace(-1, 1, 30),
            agree=lambda f: f["std_diff"].abs() < 0.5)
        self.reasons = pd.DataFrame({"reason": ["small groups"], "where": ["g"],
                                     "detail": ["all levels have < 5 observations"]})

    def verdict(self):
        return ["Fixed effects differ for x.", f"Group {NASTY} agrees."]

    def plot_forest(self):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        return fig

    def plot_variance(self):
        raise RuntimeError("no variance plot today")

    def plot_shrinkage(self, group=None, term=None):
        return self.plot_forest()


@pytest.fixture(scope="module")
def bayes():
    return FakeBayes()


@pytest.fixture(scope="module")
def written(bayes, tmp_path_factory):
    """A full report (fit + comparison, with plots) written to disk."""
    folder = tmp_path_factory.mktemp("report")
    with pytest.warns(hb.HierbayesWarning, match="could not be drawn"):
        report = fit_report(bayes, folder, comparison=FakeComparison(bayes), title="Tiny <model>",
                            description="Households & <b>ZIP</b> codes")
    return report


class Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.captions, self._in_caption = [], [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        self._in_caption = self._in_caption or tag == "figcaption"
        if tag == "figcaption":
            self.captions.append("")

    def handle_endtag(self, tag):
        self._in_caption = self._in_caption and tag != "figcaption"

    def handle_data(self, data):
        if self._in_caption:
            self.captions[-1] += data


def parse(text: str) -> Collect:
    parser = Collect()
    parser.feed(text)
    return parser


def test_html_is_self_contained(written):
    text = written.html_path.read_text()
    page = parse(text)
    assert text.startswith("<!DOCTYPE html>") and "<style>" in text
    assert not {"script", "link", "iframe", "object", "embed"} & set(page.tags)
    for tag, key, value in page.attrs:
        if key in ("src", "href"):
            assert not re.match(r"(https?:)?//", value.strip()), (tag, key, value)
            assert key != "href" or value.startswith("#"), value  # in-page links only
    images = [v for tag, k, v in page.attrs if tag == "img" and k == "src"]
    assert len(images) >= 4  # rank, forest, ppc, comparison plots
    assert all(v.startswith("data:image/png;base64,") for v in images)
    assert not re.search(r"https?://", text.split("<style>")[1].split("</style>")[0])
    assert "url(" not in text and "@import" not in text


def test_every_table_states_its_interval(written):
    text = written.html_path.read_text()
    captions = parse(text).captions
    assert text.count("<table>") == text.count("<figure class=\"table\">") >= 8
    assert len(captions) >= text.count("<table>")
    interval_tables = [c for c in captions if "lower/upper" in c]
    assert len(interval_tables) >= 5  # fixed, variance, group tables and comparison tables
    for caption in interval_tables:
        assert "95%" in caption, caption
    assert INTERVAL in written.html_path.read_text()
    assert "Intervals in this report are 95% equal-tailed" in written.html_path.read_text()
    assert "95% Wald interval" in written.html_path.read_text()  # the REML side says its own


def test_text_is_escaped(written):
    text = written.html_path.read_text()
    assert "<script" not in text and "<b>ZIP" not in text and "<model>" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "Households &amp; &lt;b&gt;ZIP&lt;/b&gt; codes" in text
    assert "a&amp;b" in text and "run longer &amp; check &lt;tune&gt;" in text


def test_report_contents(written):
    text = written.html_path.read_text()
    for heading in ("Model", "Sampling diagnostics", "Fixed effects", "Variance components",
                    "Group effects", "Plots", "Bayes vs REML: verdict",
                    "Fixed effects: Bayes vs REML", "Plots: Bayes vs REML"):
        assert f">{heading}" in text, heading
    assert "y ~ x + (1 | g)" in text and "Priors" in text and "HalfNormal" in text
    assert "FAIL" in text and "class=\"warn\"" in text  # the failed R-hat check is flagged
    assert "10 highest and 10 lowest of 30 levels" in text
    assert "<details>" in text and "Full table of group effects (30 rows)" in text
    assert "The forest plot could not be drawn" not in text
    assert "variance components could not be drawn: RuntimeError: no variance plot" in text
    assert "Fixed effects differ for x." in text


def test_markdown_twin(written):
    md = written.markdown_path
    assert md.name == "report.md" and md.parent == written.html_path.parent
    text = md.read_text()
    assert text.startswith("# Tiny \\<model\\>")
    assert "## Fixed effects" in text and "| term | estimate |" in text
    assert "\\<script\\>" in text
    # The only raw HTML is GitHub's <details>/<summary>; every other < is escaped.
    assert not re.search(r"(?<!\\)<(?!/?details>|/?summary>)", text)
    links = re.findall(r"!\[[^\]]*\]\((report_files/[^)]+\.png)\)", text)
    assert len(links) >= 4
    for link in links:
        assert (md.parent / link).read_bytes().startswith(b"\x89PNG")
    assert INTERVAL in text


def test_notebook_display_without_path(bayes):
    report = fit_report(bayes, plots=False)
    assert isinstance(report, Report) and report.html_path is None
    fragment = report._repr_html_()
    assert fragment.startswith("<div class=\"hb-report\">") and "<html" not in fragment
    assert "<img" not in fit_html(bayes)  # instant display: plots only in fit.report()
    assert "Fixed effects" in fit_html(bayes)


def test_report_to_an_html_file_name(bayes, tmp_path):
    report = fit_report(bayes, tmp_path / "sub" / "tiny.html", plots=False)
    assert report.html_path == tmp_path / "sub" / "tiny.html"
    assert report.markdown_path == tmp_path / "sub" / "tiny.md" and report.markdown_path.is_file()
    assert not (tmp_path / "sub" / "tiny_files").exists()  # no plots, no folder


def test_report_names_a_missing_ppc(tmp_path):
    report = fit_report(FakeBayes(with_ppc=False), tmp_path)
    assert "No posterior predictive check" in report.html_path.read_text()


def test_comparison_report(bayes, tmp_path):
    with pytest.warns(hb.HierbayesWarning, match="variance components could not be drawn"):
        report = comparison_report(FakeComparison(bayes), tmp_path / "cmp.html")
    text = report.html_path.read_text()
    assert "Bayes vs REML: verdict" in text and "small groups" in text
    assert ">Sampling diagnostics</h2>" in text and "max R-hat" in text  # a comparison, too
    assert "bayes_lower/upper: 95% equal-tailed credible interval" in text
    assert "largest |std_diff|" in text
    assert (tmp_path / "cmp.md").is_file()


ALERT = "Sampler checks FAILED (max R-hat 1.05 at sd_g[Intercept])"


def test_a_failed_check_leads_the_header(written):
    html_text = written.html_path.read_text()
    head = html_text.split("<section", 1)[0]  # title, subtitle, contents: before any section
    assert ALERT in head and "do not read the estimates or the comparison until" in head
    assert "tune" in head and "target_accept" in head and "prior" not in head
    md_head = written.markdown_path.read_text().split("\n## ", 1)[0]
    assert f"**Warning:** {escape_md(ALERT)}" in md_head


@pytest.mark.parametrize("make", [fit_report, lambda b: comparison_report(FakeComparison(b))])
def test_a_clean_posterior_has_no_alert(make):
    clean = FakeBayes(clean=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.HierbayesWarning)  # the fake's missing plot
        report = make(clean)
    assert "Sampler checks FAILED" not in report.html and "role=\"alert\"" not in report.html
    assert "All sampler checks pass." in report.html and "max R-hat" in report.html
    assert "**Warning:**" not in report.markdown()


def test_comparison_report_leads_with_a_failed_check(bayes):
    with pytest.warns(hb.HierbayesWarning):
        report = comparison_report(FakeComparison(bayes))
    head = report.html.split("<section", 1)[0]
    assert ALERT in head and "do not read the comparison until" in head
    assert "**Warning:** " + escape_md(ALERT) in report.markdown()


def test_reml_fit_report(bayes):
    html = fit_report(FakeReml(bayes)).html
    assert "REML fit; REML criterion 123.5" in html and "Singular fit" in html
    assert "95% Wald interval" in html and "<img" not in html


@pytest.mark.parametrize(("value", "text"), [
    (1234.5, "1234"), (12345.6, "12,346"), (0.000123, "1.230e-04"), (float("nan"), ""),
    (True, "yes"), (3, "3"), (-0.0, "0"), (0.04302, "0.04302"), (None, ""),
])
def test_number_format(value, text):
    assert number(value) == text


def test_markdown_escaping():
    assert escape_md("a | b <c> *d*") == "a \\| b \\<c\\> \\*d\\*"
    assert escape_md("# not a heading") == "\\# not a heading"
    assert escape_md("-5", line_start=False) == "-5"


# --- a real browser ---------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0"]
# Added to a copy of the report only: the report itself has no script. After the page has loaded,
# it records how many images there are and how many failed to decode.
PROBE = ("<script>window.addEventListener('load', () => { const imgs = [...document.images];"
         " const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;"
         " const p = document.createElement('pre'); p.id = 'hb-probe';"
         " p.textContent = `images ${imgs.length} broken ${bad}`;"
         " document.body.appendChild(p); });</script>")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install -y chromium)")
def test_report_opens_in_a_headless_browser(written, tmp_path):
    n_images = written.html_path.read_text().count("<img ")
    probe = tmp_path / "probe.html"
    probe.write_text(written.html_path.read_text().replace("</body>", PROBE + "</body>"))
    profile = f"--user-data-dir={tmp_path / 'profile'}"  # no shared profile between test runs
    result = subprocess.run([CHROMIUM, *BROWSER_FLAGS, profile, "--dump-dom", probe.as_uri()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Tiny &lt;model&gt;</h1>" in result.stdout  # the DOM has the page, title text intact
    assert f'<pre id="hb-probe">images {n_images} broken 0</pre>' in result.stdout
    assert "Uncaught" not in result.stderr and "Failed to load resource" not in result.stderr
