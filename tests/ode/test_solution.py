"""Joint posterior samples from the smoothers agree with the smoothing marginals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probnum_jax as pnx


@pytest.mark.parametrize("strategy", ["fixedpoint", pytest.param("smoother", marks=pytest.mark.slow)])
def test_samples_match_the_smoothing_marginals(strategy):
    ivp = pnx.problems.lotka_volterra(t1=5.0)
    ts = jnp.linspace(ivp.t0, ivp.t1, 6)
    sol = pnx.ode.solve(
        ivp.vector_field, ivp.y0, t0=ivp.t0, t1=ivp.t1, args=ivp.args, save_at=ts,
        solver=pnx.ode.EK1(num_derivatives=2, strategy=strategy), atol=1e-3, rtol=1e-3, max_steps=300,
    )
    n = 4000
    draws = np.asarray(sol.sample(jax.random.PRNGKey(1), n))
    assert draws.shape == (n, 6, 2)
    std = np.asarray(sol.std)
    np.testing.assert_allclose(draws[:, 0], np.broadcast_to(ivp.y0, (n, 2)))  # exact initial value
    np.testing.assert_allclose(draws[:, 1:].mean(0), sol.mean[1:], atol=5 * std[1:].max() / np.sqrt(n))
    np.testing.assert_allclose(draws[:, 1:].std(0), std[1:], rtol=0.1)
    # joint, not independent: neighbouring save points are positively correlated
    corr = np.corrcoef(draws[:, 2, 0], draws[:, 3, 0])[0, 1]
    assert corr > 0.2


def test_sample_argument_validation():
    ivp = pnx.problems.logistic()
    sol = pnx.ode.solve(ivp.vector_field, ivp.y0, t0=ivp.t0, t1=ivp.t1, args=ivp.args,
                        solver=pnx.ode.EK0(num_derivatives=2, strategy="fixedpoint"))
    with pytest.raises(ValueError, match="num_samples must be a positive int"):
        sol.sample(jax.random.PRNGKey(0), 0)
