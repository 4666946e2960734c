"""A plain-text view of a `RemlFit` laid out like lme4's `print(summary(fit))`. Formats only."""

from __future__ import annotations

from .sdcor import sds_and_correlations


def format_fit(fit) -> str:
    design = fit.design
    crit = "REML criterion at convergence" if fit.method == "REML" else "Deviance"
    lines = [
        _title(fit),
        f"Formula: {design.formula}",
        f"{crit}: {fit.criterion:.4f}",
        f"AIC {fit.aic:.1f}  BIC {fit.bic:.1f}  logLik {fit.loglik:.2f}",
    ]
    status = [s for s, bad in (("singular fit", fit.singular),
                               ("NOT CONVERGED", not fit.converged)) if bad]
    if status:
        lines.append("Note: " + "; ".join(status))
    lines += ["", "Random effects:", *_random_lines(fit)]
    if fit.sigma_known:  # varcorr() has no Residual row either: nothing was estimated
        s = design.known_sigma
        lines.append(f"Residual SDs known (column {design.known_sigma_column!r}: "
                     f"{s.min():.4g} to {s.max():.4g}, median {fit.sd_scale:.4g}); "
                     "no residual SD estimated")
    counts = ", ".join(f"{g}, {len(levels)}" for g, levels in design.groups.items())
    lines += [f"Number of obs: {design.n_obs}, groups:  {counts}", "", "Fixed effects:"]
    lines += _fixed_lines(fit)
    return "\n".join(lines)


def _title(fit) -> str:
    if fit.method == "Laplace":
        symbol = "σ" if fit.family == "gaussian" else "α"
        family = fit.family if fit.dispersion is None else (
            f"{fit.family}({symbol} = {fit.dispersion:.4g})")
        how = ("Laplace approximation" if fit.nagq == 1 else
               f"adaptive Gauss-Hermite quadrature, nAGQ = {fit.nagq}")
        return (f"Generalized linear mixed model fit by maximum likelihood ({how}; "
                f"hierbayes.fit_reml)\nFamily: {family} ({fit.link})")
    by = "REML" if fit.method == "REML" else "maximum likelihood"
    known = " with known residual SDs" if fit.sigma_known else ""
    return f"Linear mixed model fit by {by}{known} (hierbayes.fit_reml)"


def _random_lines(fit) -> list[str]:
    rows = [("Groups", "Name", "Std.Dev.", "Corr")]
    for block in fit.design.blocks:
        sd, corr = sds_and_correlations(fit.covariance[block.name])
        for i, term in enumerate(block.terms):
            rows.append((block.name if i == 0 else "", term, f"{sd[i]:.4g}",
                         " ".join(f"{c:5.2f}" for c in corr[i, :i])))
    if fit.sigma is not None:
        rows.append(("Residual", "", f"{fit.sigma:.4g}", ""))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    return [" " + " ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def _fixed_lines(fit) -> list[str]:
    table = fit.fixef()
    # Known SDs: the SEs involve no estimated σ, so the ratio is a z statistic (as for GLMMs).
    stat = "z value" if fit.method == "Laplace" or fit.sigma_known else "t value"
    rows = [("", "Estimate", "Std. Error", stat)]
    for term, row in table.iterrows():
        rows.append((str(term), f"{row.estimate:.5g}", f"{row.std_error:.5g}",
                     f"{row.statistic:.3f}"))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    return [r[0].ljust(widths[0]) + " " + " ".join(c.rjust(w) for c, w in
                                                   zip(r[1:], widths[1:], strict=True))
            for r in rows]
