"""Kernels, measures and closed-form kernel means against numerical integration (scipy, MC).

JAX functions are jit-compiled once per kernel type and vmapped over parameters to
keep compilation (which dominates the runtime) small.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from probnum_jax import quad

kernel_mean = jax.jit(quad.kernel_mean)
initial_error = jax.jit(quad.initial_error)


def _phi(kind, ls, r):
    """Independent NumPy evaluation of a unit-scale 1-D kernel at distance r."""
    r = np.abs(r) / ls
    if kind == "expquad":
        return np.exp(-0.5 * r**2)
    c = np.sqrt(2 * kind) * r
    if kind == 0.5:
        return np.exp(-c)
    if kind == 1.5:
        return (1 + c) * np.exp(-c)
    return (1 + c + c**2 / 3) * np.exp(-c)


def _make(kind, ls, scale=1.0):
    return quad.ExpQuad(ls, scale) if kind == "expquad" else quad.Matern(kind, ls, scale)


def test_kernel_values_match_numpy():
    x = jnp.array([[0.1, -0.4], [1.0, 0.3], [0.5, 0.5]])
    ls = np.array([0.7, 1.9])
    for kind in ("expquad", 0.5, 1.5, 2.5):
        kernel = _make(kind, ls, 1.7)
        gram = np.asarray(jax.jit(lambda k, x: k.matrix(x, x))(kernel, x))
        diff = np.asarray(x)[:, None, :] - np.asarray(x)[None, :, :]
        if kind == "expquad":
            ref = np.exp(-0.5 * np.sum((diff / ls) ** 2, axis=-1))
        else:
            ref = _phi(kind, ls[0], diff[..., 0]) * _phi(kind, ls[1], diff[..., 1])
        np.testing.assert_allclose(gram, 1.7**2 * ref, rtol=1e-12)


@pytest.mark.parametrize("kind", ["expquad", 0.5, 1.5, 2.5])
def test_kernel_mean_and_initial_error_1d_match_scipy(kind):
    """Short, medium and very long lengthscales (the latter use the Taylor-series branch)."""
    lower, upper = -0.3, 1.2
    measure = quad.LebesgueMeasure(lower, upper)
    lengthscales = np.array([0.02, 0.4, 3.0, 40.0])
    kernels = jax.tree.map(lambda *xs: jnp.stack(xs), *[_make(kind, l, 1.3) for l in lengthscales])
    points = np.array([lower, 0.1, 0.77, upper, -1.0, 1.6])  # boundary and outside points too
    z = np.asarray(jax.vmap(kernel_mean, (0, None, None))(kernels, measure, jnp.asarray(points)[:, None]))
    e = np.asarray(jax.vmap(initial_error, (0, None))(kernels, measure))
    width = upper - lower
    for i, ls in enumerate(lengthscales):
        for x, zx in zip(points, z[i]):
            brk = [x] if lower < x < upper else None
            ref = integrate.quad(lambda y: _phi(kind, ls, x - y), lower, upper, points=brk, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
            assert zx == pytest.approx(1.69 * ref, rel=1e-10, abs=1e-14)
        # int int k = 2 int_0^D (D - r) k(r) dr
        ref = 2 * integrate.quad(lambda r: (width - r) * _phi(kind, ls, r), 0, width, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
        assert e[i] == pytest.approx(1.69 * ref, rel=1e-10)


@pytest.mark.parametrize("kind", ["expquad", 1.5])
def test_kernel_mean_2d_box_matches_nquad(kind):
    ls = (0.3, 0.8)
    kernel = _make(kind, jnp.asarray(ls), 1.4)
    measure = quad.LebesgueMeasure([0.0, -1.0], [1.0, 0.5], normalized=True)
    x = np.array([0.2, 0.1])

    def integrand(y1, y2):
        return 1.4**2 * _phi(kind, ls[0], x[0] - y1) * _phi(kind, ls[1], x[1] - y2)

    opts = [{"points": [0.2], "epsabs": 1e-11}, {"points": [0.1], "epsabs": 1e-11}]
    ref = integrate.nquad(integrand, [[0.0, 1.0], [-1.0, 0.5]], opts=opts)[0] / 1.5
    assert float(kernel_mean(kernel, measure, jnp.asarray(x)[None])[0]) == pytest.approx(ref, rel=1e-8)
    per_dim = [
        2 * integrate.quad(lambda r: (w - r) * _phi(kind, l, r), 0, w, epsabs=1e-15)[0]
        for w, l in zip((1.0, 1.5), ls)
    ]
    ref = 1.4**2 * np.prod(per_dim) / 1.5**2
    assert float(initial_error(kernel, measure)) == pytest.approx(ref, rel=1e-10)


def test_kernel_mean_gaussian_measure_1d_matches_gauss_hermite():
    kernel = quad.ExpQuad(0.6, 1.2)
    measure = quad.GaussianMeasure(0.3, 0.8**2)
    # Probabilists' Gauss-Hermite rule: int g(y) N(y; 0.3, 0.8^2) dy = sum w g(0.3 + 0.8 t) / sqrt(2 pi).
    t, w = np.polynomial.hermite_e.hermegauss(80)
    y, w = 0.3 + 0.8 * t, w / np.sqrt(2 * np.pi)
    x = np.array([-1.0, 0.3, 2.0])
    gram = 1.44 * np.exp(-0.5 * ((x[:, None] - y[None, :]) / 0.6) ** 2)
    np.testing.assert_allclose(kernel_mean(kernel, measure, jnp.asarray(x)[:, None]), gram @ w, rtol=1e-12)
    gram_yy = 1.44 * np.exp(-0.5 * ((y[:, None] - y[None, :]) / 0.6) ** 2)
    assert float(initial_error(kernel, measure)) == pytest.approx(w @ gram_yy @ w, rel=1e-12)


def test_kernel_mean_gaussian_measure_full_covariance_matches_monte_carlo():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    cov = a @ a.T / 3 + 0.2 * np.eye(3)
    mean = np.array([0.1, -0.3, 0.5])
    measure = quad.GaussianMeasure(mean, cov)
    ls, scale = np.array([0.7, 1.1, 0.9]), 1.3
    kernel = quad.ExpQuad(ls, scale)
    x = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5]])
    samples = rng.multivariate_normal(mean, cov, size=200_000)
    values = scale**2 * np.exp(-0.5 * np.sum(((x[:, None] - samples[None]) / ls) ** 2, axis=-1))
    mc, se = values.mean(1), values.std(1) / np.sqrt(samples.shape[0])
    np.testing.assert_array_less(np.abs(np.asarray(kernel_mean(kernel, measure, jnp.asarray(x))) - mc), 5 * se)
    other = rng.multivariate_normal(mean, cov, size=200_000)
    pair = scale**2 * np.exp(-0.5 * np.sum(((samples - other) / ls) ** 2, axis=-1))
    mc, se = pair.mean(), pair.std() / np.sqrt(pair.shape[0])
    assert abs(float(initial_error(kernel, measure)) - mc) < 5 * se


def test_kernel_mean_high_dimensional_box_matches_monte_carlo():
    d = 5
    measure = quad.LebesgueMeasure(np.zeros(d), np.ones(d))
    u = np.random.default_rng(1).uniform(size=(200_000, d))
    x = np.full((1, d), 0.3)
    for kind in ("expquad", 2.5):
        kernel = _make(kind, 0.5 * np.ones(d))
        values = np.prod(_phi(kind, 0.5, x - u), axis=-1) if kind != "expquad" else np.exp(-2 * np.sum((x - u) ** 2, -1))
        mc, se = values.mean(), values.std() / np.sqrt(u.shape[0])
        assert abs(float(kernel_mean(kernel, measure, jnp.asarray(x))[0]) - mc) < 5 * se


def test_kernel_mean_is_differentiable_at_the_boundary():
    measure = quad.LebesgueMeasure(0.0, 1.0)
    x = jnp.array([0.0, 0.4, 1.0])
    for kind in (0.5, 2.5, "expquad"):
        kernel = _make(kind, 0.3)

        def z(x):
            return quad.kernel_mean(kernel, measure, jnp.reshape(x, (1, 1)))[0]

        @jax.jit
        def grads_and_differences(x):
            fd = (jax.vmap(z)(x + 1e-6) - jax.vmap(z)(x - 1e-6)) / 2e-6
            return jax.vmap(jax.grad(z))(x), fd

        np.testing.assert_allclose(*grads_and_differences(x), rtol=1e-5)


def test_kernel_embeddings_float32():
    measure32 = quad.LebesgueMeasure(jnp.float32(0.0), jnp.float32(1.0))
    x = jnp.linspace(0.0, 1.0, 5, dtype=jnp.float32)[:, None]
    z = kernel_mean(quad.Matern(2.5, jnp.float32(0.4)), measure32, x)
    assert z.dtype == jnp.float32
    z64 = kernel_mean(quad.Matern(2.5, 0.4), quad.LebesgueMeasure(0.0, 1.0), x.astype(jnp.float64))
    np.testing.assert_allclose(np.asarray(z), np.asarray(z64), rtol=1e-5)
    # A lengthscale 50x the box: the closed form would cancel to ~1e-3 in float32.
    long32 = initial_error(quad.ExpQuad(jnp.float32(50.0)), measure32)
    assert long32.dtype == jnp.float32
    assert float(long32) == pytest.approx(1.0 - 1.0 / (12 * 50.0**2), rel=1e-6)


def test_measure_sampling_and_density():
    cov = np.array([[1.0, 0.6], [0.6, 2.0]])
    gaussian = quad.GaussianMeasure(np.array([1.0, -1.0]), cov)
    box = quad.LebesgueMeasure([0.0, 1.0], [2.0, 4.0])
    v = jnp.array([0.3, -2.0])

    @jax.jit
    def evaluate(gaussian, box):
        samples = gaussian.sample(jax.random.key(0), 100_000)
        inside = jnp.all(box.contains(box.sample(jax.random.key(1), 1000)))
        round_trips = (
            box.to_unconstrained(box.from_unconstrained(v)),
            gaussian.to_unconstrained(gaussian.from_unconstrained(v)),
        )
        return samples, gaussian.density(jnp.array([0.3, 0.2])), inside, box.total_mass, round_trips

    samples, density, inside, mass, (trip_box, trip_gauss) = evaluate(gaussian, box)
    np.testing.assert_allclose(np.cov(np.asarray(samples).T), cov, atol=0.05)
    ref = stats.multivariate_normal(np.array([1.0, -1.0]), cov).pdf([0.3, 0.2])
    assert float(density) == pytest.approx(ref, rel=1e-10)
    assert bool(inside) and float(mass) == 6.0
    np.testing.assert_allclose(trip_box, v, rtol=1e-8)
    np.testing.assert_allclose(trip_gauss, v, rtol=1e-12)


def test_unsupported_pair_raises_type_error():
    with pytest.raises(TypeError, match="No closed-form kernel mean"):
        quad.kernel_mean(quad.Matern(1.5, 1.0), quad.GaussianMeasure(0.0, 1.0), jnp.zeros((1, 1)))
    with pytest.raises(TypeError, match="No closed-form kernel mean"):
        quad.initial_error(quad.Matern(0.5, 1.0), quad.GaussianMeasure(0.0, 1.0))
    with pytest.raises(TypeError, match="kernel must be"):
        quad.kernel_mean("rbf", quad.LebesgueMeasure(0.0, 1.0), jnp.zeros((1, 1)))
