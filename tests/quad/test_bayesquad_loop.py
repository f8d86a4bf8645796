"""The adaptive loop: policies, init/step against the compiled driver, multi-output, WSABI."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from probnum_jax import quad
from probnum_jax.problems._genz import genz_gaussian_peak

# Small acquisition settings keep the compiled programs and the runtime small.
FAST = dict(num_candidates=64, num_restarts=4, acquisition_steps=15, refit_steps=10, fit_steps=60)


def test_adaptive_ivr_beats_random_nodes_on_a_peaked_integrand():
    problem = genz_gaussian_peak(a=jnp.array([6.0]), u=jnp.array([0.3]))
    measure = quad.LebesgueMeasure(0.0, 1.0)
    keys = jax.random.split(jax.random.key(0), 8)
    errors, z = {}, {}
    for policy in ("ivr", "bmc"):
        res = jax.vmap(
            lambda k: quad.bayesquad(problem, measure=measure, num_evals=12, policy=policy, key=k, batch_size=2, **FAST)
        )(keys)
        errors[policy] = np.abs(np.asarray(res.mean - problem.solution))
        z[policy] = errors[policy] / np.asarray(res.std)
        assert bool(jnp.all(measure.contains(res.nodes.reshape(-1, 1))))
    print("median |error| with 12 nodes: ivr", np.median(errors["ivr"]), "bmc", np.median(errors["bmc"]))
    assert np.median(errors["ivr"]) < 0.3 * np.median(errors["bmc"])
    assert np.median(z["ivr"]) < 2.0


@pytest.mark.slow
def test_init_and_step_reproduce_the_compiled_driver():
    f = lambda x: jnp.exp(-10 * (x[0] - 0.3) ** 2)
    measure = quad.LebesgueMeasure(0.0, 1.0)
    loop = quad.BayesQuadLoop(measure=measure, num_evals=7, policy="ivr", batch_size=2, num_initial=3, **FAST)
    assert loop.num_steps == 2
    state = eqx.filter_jit(lambda k: loop.init(f, key=k))(jax.random.key(1))
    step = eqx.filter_jit(lambda s: loop.step(f, s))
    for _ in range(loop.num_steps):
        state = step(state)
    stepped = loop.result(state)
    driven = quad.bayesquad(f, measure=measure, num_evals=7, policy="ivr", batch_size=2, num_initial=3, key=jax.random.key(1), **FAST)
    # Two compiled programs: equal up to rounding amplified by the optimisers.
    np.testing.assert_allclose(stepped.nodes, driven.nodes, rtol=1e-5)
    np.testing.assert_allclose(stepped.mean, driven.mean, rtol=1e-6)
    np.testing.assert_array_equal(driven.trace.num_nodes, [3, 5, 7])
    assert np.all(np.diff(np.asarray(driven.trace.std)) < 0)  # more nodes, less uncertainty
    exact = np.sqrt(np.pi / 10) / 2 * float(jax.scipy.special.erf(np.sqrt(10) * 0.7) + jax.scipy.special.erf(np.sqrt(10) * 0.3))
    assert abs(float(driven.mean) - exact) < 3 * float(driven.std) + 1e-9


@pytest.mark.slow
def test_sobol_policy_with_several_integrands():
    f = lambda x: jnp.stack([jnp.sin(3 * x[0]) * x[1], jnp.exp(x[0] + x[1])])
    measure = quad.LebesgueMeasure([0.0, 0.0], [1.0, 1.0])
    res = quad.bayesquad(f, measure=measure, num_evals=48, policy="sobol", key=jax.random.key(0), fit_steps=60)
    exact = np.array([(1 - np.cos(3)) / 6, (np.e - 1) ** 2])
    assert res.mean.shape == (2,) and res.std.shape == (2,)
    np.testing.assert_allclose(res.mean, exact, rtol=1e-4)
    assert np.all(np.abs(np.asarray(res.mean) - exact) < 3 * np.asarray(res.std))
    assert res.trace.num_nodes.tolist() == [48]


@pytest.mark.slow
def test_wsabi_uncertainty_sampling_on_a_gaussian_measure():
    measure = quad.GaussianMeasure(jnp.zeros(2), jnp.array([[1.0, 0.3], [0.3, 0.5]]))
    f = lambda x: jnp.exp(-jnp.sum((x - 0.5) ** 2) / 0.2)
    res = quad.bayesquad(f, measure=measure, num_evals=30, policy="us", model="wsabi", batch_size=5, key=jax.random.key(3), **FAST)
    cov = np.array([[1.0, 0.3], [0.3, 0.5]])
    m = np.full(2, 0.5)
    exact = np.exp(-0.5 * m @ np.linalg.solve(cov + 0.1 * np.eye(2), m)) / np.sqrt(np.linalg.det(np.eye(2) + cov / 0.1))
    assert abs(float(res.mean) - exact) < 0.05 * exact
    assert abs(float(res.mean) - exact) < 3 * float(res.std)
    assert res.trace.num_nodes.tolist() == [5, 10, 15, 20, 25, 30]


@pytest.mark.slow
def test_nan_integrand_is_reported_and_raises():
    measure = quad.LebesgueMeasure(0.0, 1.0)
    f = lambda x: jnp.where(x[0] > 0.5, jnp.nan, x[0])
    loop = quad.BayesQuadLoop(measure=measure, num_evals=6, policy="sobol", fit_steps=5)
    state = eqx.filter_jit(lambda k: loop.run(f, key=k))(jax.random.key(0))
    assert loop.result(state, throw=False).result == quad.RESULTS.nonfinite_fvals
    with pytest.raises(Exception, match="NaN or inf"):
        loop.result(state)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["bmc", "lhs", "us"])
def test_other_policies_integrate_a_smooth_function(policy):
    measure = quad.LebesgueMeasure([0.0, 0.0], [1.0, 1.0])
    f = lambda x: jnp.sin(3 * x[0]) * x[1]
    res = quad.bayesquad(f, measure=measure, num_evals=40, policy=policy, key=jax.random.key(0), batch_size=4)
    exact = (1 - np.cos(3)) / 6
    assert abs(float(res.mean) - exact) < 1e-3
    assert abs(float(res.mean) - exact) < 3 * float(res.std)
