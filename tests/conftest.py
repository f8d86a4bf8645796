"""Shared test configuration: float64 everywhere (float32 variants set dtypes explicitly)."""

import os

# Tiny dense factorisations (QR of a few hundred rows) run ~10x slower with a
# multi-threaded BLAS on a busy 2-core machine; tests use one BLAS thread per worker.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# One Eigen thread per worker: the workers already share the two cores. (This was first a
# precaution against the XLA CPU hang of batched LAPACK calls inside loops; the parallel
# smoother no longer makes such calls, see probnum_jax/_small_linalg.py.)
# The tests' problems are small and mostly compile time: LLVM's optimisation passes cost
# more than they save (about 15% of the suite's time).
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false --xla_backend_optimization_level=0"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)



# With ``--dist loadscope`` a module runs on one worker. The modules with the most test time
# (measured with --durations) are scheduled first, longest first, so that no worker starts a
# long module while the others have run out of work.
HEAVY_MODULES = (
    "tests/test_doctests.py",
    "tests/diffusion/test_sample.py",
    "tests/posteriors/test_blocks.py",
    "tests/diffusion/test_sde.py",
    "tests/quad/test_bayesquad_from_data.py",
    "tests/posteriors/test_curvature.py",
    "tests/posteriors/test_laplace.py",
    "tests/randvars/test_normal.py",
    "tests/ode/test_transforms.py",
    "tests/ode/test_parallel.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: order kept otherwise
