"""Bayesian quadrature from data: independent references, convergence, transforms, calibration."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from probnum_jax import quad
from probnum_jax.problems._genz import GENZ_FAMILIES, genz_random
from probnum_jax.quad._designs import sobol_points
from probnum_jax.quad._gaussian_process import integral_belief

bq = jax.jit(functools.partial(quad.bayesquad_from_data, throw=False))


def _numpy_rbf(x, y, ls, scale):
    return scale**2 * np.exp(-0.5 * np.sum(((x[:, None, :] - y[None, :, :]) / ls) ** 2, axis=-1))


def test_matches_independent_numpy_reference_on_a_box():
    rng = np.random.default_rng(0)
    nodes = rng.uniform(size=(12, 2))
    fvals = np.sin(3 * nodes[:, 0]) * np.cos(nodes[:, 1])
    ls, scale = np.array([0.4, 0.7]), 1.5
    res = bq(nodes, fvals, measure=quad.LebesgueMeasure([0.0, 0.0], [1.0, 1.0]), kernel=quad.ExpQuad(ls, scale))
    # Reference: kernel means by a 60x60 Gauss-Legendre rule, GP algebra by numpy.solve.
    t, w = np.polynomial.legendre.leggauss(60)
    t, w = 0.5 * (t + 1), 0.5 * w
    grid = np.stack(np.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
    wgrid = np.outer(w, w).ravel()
    gram = _numpy_rbf(nodes, nodes, ls, scale) + 1e-12 * scale**2 * np.eye(12)
    z = _numpy_rbf(nodes, grid, ls, scale) @ wgrid
    weights = np.linalg.solve(gram, z)
    prior = wgrid @ _numpy_rbf(grid, grid, ls, scale) @ wgrid
    assert float(res.mean) == pytest.approx(weights @ fvals, rel=1e-8)
    assert float(res.std) == pytest.approx(np.sqrt(prior - z @ weights), rel=1e-5)
    np.testing.assert_allclose(res.weights, weights, rtol=1e-6, atol=1e-9)
    assert res.result == quad.RESULTS.successful


def test_matches_independent_reference_for_gaussian_measure():
    nodes = np.linspace(-2.0, 2.0, 9)[:, None]
    fvals = np.exp(np.sin(nodes[:, 0]))
    res = bq(nodes, fvals, measure=quad.GaussianMeasure(0.2, 0.5), kernel=quad.ExpQuad(0.8, 2.0))
    t, w = np.polynomial.hermite_e.hermegauss(80)
    y, w = 0.2 + np.sqrt(0.5) * t, w / np.sqrt(2 * np.pi)
    gram = _numpy_rbf(nodes, nodes, 0.8, 2.0) + 4e-12 * np.eye(9)
    z = _numpy_rbf(nodes, y[:, None], 0.8, 2.0) @ w
    prior = w @ _numpy_rbf(y[:, None], y[:, None], 0.8, 2.0) @ w
    assert float(res.mean) == pytest.approx(z @ np.linalg.solve(gram, fvals), rel=1e-9)
    assert float(res.var) == pytest.approx(prior - z @ np.linalg.solve(gram, z), rel=1e-5)


@pytest.mark.parametrize("kind", ["expquad", pytest.param(2.5, marks=pytest.mark.slow)])
def test_error_decreases_with_the_number_of_nodes(kind):
    measure = quad.LebesgueMeasure([0.0, 0.0], [1.0, 1.0])
    kernel = quad.ExpQuad(jnp.array([0.3, 0.3])) if kind == "expquad" else quad.Matern(2.5, jnp.array([0.3, 0.3]))
    exact = integrate.quad(lambda t: np.exp(np.sin(3 * t)), 0, 1, epsabs=1e-14)[0] * (1 - np.cos(2.0)) / 2
    # The first n of 128 Sobol nodes, n = 8, 32, 128: one compiled program, masking the rest.
    x = sobol_points(128, 2, key=jax.random.key(3))
    y = jnp.exp(jnp.sin(3 * x[:, 0])) * jnp.sin(2 * x[:, 1])
    masks = jnp.arange(128)[None, :] < jnp.array([8, 32, 128])[:, None]
    belief = jax.jit(jax.vmap(lambda m: integral_belief(kernel, measure, x, y, m)))(masks)
    errors = np.abs(np.asarray(belief.mean) - exact)
    stds = np.sqrt(np.asarray(belief.var))
    assert errors[0] > errors[1] > errors[2]
    assert stds[0] > stds[1] > stds[2]
    assert errors[2] < (1e-7 if kind == "expquad" else 1e-5)
    assert errors[2] < 1e-3 * errors[0]
    # The masked computation is exactly bayesquad_from_data on the first n nodes.
    res = bq(x[:8], y[:8], measure=measure, kernel=kernel)
    assert float(res.mean) == pytest.approx(float(belief.mean[0]), rel=1e-10)


def test_multiple_integrands_share_nodes():
    x = sobol_points(16, 1, key=jax.random.key(0))
    fvals = jnp.stack([jnp.sin(3 * x[:, 0]), x[:, 0] ** 2, jnp.exp(x[:, 0])], axis=1)
    measure, kernel = quad.LebesgueMeasure(0.0, 1.0), quad.ExpQuad(0.3)

    @jax.jit
    def joint_and_mapped(fvals):
        joint = quad.bayesquad_from_data(x, fvals, measure=measure, kernel=kernel)
        mapped = jax.vmap(lambda y: quad.bayesquad_from_data(x, y, measure=measure, kernel=kernel), in_axes=1)(fvals)
        return joint, mapped

    joint, mapped = joint_and_mapped(fvals)
    np.testing.assert_allclose(joint.mean, mapped.mean, rtol=1e-10)
    np.testing.assert_allclose(joint.std, mapped.std, rtol=1e-10)
    np.testing.assert_allclose(joint.mean, [(1 - np.cos(3)) / 3, 1 / 3, np.e - 1], atol=1e-5)


def test_grad_and_vmap_with_respect_to_kernel_parameters_and_nodes():
    measure = quad.LebesgueMeasure(0.0, 1.0)

    def mean(ls, nodes):
        res = quad.bayesquad_from_data(nodes, jnp.cos(nodes[:, 0]), measure=measure, kernel=quad.ExpQuad(ls))
        return res.mean

    @jax.jit
    def grads_and_differences(ls, nodes):
        h = 1e-6
        bump = jnp.zeros_like(nodes).at[2, 0].set(h)
        fd_ls = (mean(ls + h, nodes) - mean(ls - h, nodes)) / (2 * h)
        fd_node = (mean(ls, nodes + bump) - mean(ls, nodes - bump)) / (2 * h)
        return jax.grad(mean, argnums=(0, 1))(ls, nodes), fd_ls, fd_node

    nodes = jnp.linspace(0.05, 0.95, 6)[:, None]
    (g_ls, g_nodes), fd_ls, fd_node = grads_and_differences(jnp.array(0.3), nodes)
    assert float(g_ls) == pytest.approx(float(fd_ls), rel=1e-4)
    assert float(g_nodes[2, 0]) == pytest.approx(float(fd_node), rel=1e-4)
    # vmap over kernels (a batch of lengthscales) agrees with separate calls.
    lengthscales = jnp.array([0.2, 0.3, 0.5])
    batched, single = jax.jit(lambda ls: (jax.vmap(mean, in_axes=(0, None))(ls, nodes), [mean(l, nodes) for l in ls]))(
        lengthscales
    )
    np.testing.assert_allclose(batched, single, rtol=1e-10)


def test_duplicate_nodes_are_handled_by_growing_the_jitter():
    x = jnp.array([[0.1], [0.5], [0.5], [0.5 + 1e-9], [0.9]])
    measure, kernel = quad.LebesgueMeasure(0.0, 1.0), quad.ExpQuad(0.5)
    res = bq(x, jnp.sin(x[:, 0]), measure=measure, kernel=kernel, jitter=1e-18)
    assert res.result == quad.RESULTS.successful
    assert float(res.jitter) > 1e-18  # the first jitter failed and was grown
    assert np.isfinite(float(res.mean)) and np.isfinite(float(res.std))
    assert float(res.mean) == pytest.approx(1 - np.cos(1.0), abs=1e-3)


def test_posterior_over_the_integrand_matches_gp_regression():
    x = jnp.linspace(0.0, 1.0, 7)[:, None]
    y = jnp.sin(4 * x[:, 0])
    res = bq(x, y, measure=quad.LebesgueMeasure(0.0, 1.0), kernel=quad.ExpQuad(0.25, 1.3))
    test = np.array([[0.0], [0.33], [0.71]])
    mean, std = res.predict(jnp.asarray(test))
    k_xx = _numpy_rbf(np.asarray(x), np.asarray(x), 0.25, 1.3) + 1e-12 * 1.69 * np.eye(7)
    k_tx = _numpy_rbf(test, np.asarray(x), 0.25, 1.3)
    np.testing.assert_allclose(mean, k_tx @ np.linalg.solve(k_xx, np.asarray(y)), rtol=1e-7, atol=1e-9)
    ref_var = 1.69 - np.sum(k_tx * np.linalg.solve(k_xx, k_tx.T).T, axis=1)
    np.testing.assert_allclose(std**2, np.maximum(ref_var, 0), atol=1e-8)
    assert float(std[0]) < 1e-4  # the first test point is a node


def test_float32_variant():
    x = jnp.linspace(0.0, 1.0, 12, dtype=jnp.float32)[:, None]
    res = jax.jit(quad.bayesquad_from_data)(
        x, jnp.exp(x[:, 0]), measure=quad.LebesgueMeasure(jnp.float32(0), jnp.float32(1)), kernel=quad.ExpQuad(jnp.float32(0.4))
    )
    assert res.mean.dtype == jnp.float32
    assert abs(float(res.mean) - (np.e - 1)) < 1e-4
    assert 0 < float(res.std) < 1e-2


@functools.partial(jax.jit, static_argnames=("families", "d", "num_instances", "n"))
def _genz_data(families, d, num_instances, n):
    """Random instances of each family with their values on scrambled Sobol nodes."""
    out = {}
    for family in families:
        keys = jax.random.split(jax.random.key(17 * d), num_instances)
        problems = jax.vmap(lambda k: genz_random(family, key=k, dim=d))(keys)
        x = jax.vmap(lambda k: sobol_points(n, d, key=k))(keys)
        y = jax.vmap(lambda p, x: jax.vmap(p.integrand)(x))(problems, x)
        out[family] = (x, y, jax.vmap(lambda p: p.solution)(problems))
    return out


def _calibration(kernel_type, d, families, num_instances, n=32):
    measure = quad.LebesgueMeasure(jnp.zeros(d), jnp.ones(d))
    start = quad.ExpQuad(0.5 * jnp.ones(d)) if kernel_type == "expquad" else quad.Matern(2.5, 0.5 * jnp.ones(d))

    @jax.jit
    @jax.vmap
    def run(x, y):
        kernel = quad.fit_kernel(x, y, kernel=start, num_steps=60, lengthscale_bounds=(0.01, 10.0))
        res = quad.bayesquad_from_data(x, y, measure=measure, kernel=kernel, throw=False)
        return res.mean, res.std

    data = _genz_data(tuple(families), d, num_instances, n)
    shares = {}
    for family, (x, y, solution) in data.items():
        mean, std = run(x, y)
        error = np.abs(np.asarray(mean - solution))
        shares[family] = float(np.mean(error <= 2 * np.asarray(std)))
    return shares


SMOOTH = ("oscillatory", "product_peak", "corner_peak", "gaussian_peak")


def test_calibration_on_random_genz_instances():
    """Share of |error| <= 2 std over random Genz instances (d=2, 32 Sobol nodes, ML-II)."""
    matern = _calibration("matern", 2, GENZ_FAMILIES, 12)
    print("calibration share, Matern-5/2, all families:", matern)
    assert np.mean(list(matern.values())) >= 0.7


@pytest.mark.slow
def test_calibration_of_expquad_on_smooth_genz_families():
    rbf = _calibration("expquad", 2, GENZ_FAMILIES, 12)
    print("calibration share, ExpQuad, all families:", rbf)
    assert np.mean([rbf[f] for f in SMOOTH]) >= 0.7


@pytest.mark.slow
@pytest.mark.parametrize("kernel_type", ["expquad", "matern"])
def test_calibration_study_d1_to_d3(kernel_type):
    shares = {d: _calibration(kernel_type, d, GENZ_FAMILIES, 40) for d in (1, 2, 3)}
    for d, s in shares.items():
        print(kernel_type, d, s)
    overall = np.mean([v for s in shares.values() for v in s.values()])
    print(kernel_type, "overall share", overall)
    assert overall >= 0.7
