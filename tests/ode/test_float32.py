"""float32 solves stay finite with a positive std (what accelerators run)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probnum_jax as pnx


LV, VDP10 = ("lotka_volterra", {}), ("van_der_pol", {"mu": 10.0})


# By default: EK0 on the non-stiff problem, EK1 (q=6, the hardest for float32) on the stiff one.
@pytest.mark.parametrize(
    "name, kwargs, solver_cls, q",
    [
        (*LV, pnx.ode.EK0, 4),
        (*VDP10, pnx.ode.EK1, 6),
        pytest.param(*VDP10, pnx.ode.EK0, 4, marks=pytest.mark.slow),
        pytest.param(*LV, pnx.ode.EK1, 4, marks=pytest.mark.slow),
        pytest.param(*VDP10, pnx.ode.EK1, 4, marks=pytest.mark.slow),
        pytest.param(*LV, pnx.ode.EK1, 6, marks=pytest.mark.slow),
    ],
)
def test_float32_solution_is_finite_with_positive_std(name, kwargs, solver_cls, q):
    with jax.enable_x64(False):
        ivp = getattr(pnx.problems, name)(**kwargs)
        y0 = ivp.y0.astype(jnp.float32)
        ts = jnp.linspace(ivp.t0, ivp.t1, 6, dtype=jnp.float32)
        sol = pnx.ode.solve(
            ivp.vector_field, y0, t0=ivp.t0, t1=ivp.t1, args=ivp.args,
            solver=solver_cls(num_derivatives=q), save_at=ts, atol=1e-4, rtol=1e-4,
        )
        assert sol.mean.dtype == jnp.float32
        assert sol.result == pnx.ode.RESULTS.successful
        assert np.all(np.isfinite(np.asarray(sol.mean)))
        assert np.all(np.asarray(sol.std[1:]) > 0)
        assert np.all(np.isfinite(np.asarray(sol.std)))
