"""jit, vmap and grad through the solvers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probnum_jax as pnx


@pytest.fixture(scope="module")
def lv():
    return pnx.problems.lotka_volterra(t1=5.0)


def test_jit_matches_eager_call(lv):
    solver = pnx.ode.EK0(num_derivatives=3)

    @jax.jit
    def final_mean(y0, args):
        return pnx.ode.solve(lv.vector_field, y0, t0=lv.t0, t1=lv.t1, args=args, solver=solver).mean[-1]

    direct = pnx.ode.solve(lv.vector_field, lv.y0, t0=lv.t0, t1=lv.t1, args=lv.args, solver=solver).mean[-1]
    np.testing.assert_allclose(final_mean(lv.y0, lv.args), direct, rtol=1e-12)


def test_vmap_over_initial_values_and_args_matches_a_loop(lv):
    solver = pnx.ode.EK1(num_derivatives=3)

    def final(y0, a):
        args = (a,) + tuple(lv.args[1:])
        sol = pnx.ode.solve(lv.vector_field, y0, t0=lv.t0, t1=lv.t1, args=args, solver=solver)
        return sol.mean[-1], sol.std[-1], sol.num_steps

    y0s = lv.y0 * jnp.array([[1.0], [1.1], [0.8]])
    rates = jnp.array([0.5, 0.45, 0.55])
    batched = jax.vmap(final)(y0s, rates)
    for i in range(3):
        single = final(y0s[i], rates[i])
        np.testing.assert_allclose(batched[0][i], single[0], rtol=1e-10)
        np.testing.assert_allclose(batched[1][i], single[1], rtol=1e-8)
        assert int(batched[2][i]) == int(single[2])  # each problem gets its own step sizes
    assert len(set(np.asarray(batched[2]).tolist())) > 1


@pytest.mark.parametrize("solver_cls", [pytest.param(pnx.ode.EK0, marks=pytest.mark.slow), pnx.ode.EK1])
def test_grad_through_fixed_grid_matches_finite_differences(lv, solver_cls):
    grid = jnp.linspace(lv.t0, lv.t1, 51)
    solver = solver_cls(num_derivatives=3)

    def loss(theta):
        args = (theta[0], lv.args[1], theta[1], lv.args[3])
        sol = pnx.ode.solve_fixed_grid(lv.vector_field, lv.y0 * theta[2], grid, args=args, solver=solver)
        return jnp.sum(sol.mean[-1] ** 2) + jnp.sum(sol.std[-1])

    theta = jnp.array([0.5, 0.5, 1.0])
    grad = jax.jit(jax.grad(loss))(theta)
    loss_jit = jax.jit(loss)
    eps = 1e-6
    fd = np.array([(loss_jit(theta + eps * e) - loss_jit(theta - eps * e)) / (2 * eps) for e in jnp.eye(3)])
    assert np.all(np.isfinite(np.asarray(grad)))
    np.testing.assert_allclose(grad, fd, rtol=1e-5)
