"""Studies that answer the note's questions with many fits: when do the posterior and REML agree
(`agreement`), and is the inference calibrated (`sbc`). Fits run one after another, in local
processes or on a cluster (`hierbayes.study.parallel`)."""

from .agreement import Agreement, agreement
from .calibration import Calibration, sbc

__all__ = ["Agreement", "Calibration", "agreement", "sbc"]
