"""Numbers and labels as report text. One place, so the HTML and Markdown read the same."""

from __future__ import annotations

import math
import numbers

import pandas as pd


def number(value, digits: int = 4) -> str:
    """Significant digits without scientific notation for everyday magnitudes."""
    if value is None or isinstance(value, str):
        return "" if value is None else value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if not isinstance(value, numbers.Real):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    magnitude = abs(value)
    if magnitude >= 10 ** digits:  # large counts (ESS, n): grouped digits read better than 1e+04
        return f"{value:,.0f}"
    if 0 < magnitude < 1e-3:
        return f"{value:.{digits - 1}e}"
    text = f"{value:.{digits}g}"
    return "0" if text == "-0" else text


def cell(value) -> str:
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):  # arrays and other non-scalars
        return str(value)
    return number(value)


def text_frame(frame: pd.DataFrame, index: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows of `frame` as strings (the index first when `index`)."""
    header = [str(c) for c in frame.columns]
    rows = [[cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    if index:
        header = [str(frame.index.name or ""), *header]
        rows = [[cell(label), *row] for label, row in zip(frame.index, rows, strict=True)]
    return header, rows


def interval_of(frame: pd.DataFrame, fallback: str = "") -> str:
    """The interval a tidy table states in ``attrs["interval"]``."""
    return str(frame.attrs.get("interval") or fallback)


def interval_caption(frame: pd.DataFrame, fallback: str = "") -> str:
    interval = interval_of(frame, fallback)
    if not interval:
        return "Point estimates (this fit reports no interval here)."
    return f"lower/upper: {interval}."


def percent(prob: float) -> str:
    return f"{100 * prob:g}%"
