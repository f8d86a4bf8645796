"""The Genz families: closed-form integrals against scipy (d = 1, 2) and Monte Carlo (d = 4)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from probnum_jax.problems._genz import GENZ_FAMILIES, genz_random


def _numpy_integrand(family, a, u):
    """A vectorised NumPy version of the integrand, x of shape [..., d]."""
    d = len(a)

    def f(x):
        if family == "oscillatory":
            return np.cos(2 * np.pi * u[0] + x @ a)
        if family == "product_peak":
            return np.prod(1.0 / (a**-2.0 + (x - u) ** 2), axis=-1)
        if family == "corner_peak":
            return (1.0 + x @ a) ** (-(d + 1))
        if family == "gaussian_peak":
            return np.exp(-np.sum(a**2 * (x - u) ** 2, axis=-1))
        if family == "continuous":
            return np.exp(-np.sum(a * np.abs(x - u), axis=-1))
        return np.where(np.all(x[..., :2] <= u[:2], axis=-1), np.exp(x @ a), 0.0)

    return f


@functools.partial(jax.jit, static_argnames="d")
def _instances(key, d):
    """Parameters, exact integrals and integrand values at one point for every family."""
    out = {}
    for family in GENZ_FAMILIES:
        p = genz_random(family, key=key, dim=d)
        out[family] = (p.a, p.u, p.solution, p.integrand(jnp.full(d, 0.37)))
    return out


@pytest.mark.parametrize("d", [1, 2])
def test_closed_form_integrals_match_scipy(d):
    for family, (a, u, solution, value) in _instances(jax.random.key(d), d).items():
        a, u = np.asarray(a), np.asarray(u)
        f = _numpy_integrand(family, a, u)
        opts = [{"points": [float(u[i])], "epsabs": 1e-11, "epsrel": 1e-11, "limit": 100} for i in range(d)]
        ref = integrate.nquad(lambda *x: f(np.array(x)), [[0, 1]] * d, opts=opts)[0]
        assert float(solution) == pytest.approx(ref, rel=1e-8, abs=1e-12), family
        # The JAX integrand agrees with the NumPy one.
        assert float(value) == pytest.approx(f(np.full(d, 0.37)), rel=1e-12), family


def test_closed_form_integrals_match_monte_carlo_in_4d():
    x = np.random.default_rng(0).uniform(size=(400_000, 4))
    for family, (a, u, solution, _) in _instances(jax.random.key(9), 4).items():
        values = _numpy_integrand(family, np.asarray(a), np.asarray(u))(x)
        se = values.std() / np.sqrt(len(values))
        assert abs(float(solution) - values.mean()) < 5 * se, family


def test_random_instances_follow_the_difficulty_and_vmap():
    keys = jax.random.split(jax.random.key(0), 5)

    @jax.jit
    def batch(keys):
        problems = jax.vmap(lambda k: genz_random("gaussian_peak", key=k, dim=3, difficulty=4.0))(keys)
        return problems, jax.vmap(lambda p: p.solution)(problems)

    problems, solutions = batch(keys)
    np.testing.assert_allclose(problems.a.sum(axis=1), 4.0, rtol=1e-12)
    assert solutions.shape == (5,)
    assert np.all((np.asarray(problems.u) >= 0) & (np.asarray(problems.u) <= 1))
