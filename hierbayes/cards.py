"""Model cards: one small TOML file per ready-to-fit model (see `models/`).

A card names the model and its data; the command line (`hierbayes fit CARD`) and the tests read it.
Layout (every key but the marked ones is required)::

    name = "sleepstudy"
    description = "..."
    formula = "Reaction ~ Days + (Days | Subject)"
    family = "gaussian"
    link = "identity"             # optional: the family's default link otherwise
    known_sigma = "se"            # optional: column of known per-observation SDs (meta-analysis)

    [data]
    path = "data/sleepstudy.csv"  # relative to the card, inside its folder (see below)
    factors = ["Subject"]         # optional: columns read as strings, however numeric they look

    [sampler]                     # optional, every key optional
    draws = 1000
    tune = 1000
    chains = 4
    seed = 1
    target_accept = 0.9

    [priors.sd_Subject]           # optional: overrides by prior name (see `hierbayes.bayes.priors`)
    distribution = "HalfNormal"
    sigma = 50.0

Unknown keys are errors (a typo would otherwise be silently ignored), listed with the valid keys.

A card is text someone else may have written: its formula passes the allow-list of
`hierbayes.expressions` when it is loaded, and its data must lie inside the card's folder (after
resolving ``..`` and symbolic links) unless the caller opts in with ``allow_outside=True``
(``hierbayes fit --allow-outside-data``). A data file that is not a CSV table is refused without
quoting any of it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .bayes.priors import Prior, make_priors
from .design import make_design
from .errors import CardError, HierbayesError
from .families import check_link, get_family
from .formula import parse_formula
from .validation import formula_names

__all__ = ["CardError", "ModelCard", "SamplerSettings", "card_paths", "default_models_folder",
           "list_cards", "load_card", "resolve_card"]

TOP_KEYS = ("name", "description", "formula", "family", "link", "known_sigma", "data", "sampler",
            "priors")
REQUIRED_KEYS = ("name", "description", "formula", "family", "data")
DATA_KEYS = ("path", "factors")
SAMPLER_KEYS = ("draws", "tune", "chains", "seed", "target_accept")


@dataclass(frozen=True)
class SamplerSettings:
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int | None = None
    target_accept: float | None = None  # None: the sampler's own default

    def replace(self, **changes) -> SamplerSettings:
        """A copy with the non-None `changes` applied (command-line overrides)."""
        kept = {k: v for k, v in changes.items() if v is not None}
        return SamplerSettings(**{**self.__dict__, **kept})


@dataclass(frozen=True)
class ModelCard:
    path: Path  # the card file
    name: str
    description: str
    formula: str
    family: str
    data_path: Path  # absolute
    factors: tuple[str, ...] = ()
    link: str | None = None
    known_sigma: str | None = None
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    priors: dict[str, Prior] = field(default_factory=dict)

    def load_data(self) -> pd.DataFrame:
        """The card's data, factor columns as strings; checks the columns the card names."""
        frame = _read_table(self.data_path, self.factors, self.path)
        named = [*self.factors, *([self.known_sigma] if self.known_sigma else [])]
        missing = [c for c in named if c not in frame.columns]
        if missing:
            raise CardError(
                f"{self.path}: column(s) {', '.join(map(repr, missing))} named by the card are "
                f"not in {self.data_path.name}; its columns are: {', '.join(frame.columns)}."
            )
        if self.known_sigma:
            _check_known_sigma(frame[self.known_sigma], self)
        return frame

    def design(self, data: pd.DataFrame | None = None):
        """The card's `Design` (the data read from the card unless given)."""
        data = self.load_data() if data is None else data
        return make_design(self.formula, data, self.family, known_sigma=self.known_sigma)

    def make_priors(self, design):
        """The full prior table of `design` with the card's overrides (checks their names)."""
        return make_priors(design, self.priors or None, self.link)

    def summary(self) -> str:
        return f"{self.name}: {self.formula} ({self.family})"


def load_card(path, allow_outside: bool = False) -> ModelCard:
    """Read and validate one card. Raises `CardError` naming the file and what is wrong.

    The data path must lie inside the card's folder unless `allow_outside`.
    """
    path = Path(path)
    if not path.is_file():
        raise CardError(f"Model card {str(path)!r} not found.")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise CardError(f"{path}: not valid TOML: {err}.") from None
    _check_keys(raw, TOP_KEYS, path, "the card")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise CardError(f"{path}: missing required key(s): {', '.join(missing)}.")
    for key in ("name", "description", "formula", "family", "link", "known_sigma"):
        if key in raw and not (isinstance(raw[key], str) and raw[key].strip()):
            raise CardError(f"{path}: {key!r} must be a non-empty string, got {raw[key]!r}.")
    _check_model(raw, path)
    # The card's own content first, then the file system: a typo is reported before a path.
    sampler = _sampler(raw.get("sampler", {}), path)
    priors = _priors(raw.get("priors", {}), path)
    data_path, factors = _data(raw["data"], path, allow_outside)
    return ModelCard(
        path=path,
        name=raw["name"],
        description=" ".join(raw["description"].split()),
        formula=raw["formula"],
        family=raw["family"],
        data_path=data_path,
        factors=factors,
        link=raw.get("link"),
        known_sigma=raw.get("known_sigma"),
        sampler=sampler,
        priors=priors,
    )


def card_paths(folder) -> list[Path]:
    """The card files (``*.toml``) directly in `folder`, sorted by file name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CardError(f"Model card folder {str(folder)!r} not found.")
    return sorted(folder.glob("*.toml"))


def list_cards(folder, allow_outside: bool = False) -> list[ModelCard]:
    """Every card in `folder`, validated (the first invalid one raises `CardError`)."""
    return [load_card(p, allow_outside) for p in card_paths(folder)]


def default_models_folder() -> Path:
    """``./models`` when there is one, else the cards shipped inside the package."""
    here = Path.cwd() / "models"
    return here if here.is_dir() else Path(__file__).resolve().parent / "models"


def resolve_card(spec: str) -> Path:
    """A card file, or a card name looked up in the default folder (``sleepstudy``)."""
    path = Path(spec)
    if path.is_file() or path.suffix or "/" in spec:
        return path
    folder = default_models_folder()
    candidate = folder / f"{spec}.toml"
    if candidate.is_file():
        return candidate
    names = ", ".join(p.stem for p in card_paths(folder)) if folder.is_dir() else "none"
    raise CardError(f"No model card {spec!r}: not a file, and not a card in {folder} "
                    f"(available: {names}).")


# --- validation -----------------------------------------------------------------------------


def _check_keys(table: dict, valid: tuple[str, ...], path: Path, where: str) -> None:
    if not isinstance(table, dict):
        raise CardError(f"{path}: {where} must be a table, got {table!r}.")
    unknown = [k for k in table if k not in valid]
    if unknown:
        raise CardError(
            f"{path}: unknown key(s) {', '.join(map(repr, unknown))} in {where}; "
            f"valid keys: {', '.join(valid)}."
        )


def _check_model(raw: dict, path: Path) -> None:
    """Formula, family and link are checked now so that a bad card fails before any fitting."""
    try:
        formula_names(parse_formula(raw["formula"]))  # the allow-list, before any data is read
        check_link(get_family(raw["family"]), raw.get("link"))
    except HierbayesError as err:
        raise type(err)(f"{path}: {err}") from None


def _data(table, path: Path, allow_outside: bool) -> tuple[Path, tuple[str, ...]]:
    if isinstance(table, str):  # shorthand: data = "data/x.csv"
        table = {"path": table}
    _check_keys(table, DATA_KEYS, path, "[data]")
    if not isinstance(table.get("path"), str):
        raise CardError(f"{path}: [data] needs path = \"<CSV file relative to the card>\".")
    factors = table.get("factors", [])
    if not (isinstance(factors, list) and all(isinstance(f, str) for f in factors)):
        raise CardError(f"{path}: [data] factors must be a list of column names, got {factors!r}.")
    folder = path.parent.resolve()
    data_path = (folder / table["path"]).resolve()
    if not (allow_outside or data_path.is_relative_to(folder)):
        # Said before looking: whether a file exists out there is none of the card's business.
        raise CardError(
            f"{path}: data path {table['path']!r} lies outside the card's folder {folder}. Put "
            "the data beside the card, or opt in to reading it (load_card(..., "
            "allow_outside=True); hierbayes fit/compare --allow-outside-data)."
        )
    if not data_path.is_file():
        raise CardError(f"{path}: data file {table['path']!r} not found (looked for {data_path}).")
    return data_path, tuple(factors)


def _sampler(table, path: Path) -> SamplerSettings:
    _check_keys(table, SAMPLER_KEYS, path, "[sampler]")
    for key in ("draws", "chains"):
        if key in table and not _is_int(table[key], minimum=1):
            raise CardError(f"{path}: [sampler] {key} must be a positive integer.")
    if "tune" in table and not _is_int(table["tune"], minimum=0):
        raise CardError(f"{path}: [sampler] tune must be a non-negative integer.")
    if "seed" in table and not _is_int(table["seed"], minimum=0):
        raise CardError(f"{path}: [sampler] seed must be a non-negative integer.")
    accept = table.get("target_accept")
    if accept is not None and not (isinstance(accept, float | int) and 0 < accept < 1):
        raise CardError(f"{path}: [sampler] target_accept must be a number in (0, 1).")
    return SamplerSettings(**table)


def _is_int(value, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _priors(table, path: Path) -> dict[str, Prior]:
    if not isinstance(table, dict):
        raise CardError(f"{path}: [priors] must be a table of prior name -> distribution.")
    out = {}
    for name, spec in table.items():
        if not (isinstance(spec, dict) and isinstance(spec.get("distribution"), str)):
            raise CardError(
                f"{path}: [priors.{name}] needs distribution = \"<PyMC distribution>\" and its "
                "parameters, e.g. distribution = \"HalfNormal\" and sigma = 1.0."
            )
        params = {k: v for k, v in spec.items() if k != "distribution"}
        out[name] = Prior(spec["distribution"], **params)
    return out


def _read_table(data_path: Path, factors: tuple[str, ...], card: Path) -> pd.DataFrame:
    """The CSV file as a frame; a file that is not a table (no header and data rows, one column,
    not text) is refused without quoting it: it may be anything the card pointed at."""
    try:
        frame = pd.read_csv(data_path, dtype={c: str for c in factors})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        raise CardError(
            f"{card}: data file {data_path.name} cannot be read as a CSV table "
            f"({type(err).__name__}); the data must be comma-separated text with a header row."
        ) from None
    if len(frame) == 0 or frame.shape[1] < 2:
        raise CardError(
            f"{card}: data file {data_path.name} is not a CSV table (it has {len(frame)} data "
            f"row(s) and {frame.shape[1]} column(s)); the data must be comma-separated text with "
            "a header row and at least two columns."
        )
    return frame


def _check_known_sigma(column: pd.Series, card: ModelCard) -> None:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        raise CardError(
            f"{card.path}: known_sigma column {card.known_sigma!r} must hold positive, finite "
            "numbers (the known SD of each observation)."
        )
