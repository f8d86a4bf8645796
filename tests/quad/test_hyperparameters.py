"""Type-II maximum likelihood and the log evidence."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from probnum_jax import quad
from probnum_jax.quad._designs import sobol_points


@pytest.fixture(scope="module")
def data():
    x = sobol_points(20, 2, key=jax.random.key(0))
    y = jnp.sin(5 * x[:, 0]) * jnp.exp(-x[:, 1])
    return x, y


def test_log_evidence_matches_scipy(data):
    x, y = data
    ls, scale = np.array([0.3, 0.9]), 1.7
    value = quad.log_evidence(x, y, kernel=quad.ExpQuad(ls, scale))
    xn = np.asarray(x)
    cov = scale**2 * np.exp(-0.5 * np.sum(((xn[:, None] - xn[None]) / ls) ** 2, -1)) + 1e-12 * scale**2 * np.eye(20)
    assert float(value) == pytest.approx(stats.multivariate_normal(np.zeros(20), cov).logpdf(np.asarray(y)), rel=1e-8)
    # Several outputs sharing a kernel: the log-likelihoods add up.
    stacked = quad.log_evidence(x, jnp.stack([y, 2 * y], axis=1), kernel=quad.ExpQuad(ls, scale))
    twice = quad.log_evidence(x, 2 * y, kernel=quad.ExpQuad(ls, scale))
    assert float(stacked) == pytest.approx(float(value) + float(twice), rel=1e-12)


@pytest.mark.parametrize("kind", ["expquad", pytest.param("matern", marks=pytest.mark.slow)])
def test_ml2_raises_the_log_evidence(data, kind):
    x, y = data
    make = quad.ExpQuad if kind == "expquad" else lambda *a: quad.Matern(2.5, *a)
    for kernel in (make(0.02 * jnp.ones(2), 0.3), make(0.5 * jnp.ones(2), 3.0), make(5.0 * jnp.ones(2), 1.0)):
        fitted = quad.fit_kernel(x, y, kernel=kernel, num_steps=100)
        before = float(quad.log_evidence(x, y, kernel=kernel))
        after = float(quad.log_evidence(x, y, kernel=fitted))
        assert after > before + 1.0
        assert fitted.lengthscales.shape == (2,)


@pytest.mark.slow
def test_fitted_parameters_are_a_stationary_point(data):
    x, y = data
    fitted = quad.fit_kernel(x, y, kernel=quad.ExpQuad(jnp.ones(2)), num_steps=300, optimizer=optax.adam(0.02))

    def evidence(log_params):
        return quad.log_evidence(x, y, kernel=quad.ExpQuad(jnp.exp(log_params[:2]), jnp.exp(log_params[2])))

    log_params = jnp.log(jnp.append(fitted.lengthscales, fitted.output_scale))
    grad = jax.jit(jax.grad(evidence))(log_params)
    # The output scale is optimal in closed form; the lengthscales by gradient ascent.
    assert abs(float(grad[2])) < 1e-6
    assert float(jnp.max(jnp.abs(grad[:2]))) < 0.05
    # No nearby point is better.
    for direction in np.eye(3):
        for sign in (-1, 1):
            assert float(evidence(log_params + 0.05 * sign * direction)) < float(evidence(log_params))


def test_log_evidence_gradient_matches_finite_differences(data):
    x, y = data

    def evidence(ls):
        return quad.log_evidence(x, y, kernel=quad.Matern(1.5, ls, 1.1))

    ls = jnp.array([0.4, 0.6])
    grad = jax.grad(evidence)(ls)
    h = 1e-6
    for i in range(2):
        e = jnp.zeros(2).at[i].set(h)
        fd = (evidence(ls + e) - evidence(ls - e)) / (2 * h)
        assert float(grad[i]) == pytest.approx(float(fd), rel=1e-5)


def test_isotropic_lengthscale_stays_scalar(data):
    x, y = data
    fitted = quad.fit_kernel(x, y, kernel=quad.ExpQuad(1.0), num_steps=50)
    assert fitted.lengthscales.shape == ()
    bounded = quad.fit_kernel(x, y, kernel=quad.ExpQuad(1.0), num_steps=50, lengthscale_bounds=(2.0, 3.0))
    assert 2.0 - 1e-12 <= float(bounded.lengthscales) <= 3.0 + 1e-12
