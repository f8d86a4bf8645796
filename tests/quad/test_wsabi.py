"""WSABI-L: the linearised square-root warp, against numerical integration of its own formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from probnum_jax import quad
from probnum_jax.quad._wsabi import pair_integrals, triple_integrals

pair_integrals, triple_integrals = jax.jit(pair_integrals), jax.jit(triple_integrals)


def _k(a, b, ls=0.3, scale=1.2):
    return scale**2 * np.exp(-0.5 * ((a - b) / ls) ** 2)


def test_pair_and_triple_integrals_match_scipy():
    x = np.array([0.1, 0.7, 0.95])
    kernel, measure = quad.ExpQuad(jnp.array([0.3]), 1.2), quad.LebesgueMeasure(0.0, 1.0)
    pi = np.asarray(pair_integrals(kernel, measure, jnp.asarray(x)[:, None]))
    t = np.asarray(triple_integrals(kernel, measure, jnp.asarray(x)[:, None]))
    for i in (0, 2):
        for j in (1, 2):
            a, b = x[i], x[j]
            ref = integrate.quad(lambda y: _k(a, y) * _k(y, b), 0, 1, epsabs=1e-14)[0]
            assert pi[i, j] == pytest.approx(ref, rel=1e-10)
            ref = integrate.dblquad(lambda y2, y1: _k(a, y1) * _k(y1, y2) * _k(y2, b), 0, 1, 0, 1, epsabs=1e-13)[0]
            assert t[i, j] == pytest.approx(ref, rel=1e-9)


def test_triple_integrals_gaussian_measure_match_monte_carlo():
    rng = np.random.default_rng(0)
    cov = np.array([[0.5, 0.2], [0.2, 0.3]])
    measure = quad.GaussianMeasure(np.array([0.2, -0.1]), cov)
    ls = np.array([0.7, 1.1])
    kernel = quad.ExpQuad(ls, 1.5)
    x = np.array([[0.3, 0.4], [-0.5, 0.1]])
    y1 = rng.multivariate_normal([0.2, -0.1], cov, size=400_000)
    y2 = rng.multivariate_normal([0.2, -0.1], cov, size=400_000)

    def k(a, b):
        return 2.25 * np.exp(-0.5 * np.sum(((a - b) / ls) ** 2, axis=-1))

    for i in range(2):
        for j in range(2):
            values = k(x[i], y1) * k(y1, y2) * k(y2, x[j])
            mc, se = values.mean(), values.std() / np.sqrt(len(values))
            assert abs(float(triple_integrals(kernel, measure, jnp.asarray(x))[i, j]) - mc) < 5 * se


def test_wsabi_matches_numerical_integration_of_the_linearised_model():
    nodes = jnp.array([[0.05], [0.3], [0.5], [0.62], [0.9]])
    f = lambda x: np.exp(-8 * (x - 0.45) ** 2) + 0.05
    fvals = jnp.asarray(f(np.asarray(nodes[:, 0])))
    kernel, measure = quad.ExpQuad(0.2, 1.0), quad.LebesgueMeasure(0.0, 1.0)
    res = quad.wsabi_from_data(nodes, fvals, measure=measure, kernel=kernel)
    # Rebuild the linearised model in NumPy and integrate it numerically.
    xn, alpha = np.asarray(nodes[:, 0]), 0.8 * float(fvals.min())
    g = np.sqrt(2 * (np.asarray(fvals) - alpha))
    gram = _k(xn[:, None], xn[None], 0.2, 1.0) + 1e-12 * np.eye(5)
    w = np.linalg.solve(gram, g)
    m_g = lambda x: _k(x, xn, 0.2, 1.0) @ w
    mean = alpha + 0.5 * integrate.quad(lambda x: m_g(x) ** 2, 0, 1, epsabs=1e-13)[0]

    def cov_g(x, y):
        kx, ky = _k(x, xn, 0.2, 1.0), _k(y, xn, 0.2, 1.0)
        return _k(x, y, 0.2, 1.0) - kx @ np.linalg.solve(gram, ky)

    var = integrate.dblquad(lambda y, x: m_g(x) * cov_g(x, y) * m_g(y), 0, 1, 0, 1, epsabs=1e-12)[0]
    assert float(res.mean) == pytest.approx(mean, rel=1e-9)
    assert float(res.var) == pytest.approx(var, rel=1e-4)
    exact = integrate.quad(f, 0, 1)[0]
    assert abs(float(res.mean) - exact) < 3 * float(res.std)


def test_wsabi_with_fitted_kernel_is_accurate_and_calibrated():
    measure = quad.GaussianMeasure(jnp.zeros(2), jnp.array([[1.0, 0.3], [0.3, 0.5]]))
    f = jax.vmap(lambda x: jnp.exp(-jnp.sum((x - 0.5) ** 2) / 0.2))
    nodes = measure.sample(jax.random.key(0), 40)
    fvals = f(nodes)
    alpha = 0.8 * jnp.min(fvals)
    kernel = quad.fit_kernel(nodes, jnp.sqrt(2 * (fvals - alpha)), kernel=quad.ExpQuad(jnp.ones(2)))
    res = quad.wsabi_from_data(nodes, fvals, measure=measure, kernel=kernel)
    # Exact: exp(-0.5 m^T (Sigma + 0.1 I)^-1 m) / sqrt(det(I + Sigma / 0.1)), a Gaussian integral.
    cov = np.array([[1.0, 0.3], [0.3, 0.5]])
    m = np.full(2, 0.5)
    exact = np.exp(-0.5 * m @ np.linalg.solve(cov + 0.1 * np.eye(2), m)) / np.sqrt(np.linalg.det(np.eye(2) + cov / 0.1))
    assert abs(float(res.mean) - exact) < 0.05 * exact
    assert abs(float(res.mean) - exact) < 3 * float(res.std)
