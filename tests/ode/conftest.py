"""Shared references for the ODE tests: scipy solutions computed once per session."""

import functools

import jax
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import probnum_jax as pnx


@functools.lru_cache(maxsize=None)
def scipy_reference(name: str, **kwargs):
    """Dense-output scipy solution (rtol 1e-12; 1e-10 for stiff van der Pol) of a problem from ``pnx.problems``."""
    ivp = getattr(pnx.problems, name)(**kwargs)

    f_jit = jax.jit(lambda t, y: ivp.vector_field(t, y, ivp.args))
    jac_jit = jax.jit(jax.jacfwd(lambda t, y: ivp.vector_field(t, y, ivp.args), argnums=1))

    def f(t, y):
        if name == "van_der_pol":  # plain numpy: Radau needs ~1e5 calls on the stiff problem
            (mu,) = ivp.args
            return np.array([y[1], mu * (1.0 - y[0] ** 2) * y[1] - y[0]])
        return np.asarray(f_jit(t, y))

    def jac(t, y):
        if name == "van_der_pol":
            (mu,) = ivp.args
            return np.array([[0.0, 1.0], [-2.0 * mu * y[0] * y[1] - 1.0, mu * (1.0 - y[0] ** 2)]])
        return np.asarray(jac_jit(t, y))

    options = {"method": "Radau", "jac": jac} if ivp.stiff else {"method": "DOP853"}
    # Radau on the stiff van der Pol takes ~1e5 steps at 1e-12; 1e-10 is ample for our 1e-6 solves.
    tol = 1e-10 if name == "van_der_pol" else 1e-12
    sol = solve_ivp(f, (ivp.t0, ivp.t1), np.asarray(ivp.y0), rtol=tol, atol=tol, dense_output=True, **options)
    assert sol.success
    return ivp, sol.sol


@pytest.fixture(scope="session")
def reference():
    return scipy_reference


def geometric_mean_ratio(error, std):
    """Geometric mean of |error| / std over entries with a non-zero std."""
    error, std = np.abs(np.asarray(error)), np.asarray(std)
    keep = std > 0
    return float(np.exp(np.mean(np.log(error[keep] / std[keep]))))
