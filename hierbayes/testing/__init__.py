"""Helpers shipped with the package so that tests, notebooks and benchmarks share one set:
simulation-based calibration (`sbc`) and fakes of the engines' results (`fakes`)."""
