"""Response families and links that hierbayes knows, and what each asks of the response.

The likelihoods themselves live with the engines (`builder` for PyMC, `reml` for the frequentist
side); this module only names the families so that the design can validate the response once.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import FamilyError


@dataclass(frozen=True)
class Family:
    name: str
    response: str  # "real", "binary", "binomial" (cbind) or "count"
    links: tuple[str, ...]  # the first is the default

    @property
    def default_link(self) -> str:
        return self.links[0]


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("gaussian", "real", ("identity", "log")),
        Family("student_t", "real", ("identity",)),
        Family("bernoulli", "binary", ("logit", "probit", "cloglog")),
        Family("binomial", "binomial", ("logit", "probit", "cloglog")),
        Family("poisson", "count", ("log",)),
        Family("negative_binomial", "count", ("log",)),
    )
}


def get_family(name: str | Family) -> Family:
    if isinstance(name, Family):
        return name
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise FamilyError(
            f"Unknown family {name!r}; valid families are: {', '.join(FAMILIES)}."
        ) from None


def check_link(family: Family, link: str | None) -> str:
    if link is None:
        return family.default_link
    if link not in family.links:
        raise FamilyError(
            f"The {family.name} family has no link {link!r}; "
            f"valid links: {', '.join(family.links)}."
        )
    return link
