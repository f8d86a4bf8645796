"""Convergence order on fixed grids against the logistic closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probnum_jax as pnx


# The default run checks EK0 and EK1 at q=2; the q=3 pairs are slow.
@pytest.mark.parametrize(
    "solver_cls, num_derivatives",
    [
        (pnx.ode.EK0, 2),
        (pnx.ode.EK1, 2),
        pytest.param(pnx.ode.EK0, 3, marks=pytest.mark.slow),
        pytest.param(pnx.ode.EK1, 3, marks=pytest.mark.slow),
    ],
)
def test_fixed_grid_order_is_close_to_num_derivatives(solver_cls, num_derivatives):
    ivp = pnx.problems.logistic()
    solver = solver_cls(num_derivatives=num_derivatives, calibration="none")
    solve = jax.jit(lambda grid: pnx.ode.solve_fixed_grid(ivp.vector_field, ivp.y0, grid, args=ivp.args, solver=solver).mean[-1])
    steps = np.array([40, 80, 160, 320])
    errors = []
    for n in steps:
        # a jit per grid size: the shapes differ, so each size compiles once
        final = solve(jnp.linspace(ivp.t0, ivp.t1, n + 1))
        errors.append(float(jnp.abs(final - ivp.solution(ivp.t1))[0]))
    order = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    print(f"{solver_cls.__name__} q={num_derivatives}: errors {errors}, fitted order {order:.2f}")
    assert num_derivatives - 0.5 <= order <= num_derivatives + 1.5
