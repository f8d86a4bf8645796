"""The q-times integrated Wiener process prior with a preconditioned discretisation.

For one coordinate, the state is ``(y, y', ..., y^(q))`` and the transition over
a step ``h`` has ``A(h)_ij = h^(j-i) / (j-i)!`` and process-noise covariance
``Q(h)_ij = h^(2q+1-i-j) / ((2q+1-i-j) (q-i)! (q-j)!)``. Both factor as
``A(h) = T Ā T^{-1}`` and ``Q(h) = c^2 T Q̄ T`` with the step-independent
``Ā_ij = binom(q-i, q-j)``, ``Q̄_ij = 1 / (2q+1-i-j)``, a diagonal ``T`` and a
scalar ``c`` (Kersting, Sullivan & Hennig 2020, "Convergence rates of Gaussian
ODE filters", Sec. 4). The Cholesky factor of ``Q̄`` is computed once in float64
and cast, so the discretisation stays stable in float32 for ``q`` up to 8 and
beyond; the scaling ``T_i = h^(q/2 - i) / (q-i)!``, ``c = h^((q+1)/2)`` splits the
powers of ``h`` evenly so that neither factor under- or overflows.
"""

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np


def iwp_preconditioned_transition(num_derivatives: int):
    """Step-independent ``(Ā, cholesky(Q̄))`` of the IWP(q) prior, as float64 numpy arrays.

    Example:
        >>> A, Q = iwp_preconditioned_transition(1)
        >>> A.tolist()
        [[1.0, 1.0], [0.0, 1.0]]
    """
    q = num_derivatives
    idx = np.arange(q + 1)
    i, j = np.meshgrid(idx, idx, indexing="ij")
    a = np.zeros((q + 1, q + 1))
    for r in range(q + 1):
        for s in range(r, q + 1):
            a[r, s] = math.comb(q - r, q - s)
    qbar = 1.0 / (2 * q + 1 - i - j)
    return a, np.linalg.cholesky(qbar)


def iwp_preconditioner(h, num_derivatives: int):
    """Diagonal ``T`` (as a vector) and scalar ``c`` with ``Q(h) = c^2 T Q̄ T``."""
    q = num_derivatives
    idx = jnp.arange(q + 1)
    fact = jnp.asarray([math.factorial(q - k) for k in range(q + 1)], dtype=jnp.result_type(h))
    scales = h ** (q / 2 - idx) / fact
    return scales, h ** ((q + 1) / 2)


class IWP(eqx.Module):
    """The ``q``-times integrated Wiener process prior (the default).

    Its ``q``-th derivative is Brownian motion; the posterior mean of an ODE
    filter with this prior is a spline of degree ``2q+1`` and the method has
    order ``q`` (Kersting et al. 2020).
    """

    def transition(self, num_derivatives: int, dtype):
        """Step-independent ``(Ā, cholesky(Q̄))`` in ``dtype``; see :func:`iwp_preconditioner`."""
        a, qs = iwp_preconditioned_transition(num_derivatives)
        return jnp.asarray(a, dtype), jnp.asarray(qs, dtype)
