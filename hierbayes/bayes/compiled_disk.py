"""Compiled nutpie models on disk, across processes (placeholder: compiles)."""

from __future__ import annotations


def load_or_compile(model, key: str):
    import nutpie

    return nutpie.compile_pymc_model(model), "compiled"
