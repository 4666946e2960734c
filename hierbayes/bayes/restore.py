"""`load`: a `BayesFit` back from the file `BayesFit.save` wrote (`hierbayes.bayes.persist`)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import xarray as xr

from ..design import make_design
from ..errors import DataWarning, HierbayesError
from .fit import BayesFit
from .model import model_from_design
from .persist import DATA_GROUP, META_KEY, dataset_to_frame
from .priors import Prior


def load(path):
    """A `BayesFit` from a file written by `BayesFit.save`."""
    if not Path(path).is_file():
        raise HierbayesError(
            f"No file {str(path)!r} to load a fit from (hb.load reads what BayesFit.save wrote; "
            "shipped data sets are loaded with hierbayes.datasets.load)."
        )
    with xr.open_datatree(Path(path)) as opened:
        tree = opened.load()
    if META_KEY not in tree.attrs or DATA_GROUP not in tree.children:
        raise HierbayesError(f"{path} was not written by BayesFit.save (no hierbayes metadata).")
    meta = json.loads(tree.attrs[META_KEY])
    data = dataset_to_frame(tree[DATA_GROUP].to_dataset())
    # The stored rows are the design's rows: nothing is missing, so nothing is dropped again.
    design = make_design(
        meta["formula"], data, meta["family"], meta["missing"], known_sigma=meta.get("known_sigma")
    )
    overrides = {name: Prior.from_dict(spec) for name, spec in meta["priors"].items()}
    spec = model_from_design(design, overrides, meta["link"], meta["missing"])
    stored = {name: Prior.from_dict(p) for name, p in meta["priors_table"].items()}
    if dict(spec.priors) != stored:
        warnings.warn(
            f"The priors rebuilt from {path} differ from those saved with the fit (a different "
            "hierbayes version?); the posterior draws are those saved.",
            DataWarning,
            stacklevel=2,
        )
    groups = {name: node for name, node in tree.children.items() if name != DATA_GROUP}
    idata = xr.DataTree.from_dict({f"/{name}": node.to_dataset() for name, node in groups.items()})
    return BayesFit(spec, idata, meta["settings"])
