"""The `hierbayes` command: fit model cards, compare with REML, write and re-render reports.

    hierbayes fit models/sleepstudy.toml --out out/sleepstudy
    hierbayes compare models/pastes.toml --out out/pastes
    hierbayes report out/sleepstudy
    hierbayes models
    hierbayes agreement sleepstudy --out out/agree      (hierbayes.study.commands)
    hierbayes sbc radon_intercepts --out out/sbc

Results go to stdout, progress and warnings to stderr. Exit codes: 0 success; 2 bad input (a
card, file, formula, option or output folder: one line on stderr, no traceback); 130 interrupted
(Ctrl-C: nothing partial is written); 1 anything else (``--debug`` shows its traceback).

The output folder is checked before any fitting and every file is written atomically
(`hierbayes.outdir`); a card's data must lie beside the card unless ``--allow-outside-data``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import sys
import textwrap
import time
import tomllib
import warnings
from pathlib import Path

import pandas as pd

from .atomic import write_bytes, write_via
from .bayes import fit_bayes, load
from .cards import CardError, card_paths, default_models_folder, load_card, resolve_card
from .compare import compare
from .errors import HierbayesError
from .outdir import OutputFolder
from .reml import fit_reml
from .report import comparison_report, fit_report
from .study.commands import add_commands as add_study_commands

PROG = "hierbayes"
POSTERIOR_FILE = "posterior.nc"
CARD_COPY = "card.toml"
FIT_TABLES = ("fixef.csv", "varcorr.csv", "ranef.csv")
COMPARISON_TABLES = tuple(f"comparison_{n}.csv" for n in ("fixed", "variance", "groups", "reasons"))
REPORT_FILES = ("report.html", "report.md", "report_files")


class Progress:
    """Step messages on stderr ("fitting REML ... done in 0.4 s"); silent with --quiet."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"{PROG}: {message}", file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        """Warnings show even with --quiet: they change what the outputs mean."""
        print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def step(self, message: str):
        self.say(f"{message} ...")
        start = time.perf_counter()
        yield
        self.say(f"{message}: done in {time.perf_counter() - start:.1f} s")


# --- the subcommands ------------------------------------------------------------------------


def cmd_fit(args) -> int:
    """Fit the card by NUTS and by REML/Laplace; write the report, posterior and tables."""
    progress = Progress(args.quiet)
    names = (POSTERIOR_FILE, CARD_COPY, *FIT_TABLES, *COMPARISON_TABLES, *REPORT_FILES)
    with OutputFolder(args.out, names) as out:  # checked before anything is fitted
        card, data = _card_and_data(args, progress)
        bayes = _fit_bayes(card, data, args, progress)
        with progress.step(f"saving the posterior to {out.path / POSTERIOR_FILE}"):
            _save_fit(bayes, out.file(POSTERIOR_FILE))
        write_bytes(out.file(CARD_COPY), card.path.read_bytes())
        _predictive(bayes, card.sampler.seed, progress)
        reml = _fit_reml(card.formula, data, card.family, progress, card.known_sigma)
        cmp, failed = _compare(bayes, reml, progress)
        _write_tables(out, bayes=bayes, cmp=cmp)
        with progress.step("writing the report"):
            report = fit_report(bayes, out.path, comparison=cmp, title=card.name,
                                description=card.description)
    _print_summary(card, bayes, cmp, report)
    return 1 if failed else 0


def cmd_compare(args) -> int:
    """Fit both ways (or load a saved posterior) and write the comparison report and tables."""
    progress = Progress(args.quiet)
    names = (*COMPARISON_TABLES, "comparison.html", "comparison.md", "comparison_files")
    with OutputFolder(args.out, names) as out:  # checked before anything is fitted
        card, data = _card_and_data(args, progress)
        reml = _fit_reml(card.formula, data, card.family, progress, card.known_sigma)
        if reml is None:
            raise HierbayesError(f"No REML/Laplace fit of {card.name!r} to compare with (see "
                                 "above).")
        if args.posterior:
            with progress.step(f"loading the posterior {args.posterior}"):
                bayes = _load_fit(Path(args.posterior))
        else:
            bayes = _fit_bayes(card, data, args, progress)
        with progress.step("comparing the two fits"):
            cmp = compare(bayes, reml)
        _write_tables(out, cmp=cmp)
        with progress.step("writing the comparison report"):
            report = comparison_report(cmp, out.path / "comparison.html", title=f"{card.name}: "
                                       f"Bayes vs {cmp.method}", description=card.description)
    print("\n".join(cmp.verdict()))
    print(f"\nwrote {report.html_path} and {report.markdown_path}")
    return 0


def cmd_report(args) -> int:
    """Re-render the report of a saved fit (a posterior.nc, or the folder holding one)."""
    progress = Progress(args.quiet)
    path = Path(args.path)
    file = path / POSTERIOR_FILE if path.is_dir() else path
    with OutputFolder(args.out or file.parent, REPORT_FILES) as out:
        with progress.step(f"loading {file}"):
            bayes = _load_fit(file)
        title, description = _card_header(file.parent / CARD_COPY)
        _predictive(bayes, getattr(bayes, "settings", {}).get("random_seed"), progress)
        cmp, failed = None, False
        if not args.no_compare:
            design = bayes.design
            reml = _fit_reml(design.formula, design.data, design.family.name, progress,
                             design.known_sigma_column)
            cmp, failed = _compare(bayes, reml, progress)
        with progress.step("writing the report"):
            report = fit_report(bayes, out.path, comparison=cmp, title=title,
                                description=description)
    print(f"wrote {report.html_path} and {report.markdown_path}")
    return 1 if failed else 0


def cmd_models(args) -> int:
    """List the cards in a folder: name, family, formula (and why a card is broken)."""
    folder = Path(args.folder) if args.folder else default_models_folder()
    cards, broken = [], 0
    for path in card_paths(folder):
        try:
            cards.append(load_card(path, args.allow_outside_data))
        except HierbayesError as err:
            broken += 1
            print(f"{PROG}: error: {one_line(err)}", file=sys.stderr)
    if not cards and not broken:
        print(f"No model cards (*.toml) in {folder}.")
    width = max((len(c.name) for c in cards), default=0)
    fam = max((len(c.family) for c in cards), default=0)
    for card in cards:
        print(f"{card.name:<{width}}  {card.family:<{fam}}  {card.formula}")
        if args.long:
            print(textwrap.fill(f"{card.path.name}: {card.description}", width=100,
                                initial_indent="    ", subsequent_indent="    ") + "\n")
    return 2 if broken else 0


# --- steps ----------------------------------------------------------------------------------


def _card_header(path: Path) -> tuple[str | None, str]:
    """Name and description of the card copy beside a saved fit (its data path, relative to
    the original card, no longer resolves there, so it is not validated as a card)."""
    if not path.is_file():
        return None, ""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None, ""
    return raw.get("name"), " ".join(str(raw.get("description", "")).split())


def _card_and_data(args, progress: Progress):
    card = load_card(resolve_card(args.card), args.allow_outside_data)
    overrides = {k: getattr(args, k, None) for k in ("draws", "tune", "chains", "seed")}
    card = dataclasses.replace(card, sampler=card.sampler.replace(**overrides))
    progress.say(f"model {card.summary()}")
    data = card.load_data()
    progress.say(f"data {card.data_path.name}: {len(data)} rows")
    return card, data


def _fit_bayes(card, data, args, progress: Progress):
    s = card.sampler
    kwargs = {"family": card.family, "priors": card.priors or None, "link": card.link,
              "known_sigma": card.known_sigma, "draws": s.draws, "tune": s.tune,
              "chains": s.chains, "random_seed": s.seed,
              # A progress bar in a log file is noise: only on a terminal.
              "progressbar": not args.quiet and sys.stderr.isatty()}
    if s.target_accept is not None:
        kwargs["target_accept"] = s.target_accept
    with progress.step(f"sampling by NUTS ({s.chains} chains × {s.draws} draws, {s.tune} tuning)"):
        return fit_bayes(card.formula, data, **kwargs)


def _fit_reml(formula, data, family, progress: Progress, known_sigma=None):
    """The REML (Gaussian) or Laplace fit, or None with a warning when there is none for this
    model: the Bayesian fit and its report are still worth having."""
    try:
        with progress.step("fitting by REML/Laplace"):
            # No within/between warning here: the comparison's reasons carry it.
            return fit_reml(formula, data, family=family, known_sigma=known_sigma,
                            check_within=False)
    except HierbayesError as err:
        progress.warn(f"no REML/Laplace counterpart: {one_line(err)}")
        return None


def _compare(bayes, reml, progress: Progress):
    """(comparison or None, failed). A comparison that breaks must not lose the fit's report,
    so it is reported and the command exits non-zero after writing everything else."""
    if reml is None:
        return None, False
    try:
        with progress.step("comparing the posterior with the REML/Laplace fit"):
            return compare(bayes, reml), False
    except Exception as err:  # see the docstring
        print(f"{PROG}: error: the comparison failed ({type(err).__name__}: {one_line(err)}); "
              "the report is written without it.", file=sys.stderr)
        return None, True


def _predictive(bayes, seed, progress: Progress) -> None:
    """Replicates for the report's predictive check. Drawn after saving, and again (same seed,
    same draws) when re-rendering: as big as the data times the draws, they would double the
    size of posterior.nc for one plot."""
    if "posterior_predictive" not in bayes.idata.children:
        with progress.step("drawing posterior predictive replicates"):
            bayes.sample_posterior_predictive(random_seed=seed)


def _save_fit(bayes, path: Path) -> None:
    bayes.save(path) if hasattr(bayes, "save") else write_via(path, bayes.idata.to_netcdf)


def _load_fit(path: Path):
    if not path.is_file():
        raise CardError(f"No saved fit at {str(path)!r} (expected a {POSTERIOR_FILE} written by "
                        "'hierbayes fit' or BayesFit.save).")
    return load(path)


def _write_tables(out: OutputFolder, bayes=None, cmp=None) -> None:
    """The tables behind the report as CSV: the fit's tidy tables and the comparison's."""
    if bayes is not None:
        out.write_csv("fixef.csv", bayes.fixef(), index=True)
        out.write_csv("varcorr.csv", bayes.varcorr())
        out.write_csv("ranef.csv", bayes.ranef())
    if cmp is not None:
        for name in ("fixed", "variance", "groups", "reasons"):
            out.write_csv(f"comparison_{name}.csv", getattr(cmp, name))


def _print_summary(card, bayes, cmp, report) -> None:
    fixef = bayes.fixef()
    print(f"{card.name}: {card.formula} ({card.family})")
    print(f"\nFixed effects (posterior mean, SD and {fixef.attrs.get('interval', 'interval')}):")
    with pd.option_context("display.width", 100, "display.precision", 4):
        print(fixef[["estimate", "std_error", "lower", "upper"]].to_string())
    checks = bayes.diagnostics()
    failed = checks.loc[~checks["ok"].astype(bool), "check"].tolist() if "ok" in checks else []
    print("\nSampler checks: " + (f"FAILED {', '.join(failed)}" if failed else "all pass"))
    if cmp is not None:
        print(f"\nBayes vs {cmp.method}:")
        print("\n".join(f"  {line}" for line in cmp.verdict()))
    print(f"\nwrote {report.html_path} and {report.markdown_path}")


def one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return " ".join(text.split())


# --- parser and entry point -----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Bayesian hierarchical models from lme4-style formulas (NUTS), "
        "compared with REML. See 'hierbayes COMMAND --help'.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fit = commands.add_parser(
        "fit", help="fit a model card by NUTS and REML; write report, posterior and tables",
        description="Fit the card's model by NUTS and its REML/Laplace counterpart, print a "
        "summary and write to DIR: report.html, report.md (+ report_files/), posterior.nc, "
        "card.toml, fixef/varcorr/ranef.csv and comparison_*.csv.")
    _card_arguments(fit, sampler=True)
    compare = commands.add_parser(
        "compare", help="compare the posterior with the REML/Laplace fit of a card",
        description="Fit the card both ways (or load --posterior) and write comparison.html, "
        "comparison.md and comparison_*.csv to DIR; print the verdict.")
    _card_arguments(compare, sampler=True)
    compare.add_argument("--posterior", metavar="FILE",
                         help="a saved fit (posterior.nc) to use instead of sampling again")
    report = commands.add_parser(
        "report", help="re-render the report of a saved fit",
        description="Re-render report.html and report.md from a saved fit: PATH is a "
        "posterior.nc or the folder 'hierbayes fit' wrote. The REML fit is recomputed from the "
        "saved data (it is fast) unless --no-compare.")
    report.add_argument("path", metavar="PATH")
    report.add_argument("--out", metavar="DIR", help="output folder (default: beside PATH)")
    report.add_argument("--no-compare", action="store_true", help="leave out the comparison")
    report.add_argument("--quiet", action="store_true", help="no progress messages")
    models = commands.add_parser(
        "models", help="list the model cards", description="List the model cards (*.toml) in "
        "FOLDER (default: ./models, else the shipped cards) with name, family and formula.")
    models.add_argument("folder", nargs="?", metavar="FOLDER")
    models.add_argument("--long", action="store_true", help="also show file and description")
    _outside_argument(models)
    for name, func in (("fit", cmd_fit), ("compare", cmd_compare), ("report", cmd_report),
                       ("models", cmd_models)):
        commands.choices[name].set_defaults(func=func)
    add_study_commands(commands, _card_arguments, _whole)  # agreement, sbc
    return parser


def _card_arguments(parser: argparse.ArgumentParser, sampler: bool) -> None:
    parser.add_argument("card", metavar="CARD",
                        help="a model card (.toml), or the name of a shipped card")
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder")
    if sampler:
        for name, what, least in (("draws", "draws per chain", 1),
                                  ("tune", "tuning steps per chain", 0),
                                  ("chains", "number of chains", 1), ("seed", "random seed", 0)):
            parser.add_argument(f"--{name}", type=_whole(least), metavar="N",
                                help=f"{what} (default: the card's)")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    _outside_argument(parser)


def _outside_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-outside-data", action="store_true",
                        help="read a card's data even when its path leads out of the card's "
                        "folder (refused by default)")


def _whole(least: int):
    def parse(text: str) -> int:
        if not (text.isdigit() and int(text) >= least):
            raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, got {text!r}")
        return int(text)

    return parse


def main(argv=None) -> int:
    """Entry point of the `hierbayes` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "quiet", False):
        logging.getLogger("pymc").setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.func(args)
    except BrokenPipeError:  # stdout closed early (`hierbayes models | head`): not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit
        return 0
    except (HierbayesError, OSError) as err:
        if args.debug:
            raise
        print(f"{PROG}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        print(f"{PROG}: error: {type(err).__name__}: {one_line(err)} (run with --debug for the "
              "traceback)", file=sys.stderr)
        return 1


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line each, without the source line that Python prints."""
    print(f"{PROG}: warning: {category.__name__}: {one_line(message)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
