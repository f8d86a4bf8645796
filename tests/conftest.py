"""Shared test configuration: float64 everywhere (float32 variants set dtypes explicitly)."""

import os

# Tiny dense factorisations (QR of a few hundred rows) run ~10x slower with a
# multi-threaded BLAS on a busy 2-core machine; tests use one BLAS thread per worker.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
