"""Shared small test problems for the linear solvers (float64; see tests/conftest.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

from probnum_jax.problems._linear_systems import random_spd_matrix  # noqa: E402

N = 40


class Problem:
    def __init__(self, A, x):
        self.A = A
        self.x = x
        self.b = A @ x
        self.n = A.shape[0]


@pytest.fixture(scope="session")
def spd():
    """A random SPD matrix, n = 40, eigenvalues log-spaced in [1, 100]."""
    A = random_spd_matrix(jax.random.key(0), jnp.logspace(0, 2, N))
    x = jax.random.normal(jax.random.key(1), (N,))
    return Problem(A, x)


@pytest.fixture(scope="session")
def cg_iterates():
    """Textbook NumPy CG iterates ``[x_0, ..., x_m]``: the independent reference."""
    return numpy_cg


def numpy_cg(A, b, num_iterations, M=None):
    """Textbook (preconditioned) CG in NumPy: the independent reference for the iterates."""
    A, b = np.asarray(A), np.asarray(b)
    M = np.eye(len(b)) if M is None else np.asarray(M)
    x = np.zeros_like(b)
    r = b.copy()
    z = M @ r
    p = z.copy()
    iterates = [x.copy()]
    for _ in range(num_iterations):
        Ap = A @ p
        alpha = (r @ z) / (p @ Ap)
        x = x + alpha * p
        r_new = r - alpha * Ap
        z_new = M @ r_new
        p = z_new + (r_new @ z_new) / (r @ z) * p
        r, z = r_new, z_new
        iterates.append(x.copy())
    return np.array(iterates)
