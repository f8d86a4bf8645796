"""Shared test configuration: float64 everywhere (float32 variants set dtypes explicitly)."""

import os

# Tiny dense factorisations (QR of a few hundred rows) run ~10x slower with a
# multi-threaded BLAS on a busy 2-core machine; tests use one BLAS thread per worker.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# XLA's multi-threaded Eigen pool on CPU can deadlock on large vmapped linear algebra inside
# loops (seen with the parallel-in-time smoother and batched LAPACK calls): every thread
# asleep, the test waiting forever. One Eigen thread per worker is a precaution (it did not
# remove the hang at N >= 1000 in the benchmark; the tests use short grids).
# The tests' problems are small and mostly compile time: LLVM's optimisation passes cost
# more than they save (about 15% of the suite's time).
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false --xla_backend_optimization_level=0"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

