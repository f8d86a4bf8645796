"""Bad input: clear errors at trace time or eagerly, and ``result`` codes under jit."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probnum_jax import quad

BOX = quad.LebesgueMeasure(0.0, 1.0)
NODES = jnp.linspace(0.1, 0.9, 5)[:, None]
FVALS = jnp.sin(NODES[:, 0])


@pytest.mark.parametrize("ls, scale", [(0.0, 1.0), (-0.5, 1.0), (jnp.array([0.3, -1.0]), 1.0), (1.0, 0.0), (1.0, -2.0), (jnp.nan, 1.0)])
def test_non_positive_kernel_parameters(ls, scale):
    with pytest.raises(ValueError, match="lengthscales|output_scale"):
        quad.ExpQuad(ls, scale)
    with pytest.raises(ValueError, match="lengthscales|output_scale"):
        quad.Matern(1.5, ls, scale)


def test_bad_kernel_configuration():
    with pytest.raises(ValueError, match="nu must be one of"):
        quad.Matern(2.0, 1.0)
    with pytest.raises(ValueError, match="lengthscales must be a scalar or a 1-D array"):
        quad.ExpQuad(jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="kernel.lengthscales has shape"):
        quad.bayesquad_from_data(NODES, FVALS, measure=BOX, kernel=quad.ExpQuad(jnp.ones(3)))


def test_bad_measures():
    with pytest.raises(ValueError, match="lower must be < upper"):
        quad.LebesgueMeasure(1.0, 0.0)
    with pytest.raises(ValueError, match="lower must be < upper"):
        quad.LebesgueMeasure([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="same shape"):
        quad.LebesgueMeasure([0.0, 0.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        quad.LebesgueMeasure(0.0, jnp.inf)
    with pytest.raises(ValueError, match="symmetric positive definite"):
        quad.GaussianMeasure(0.0, -1.0)
    with pytest.raises(ValueError, match="symmetric positive definite"):
        quad.GaussianMeasure(jnp.zeros(2), jnp.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="symmetric positive definite"):
        quad.GaussianMeasure(jnp.zeros(2), jnp.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="cov must be"):
        quad.GaussianMeasure(jnp.zeros(2), jnp.eye(3))


def test_shape_mismatches():
    kernel = quad.ExpQuad(0.3)
    with pytest.raises(ValueError, match="nodes must be a 2-D array"):
        quad.bayesquad_from_data(NODES[:, 0], FVALS, measure=BOX, kernel=kernel)
    with pytest.raises(ValueError, match="measure has dimension 1"):
        quad.bayesquad_from_data(jnp.zeros((5, 2)), FVALS, measure=BOX, kernel=kernel)
    with pytest.raises(ValueError, match=r"fvals must have shape \[n\] or \[n, m\] with n=5"):
        quad.bayesquad_from_data(NODES, FVALS[:4], measure=BOX, kernel=kernel)
    with pytest.raises(ValueError, match="fvals must have shape"):
        quad.bayesquad_from_data(NODES, jnp.zeros((5, 2, 2)), measure=BOX, kernel=kernel)
    with pytest.raises(ValueError, match="fvals must have shape"):
        quad.fit_kernel(NODES, FVALS[:3], kernel=kernel)


def test_concrete_bad_values_raise_value_errors():
    kernel = quad.ExpQuad(0.3)
    with pytest.raises(ValueError, match="fvals contain NaN"):
        quad.bayesquad_from_data(NODES, FVALS.at[2].set(jnp.nan), measure=BOX, kernel=kernel)
    with pytest.raises(ValueError, match="1 node\\(s\\) lie outside"):
        quad.bayesquad_from_data(NODES.at[0, 0].set(1.5), FVALS, measure=BOX, kernel=kernel)
    with pytest.raises(ValueError, match="nodes contain NaN"):
        quad.bayesquad_from_data(NODES.at[0, 0].set(jnp.nan), FVALS, measure=BOX, kernel=kernel)
    with pytest.raises(ValueError, match="non-negative"):
        quad.wsabi_from_data(NODES, FVALS - 0.5, measure=BOX, kernel=kernel)


def test_traced_bad_values_are_reported_in_result_and_raise_with_throw():
    """Under jit the values are unknown at trace time: one vmapped program checks all cases."""

    @jax.jit
    @jax.vmap
    def result_code(nodes, fvals, ls, variance):
        measure = quad.GaussianMeasure(0.0, variance)
        res = quad.bayesquad_from_data(nodes, fvals, measure=measure, kernel=quad.ExpQuad(ls), throw=False)
        box = quad.bayesquad_from_data(nodes, fvals, measure=BOX, kernel=quad.ExpQuad(ls), throw=False)
        return res.result._value, box.result._value

    cases = [
        (NODES, FVALS, 0.3, 1.0),  # valid
        (NODES, FVALS.at[1].set(jnp.nan), 0.3, 1.0),
        (NODES.at[0, 0].set(2.0), FVALS, 0.3, 1.0),  # outside the box, fine for the Gaussian
        (NODES, FVALS, -0.3, 1.0),
        (NODES, FVALS, 0.3, -1.0),  # covariance not positive definite
    ]
    stacked = [jnp.stack([jnp.asarray(c[i]) for c in cases]) for i in range(4)]
    gaussian, box = result_code(*stacked)
    R = quad.RESULTS
    expected = [R.successful, R.nonfinite_fvals, R.successful, R.invalid_kernel_parameters, R.invalid_measure]
    assert gaussian.tolist() == [r._value for r in expected]
    expected = [R.successful, R.nonfinite_fvals, R.nodes_outside_domain, R.invalid_kernel_parameters, R.successful]
    assert box.tolist() == [r._value for r in expected]

    bq = jax.jit(functools.partial(quad.bayesquad_from_data, measure=BOX, kernel=quad.ExpQuad(0.3)))
    with pytest.raises(Exception, match="NaN or inf"):
        jax.block_until_ready(bq(NODES, FVALS.at[1].set(jnp.nan)))


def test_integrand_errors_at_trace_time():
    key = jax.random.key(0)
    run = functools.partial(quad.bayesquad, measure=BOX, num_evals=4, policy="sobol", key=key)
    with pytest.raises(ValueError, match="must return a scalar or a 1-D array"):
        run(lambda x: jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="must return a scalar"):
        quad.bayesquad(lambda x: jnp.ones(2), measure=BOX, num_evals=4, policy="us", model="wsabi", key=key)
    with pytest.raises(TypeError, match="Calling the integrand"):
        run(lambda x, y: x)
    with pytest.raises(TypeError, match="floating-point"):
        run(lambda x: jnp.sum(x > 0.5))


def test_bad_loop_options():
    make = functools.partial(quad.BayesQuadLoop, measure=BOX)
    with pytest.raises(ValueError, match="policy must be one of"):
        make(num_evals=8, policy="random")
    with pytest.raises(ValueError, match="model must be one of"):
        make(num_evals=8, policy="us", model="warped")
    with pytest.raises(ValueError, match="num_evals must be an int >= 1"):
        make(num_evals=0, policy="us")
    with pytest.raises(ValueError, match="num_initial"):
        make(num_evals=8, policy="ivr", num_initial=9)
    with pytest.raises(ValueError, match="num_restarts"):
        make(num_evals=8, policy="ivr", num_restarts=10, num_candidates=5)
    with pytest.raises(ValueError, match="initial_design"):
        make(num_evals=8, policy="ivr", initial_design="grid")
    with pytest.raises(ValueError, match="not available for model='wsabi'"):
        make(num_evals=8, policy="ivr", model="wsabi")
    with pytest.raises(TypeError, match="WSABI-L needs the ExpQuad kernel"):
        make(num_evals=8, policy="us", model="wsabi", kernel=quad.Matern(1.5, 0.3))
    with pytest.raises(TypeError, match="No closed-form kernel mean"):
        quad.BayesQuadLoop(measure=quad.GaussianMeasure(0.0, 1.0), kernel=quad.Matern(1.5), num_evals=8, policy="us")
    with pytest.raises(ValueError, match="lengthscale_bounds"):
        make(num_evals=8, policy="us", lengthscale_bounds=(1.0, 0.1))
    with pytest.raises(ValueError, match="num_steps"):
        quad.fit_kernel(NODES, FVALS, kernel=quad.ExpQuad(0.3), num_steps=-1)


def test_bad_genz_parameters():
    from probnum_jax.problems._genz import genz_oscillatory, genz_random

    with pytest.raises(ValueError, match="a must be > 0"):
        genz_oscillatory(a=jnp.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"u must lie in \[0, 1\]"):
        genz_oscillatory(a=jnp.array([1.0]), u=jnp.array([1.5]))
    with pytest.raises(ValueError, match="u must have the shape"):
        genz_oscillatory(a=jnp.array([1.0]), u=jnp.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="family must be one of"):
        genz_random("peaky", key=jax.random.key(0), dim=2)
    with pytest.raises(ValueError, match="dim must be"):
        genz_random("oscillatory", key=jax.random.key(0), dim=0)
    with pytest.raises(TypeError):
        genz_oscillatory(jnp.array([1.0]))  # keyword-only
