"""Helpers shipped with the package so that tests, notebooks and benchmarks share one set:
simulation-based calibration (`sbc`), fakes of the engines' results (`fakes`) and the dense
reference algebra the sparse engines are checked against (`dense`)."""
