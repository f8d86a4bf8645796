"""Taylor-mode initialisation against closed-form derivatives."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probnum_jax as pnx


def _closed_form_derivatives(solution, t0, num):
    derivs, g = [], solution
    for _ in range(num + 1):
        derivs.append(jax.jit(g)(t0))  # compiled: nested jacfwd op by op takes ~10 s
        g = jax.jacfwd(g)
    return jnp.stack([jnp.reshape(d, (-1,)) for d in derivs])


@pytest.mark.parametrize("method", ["jet", "jvp"])
def test_logistic_derivatives_match_the_closed_form(method):
    ivp = pnx.problems.logistic()
    q = 5
    coeffs = pnx.ode.taylor_coefficients(ivp.vector_field, ivp.t0, ivp.y0, ivp.args, q, method=method)
    expected = _closed_form_derivatives(ivp.solution, ivp.t0, q)
    np.testing.assert_allclose(coeffs, expected, rtol=1e-10, atol=1e-12)


def test_time_dependent_vector_field():
    """y' = cos(t) y, y = exp(sin t): the time derivative enters through jet's t-series."""
    f = lambda t, y, args: jnp.cos(t) * y  # noqa: E731
    solution = lambda t: jnp.exp(jnp.sin(t)) * jnp.ones(1)  # noqa: E731
    coeffs = pnx.ode.taylor_coefficients(f, 0.3, jnp.asarray(solution(0.3)), None, 4)
    np.testing.assert_allclose(coeffs, _closed_form_derivatives(solution, 0.3, 4), rtol=1e-10)


def test_falls_back_when_jet_cannot_trace_the_vector_field():
    """A custom_jvp rule has no jet rule: "auto" must fall back to nested JVPs."""

    @jax.custom_jvp
    def scaled(y):
        return 2.0 * y

    @scaled.defjvp
    def _(primals, tangents):
        return scaled(primals[0]), 2.0 * tangents[0]

    f = lambda t, y, args: -scaled(y)  # noqa: E731  # y(t) = exp(-2t)
    with pytest.raises(Exception):
        pnx.ode.taylor_coefficients(f, 0.0, jnp.ones(1), None, 3, method="jet")
    coeffs = pnx.ode.taylor_coefficients(f, 0.0, jnp.ones(1), None, 3)
    np.testing.assert_allclose(coeffs[:, 0], [(-2.0) ** k for k in range(4)], rtol=1e-12)
    sol = pnx.ode.solve(f, jnp.ones(1), t0=0.0, t1=1.0, solver=pnx.ode.EK0(num_derivatives=3))
    np.testing.assert_allclose(sol.mean[-1, 0], math.exp(-2.0), rtol=1e-5)


def test_unknown_method():
    with pytest.raises(ValueError, match="method must be"):
        pnx.ode.taylor_coefficients(lambda t, y, a: y, 0.0, jnp.ones(1), None, 2, method="ad")
