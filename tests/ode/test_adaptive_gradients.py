"""Reverse-mode gradients through the adaptive-step loop of ``ode.solve``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probnum_jax as pnx

# The gradient is that of the solution on the grid the solve chose (the step sizes are
# not differentiated), so it is accurate where that grid also resolves the sensitivity:
# on [0, 5] the logistic solution and its sensitivities change on the same time scale.
# (Near the equilibrium, t >> 5, the steps grow and the small sensitivity is resolved
# only to a few per cent.)
TOL = 1e-8
T1 = 5.0
SAVE_AT = jnp.array([0.0, 2.5, T1])
Y0, ARGS = jnp.array([0.1]), jnp.array([1.0, 1.0])


def logistic_exact(t, y0, args):
    """The closed-form logistic solution ``y(t)`` for ``t0 = 0``: an independent reference."""
    r, k = args
    growth = jnp.exp(r * t)
    return k * y0 * growth / (k + y0 * (growth - 1.0))


def make_loss(strategy, save_at):
    """``sum(y(t_i)^2)`` over the save points (or ``y(t1)^2`` without them), and its exact value."""
    ivp = pnx.problems.logistic()
    solver = pnx.ode.EK0(num_derivatives=3, strategy=strategy)

    def loss(y0, args):
        sol = pnx.ode.solve(
            ivp.vector_field, y0, t0=0.0, t1=T1, args=(args[0], args[1]), solver=solver,
            save_at=save_at, atol=TOL, rtol=TOL, max_steps=500,
        )  # fmt: skip
        return jnp.sum(sol.mean[:, 0] ** 2) if save_at is not None else jnp.sum(sol.mean[-1] ** 2)

    def exact(y0, args):
        t = jnp.array([T1]) if save_at is None else save_at
        return jnp.sum(logistic_exact(t, y0[0], args) ** 2)

    return loss, exact


def central_differences(loss, y0, args, relative_step=1e-3):
    # The accepted steps are piecewise constant in the parameters: a relative step of
    # 1e-3 keeps the jumps of the solve (O(TOL)) small against the difference quotient,
    # and its truncation error (O(h^2)) is far below the tolerance.
    loss = jax.jit(loss)
    flat = jnp.concatenate([y0, args])
    fd = []
    for i in range(flat.size):
        h = relative_step * abs(float(flat[i]))
        e = jnp.zeros_like(flat).at[i].set(h)
        fd.append((loss((flat + e)[:1], (flat + e)[1:]) - loss((flat - e)[:1], (flat - e)[1:])) / (2 * h))
    return jnp.stack(fd)


def check_gradient(strategy, save_at, with_finite_differences):
    loss, exact = make_loss(strategy, save_at)
    ours = jnp.concatenate(jax.jit(jax.grad(loss, argnums=(0, 1)))(Y0, ARGS))
    ref = jnp.concatenate(jax.grad(exact, argnums=(0, 1))(Y0, ARGS))
    assert np.all(np.isfinite(np.asarray(ours)))
    np.testing.assert_allclose(ours, ref, rtol=1e-5)  # observed: ~1e-6
    if with_finite_differences:
        np.testing.assert_allclose(ours, central_differences(loss, Y0, ARGS), rtol=1e-4)


def test_grad_under_jit_matches_exact_sensitivity_and_finite_differences():
    check_gradient("filter", None, with_finite_differences=True)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["filter", "smoother", "fixedpoint"])
def test_grad_through_dense_output_matches_exact_sensitivity(strategy):
    # save points inside steps are visited by the nested loop (30-50 s to compile each)
    check_gradient(strategy, SAVE_AT, with_finite_differences=strategy == "filter")
