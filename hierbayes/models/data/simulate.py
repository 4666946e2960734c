"""Write the simulated data sets of the model cards (run from the repository root).

    .venv/bin/python models/data/simulate.py

The output is deterministic (fixed seeds), so rerunning it reproduces the shipped CSVs.
"""

from pathlib import Path

from hierbayes.simulate import eight_schools, zip_income

HERE = Path(__file__).parent

# A card's data set should be small enough to ship and to fit in seconds: 100 ZIP codes of 1 to
# 100 households (about 2,000 rows) keep the many-tiny/few-large mix that makes pooling visible.
ZIP_ARGS = {"n_zips": 100, "min_size": 1, "max_size": 100, "seed": 2026}


def main() -> None:
    sim = zip_income(**ZIP_ARGS)
    sim.data.round({"income": 3}).to_csv(HERE / "zip_income.csv", index=False)
    truth = sim.truth["zip"].to_frame("true_effect").join(sim.truth["n"])
    truth.index.name = "zip"
    truth.round({"true_effect": 4}).to_csv(HERE / "zip_income_truth.csv")
    eight_schools().to_csv(HERE / "eight_schools.csv", index=False)


if __name__ == "__main__":
    main()
