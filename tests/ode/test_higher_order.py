"""Higher-order ODEs solved directly: y0 = (y0, dy0), f(t, y, dy, args) = y''."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import probnum_jax as pnx
from probnum_jax.ode._information import higher_order_taylor

from .conftest import geometric_mean_ratio

DAMPING, G_OVER_L, T1 = 0.2, 9.81, 3.0
Y0, DY0 = jnp.array([1.0]), jnp.array([0.0])
SAVE_AT = jnp.linspace(0.0, T1, 7)


def pendulum(t, y, dy, args):
    """The damped pendulum ``y'' = -c y' - (g / l) sin(y)``."""
    c, g_over_l = args
    return -c * dy - g_over_l * jnp.sin(y)


def pendulum_first_order(t, z, args):
    c, g_over_l = args
    return jnp.stack([z[1], -c * z[1] - g_over_l * jnp.sin(z[0])])


ARGS = (DAMPING, G_OVER_L)


@pytest.fixture(scope="module")
def reference():
    def f(t, z):
        return [z[1], -DAMPING * z[1] - G_OVER_L * np.sin(z[0])]

    sol = solve_ivp(f, (0.0, T1), [1.0, 0.0], method="DOP853", rtol=1e-10, atol=1e-10, dense_output=True)
    assert sol.success
    return sol.sol


def _solve(solver, tol=1e-8, **kwargs):
    return pnx.ode.solve(
        pendulum, (Y0, DY0), t0=0.0, t1=T1, args=ARGS, solver=solver, save_at=SAVE_AT,
        atol=tol, rtol=tol, **kwargs,
    )


SOLVERS = [
    pnx.ode.EK0(num_derivatives=4),
    pnx.ode.EK1(num_derivatives=4),
    pytest.param(pnx.ode.EK0(num_derivatives=4, factorisation="blockdiag"), marks=pytest.mark.slow),
    pytest.param(pnx.ode.EK0(num_derivatives=4, factorisation="dense"), marks=pytest.mark.slow),
    pytest.param(pnx.ode.EK1(num_derivatives=4, factorisation="blockdiag"), marks=pytest.mark.slow),
    pytest.param(pnx.ode.EK1(num_derivatives=4, strategy="fixedpoint"), marks=pytest.mark.slow),
    pytest.param(pnx.ode.EK0(num_derivatives=4, strategy="smoother"), marks=pytest.mark.slow),
]


@pytest.mark.parametrize("solver", SOLVERS, ids=lambda s: f"{type(s).__name__}-{s.factorisation}-{s.strategy}")
def test_damped_pendulum_against_scipy(reference, solver):
    sol = _solve(solver)
    assert sol.mean.shape == sol.std.shape == (SAVE_AT.shape[0], 1)
    error = np.asarray(sol.mean[:, 0]) - reference(np.asarray(SAVE_AT))[0]
    assert np.max(np.abs(error)) < 1e-6
    ratio = geometric_mean_ratio(error[1:], sol.std[1:, 0])
    print(f"{type(solver).__name__}: max error {np.max(np.abs(error)):.2e}, |err|/std {ratio:.3f}")
    assert 1e-3 <= ratio <= 10.0


@pytest.mark.slow  # two more compilations; the default suite checks both forms against scipy
def test_agrees_with_the_first_order_system():
    """On one grid, the second-order solve and the first-order solve of (y, y') agree."""
    grid = jnp.linspace(0.0, T1, 151)
    solver = pnx.ode.EK1(num_derivatives=4, strategy="smoother")
    second = pnx.ode.solve_fixed_grid(pendulum, (Y0, DY0), grid, solver=solver, args=ARGS)
    first = pnx.ode.solve_fixed_grid(
        pendulum_first_order, jnp.concatenate([Y0, DY0]), grid, solver=solver, args=ARGS
    )
    assert second.mean.shape == (grid.shape[0], 1)
    np.testing.assert_allclose(second.mean[:, 0], first.mean[:, 0], atol=1e-6)
    assert np.all(np.isfinite(np.asarray(second.std)))


def test_taylor_coefficients_match_the_first_order_system():
    coeffs = jax.jit(lambda y, dy: higher_order_taylor(pendulum, 0.0, (y, dy), ARGS, 5))(Y0, DY0)
    first = jax.jit(lambda z: pnx.ode.taylor_coefficients(pendulum_first_order, 0.0, z, ARGS, 5))(
        jnp.concatenate([Y0, DY0])
    )
    np.testing.assert_allclose(coeffs[:, 0], first[:, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(coeffs[1:, 0], first[:-1, 1], rtol=1e-12, atol=1e-12)


def test_third_order_taylor_coefficients():
    """y''' = y'' y, with jet and with the nested-jvp fallback."""
    f = lambda t, y, dy, ddy, a: ddy * y
    start = (jnp.array([2.0]), jnp.array([1.0]), jnp.array([3.0]))
    coeffs = jax.jit(lambda s: higher_order_taylor(f, 0.0, s, None, 5))(start)
    # y''' = y'' y = 6; y'''' = y''' y + y'' y' = 15; y^(5) = y'''' y + 2 y''' y' + y''^2 = 51
    np.testing.assert_allclose(coeffs[:, 0], [2.0, 1.0, 3.0, 6.0, 15.0, 51.0], rtol=1e-12)
    from probnum_jax.ode import _information

    derivs = [v for v in coeffs[:5]]
    f2 = lambda t, *ys: f(t, *ys, None)
    jvp = jax.jit(lambda ds: _information._total_derivatives(f2, jnp.asarray(0.0), ds, 3, 2, "jvp"))(derivs)
    np.testing.assert_allclose([float(d[0]) for d in jvp], [15.0, 51.0], rtol=1e-12)


@pytest.mark.slow
def test_gradient_with_respect_to_args_and_initial_velocity():
    grid = jnp.linspace(0.0, 1.0, 41)

    def final(args, dy0):
        sol = pnx.ode.solve_fixed_grid(pendulum, (Y0, dy0), grid, solver=pnx.ode.EK1(num_derivatives=3), args=args)
        return sol.mean[-1, 0]

    def final_first_order(args, dy0):
        sol = pnx.ode.solve_fixed_grid(
            pendulum_first_order, jnp.concatenate([Y0, dy0]), grid, solver=pnx.ode.EK1(num_derivatives=3), args=args
        )
        return sol.mean[-1, 0]

    g = jax.grad(final, argnums=(0, 1))((0.2, 9.81), DY0)
    g_ref = jax.grad(final_first_order, argnums=(0, 1))((0.2, 9.81), DY0)
    np.testing.assert_allclose(np.asarray(g[1]), np.asarray(g_ref[1]), rtol=1e-3)
    np.testing.assert_allclose(np.asarray(g[0]), np.asarray(g_ref[0]), rtol=1e-3)


# bad input


def test_entries_of_different_shapes():
    with pytest.raises(ValueError, match=r"y0 given as a tuple.*shapes \[\(1,\), \(2,\)\]"):
        pnx.ode.solve(pendulum, (Y0, jnp.zeros(2)), t0=0.0, t1=1.0, args=ARGS)


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf])
def test_nonfinite_entries(bad):
    with pytest.raises(ValueError, match=r"y0\[1\] must be finite"):
        pnx.ode.solve(pendulum, (Y0, jnp.array([bad])), t0=0.0, t1=1.0, args=ARGS)


def test_vector_field_must_take_all_state_arguments():
    with pytest.raises(TypeError, match=r"f\(t, y, dy, args\).*2 state arguments"):
        pnx.ode.solve(lambda t, y, args: -y, (Y0, DY0), t0=0.0, t1=1.0)
    with pytest.raises(TypeError, match=r"f\(t, y, dy, args\)"):
        pnx.ode.solve_fixed_grid(lambda t, y, args: -y, (Y0, DY0), jnp.linspace(0.0, 1.0, 3))


def test_num_derivatives_at_least_the_order():
    with pytest.raises(ValueError, match="num_derivatives >= 3"):
        pnx.ode.solve(
            lambda t, y, dy, ddy, a: -y, (Y0, DY0, DY0), t0=0.0, t1=1.0, solver=pnx.ode.EK1(num_derivatives=2)
        )
