"""The study subcommands of `hierbayes` (registered by `hierbayes.cli`):

    hierbayes agreement sleepstudy --out out/agree --groups 4 8 16 --per-group 5 --reps 2
    hierbayes sbc radon_intercepts --out out/sbc --datasets 100 --jobs 2

Both write ``report.html`` and ``report.md`` (with ``report_files/``) and the study's tables as
CSV to ``--out``, checked before any fitting and written atomically, like every other command.
Results go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ..cards import load_card, resolve_card
from ..outdir import OutputFolder

REPORT_FILES = ("report.html", "report.md", "report_files")
AGREEMENT_FILES = ("agreement.csv", "agreement_cells.csv", "agreement_fits.csv",
                   "agreement_summary.csv")
SBC_FILES = ("sbc_ranks.csv", "sbc_uniformity.csv", "sbc_fits.csv")


def cmd_agreement(args) -> int:
    """Fit subsamples of the card's data both ways; report where Bayes and REML agree."""
    from .agreement import agreement

    with OutputFolder(args.out, (*AGREEMENT_FILES, *REPORT_FILES)) as out:
        card, data = _card_and_data(args)
        s = card.sampler
        study = agreement(card.formula, data, n_groups=tuple(args.groups),
                          per_group=tuple(args.per_group), reps=args.reps, family=card.family,
                          priors=card.priors or None, link=card.link,
                          known_sigma=card.known_sigma, seed=s.seed or 0, n_jobs=args.jobs,
                          progressbar=not args.quiet, **_sampler(s))
        for name, frame in zip(AGREEMENT_FILES, (study.table, study.cells(), study.fits,
                                                 study.summary()), strict=True):
            out.write_csv(name, frame)
        report = study.report(out.path, title=f"{card.name}: Bayes vs REML by data size",
                              description=card.description)
    print(study)
    print(f"\nwrote {report.html_path} and {report.markdown_path}")
    return 0


def cmd_sbc(args) -> int:
    """Simulation-based calibration of the card's model on the design of its data."""
    from .calibration import sbc

    with OutputFolder(args.out, (*SBC_FILES, *REPORT_FILES)) as out:
        card, data = _card_and_data(args)
        s = card.sampler
        study = sbc(card.formula, data, n_datasets=args.datasets, family=card.family,
                    priors=card.priors or None, link=card.link, known_sigma=card.known_sigma,
                    thin=args.thin, seed=s.seed or 0, n_jobs=args.jobs,
                    progressbar=not args.quiet, **_sampler(s))
        out.write_csv("sbc_ranks.csv", study.ranks, index=True)
        out.write_csv("sbc_uniformity.csv", study.uniformity, index=True)
        out.write_csv("sbc_fits.csv", study.fits)
        report = study.report(out.path, title=f"{card.name}: simulation-based calibration",
                              description=card.description)
    print(study)
    print(f"\nwrote {report.html_path} and {report.markdown_path}")
    return 0 if study.calibrated else 1


def _card_and_data(args):
    card = load_card(resolve_card(args.card), args.allow_outside_data)
    overrides = {k: getattr(args, k, None) for k in ("draws", "tune", "chains", "seed")}
    card = dataclasses.replace(card, sampler=card.sampler.replace(**overrides))
    if not args.quiet:
        print(f"hierbayes: model {card.summary()}", file=sys.stderr, flush=True)
    return card, card.load_data()


def _sampler(s) -> dict:
    options = {"draws": s.draws, "tune": s.tune, "chains": s.chains}
    if s.target_accept is not None:
        options["target_accept"] = s.target_accept
    return options


def add_commands(commands, card_arguments, whole) -> None:
    """Add `agreement` and `sbc` to the subparsers `commands` of the main parser;
    `card_arguments(parser, sampler=True)` adds CARD, --out and the sampler options, `whole(n)`
    parses a whole number >= n (both from `hierbayes.cli`)."""
    agree = commands.add_parser(
        "agreement", help="where do Bayes and REML agree, by data size (subsamples)",
        description="Subsample the card's data (groups, rows per group), fit each subsample by "
        "REML and NUTS, and write where the two agree: report.html, report.md and "
        "agreement*.csv in DIR.")
    card_arguments(agree, sampler=True)
    agree.add_argument("--groups", type=whole(2), nargs="+", default=[4, 8, 16], metavar="N",
                       help="numbers of groups (default: 4 8 16)")
    agree.add_argument("--per-group", type=whole(1), nargs="+", default=[5], metavar="N",
                       help="rows per group (default: 5)")
    agree.add_argument("--reps", type=whole(1), default=2, metavar="N",
                       help="subsamples per size (default: 2)")
    _jobs(agree, whole)
    agree.set_defaults(func=cmd_agreement)
    calibrate = commands.add_parser(
        "sbc", help="simulation-based calibration of a card's model",
        description="Simulate data sets from the card's prior on its data's design, fit each "
        "by NUTS and test the ranks of the true values for uniformity: report.html, report.md "
        "and sbc_*.csv in DIR. Exit status 1 when the ranks are not uniform.")
    card_arguments(calibrate, sampler=True)
    calibrate.add_argument("--datasets", type=whole(2), default=50, metavar="N",
                           help="simulated data sets (default: 50)")
    calibrate.add_argument("--thin", type=whole(1), default=10, metavar="N",
                           help="keep every N-th posterior draw for the ranks (default: 10)")
    _jobs(calibrate, whole)
    calibrate.set_defaults(func=cmd_sbc)


def _jobs(parser: argparse.ArgumentParser, whole) -> None:
    parser.add_argument("--jobs", type=whole(1), default=1, metavar="N",
                        help="fit in N local processes (default: 1)")
