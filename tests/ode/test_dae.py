"""Mass-matrix DAEs ``M y' = f(t, y, args)`` solved with the EK1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import probnum_jax as pnx
from probnum_jax.ode._information import dae_taylor

from .conftest import geometric_mean_ratio

K1, K2, K3 = 0.04, 3e7, 1e4


def robertson_dae(t, y, args):
    """Robertson's reaction with the conservation law as the algebraic equation."""
    k1, k2, k3 = args
    return jnp.stack([
        -k1 * y[0] + k3 * y[1] * y[2],
        k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
        y[0] + y[1] + y[2] - 1.0,
    ])


ROBERTSON_MASS = jnp.diag(jnp.array([1.0, 1.0, 0.0]))


@pytest.fixture(scope="module")
def reference():
    """The ODE form of Robertson's problem by scipy's Radau (plain numpy: no compilation)."""

    def f(t, y):
        return [-K1 * y[0] + K3 * y[1] * y[2], K1 * y[0] - K3 * y[1] * y[2] - K2 * y[1] ** 2, K2 * y[1] ** 2]

    def jac(t, y):
        return [
            [-K1, K3 * y[2], K3 * y[1]],
            [K1, -K3 * y[2] - 2 * K2 * y[1], -K3 * y[1]],
            [0.0, 2 * K2 * y[1], 0.0],
        ]

    sol = solve_ivp(f, (0.0, 1e2), [1.0, 0.0, 0.0], method="Radau", jac=jac, rtol=1e-10, atol=1e-13, dense_output=True)
    assert sol.success
    return sol.sol


def _robertson(reference, solver, tol=1e-6):
    ivp = pnx.problems.robertson(t1=1e2)
    assert ivp.args == (K1, K2, K3)
    ref = reference
    ts = jnp.array([0.0, 1e-3, 1e-1, 1.0, 10.0, ivp.t1])
    sol = pnx.ode.solve(
        robertson_dae, ivp.y0, t0=ivp.t0, t1=ivp.t1, args=ivp.args, solver=solver, save_at=ts,
        atol=tol, rtol=tol, mass_matrix=ROBERTSON_MASS,
    )
    return sol, np.asarray(sol.mean) - ref(np.asarray(ts)).T


STRATEGIES = ["filter", pytest.param("fixedpoint", marks=pytest.mark.slow)]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_robertson_dae_against_radau(reference, strategy):
    sol, error = _robertson(reference, pnx.ode.EK1(num_derivatives=3, strategy=strategy))
    ratio = geometric_mean_ratio(error[1:], sol.std[1:])
    print(f"Robertson DAE: {int(sol.num_steps)} steps, max error {np.abs(error).max():.2e}, |err|/std {ratio:.3f}")
    assert np.abs(error).max() < 5e-6
    # the algebraic equation holds to rounding error at the step ends (t1), and to the
    # tolerance at save points inside steps (there the filter only predicts)
    np.testing.assert_allclose(np.sum(sol.mean, axis=1), 1.0, atol=2e-6)
    np.testing.assert_allclose(np.sum(sol.mean[-1]), 1.0, atol=1e-10)
    assert 1e-3 <= ratio <= 10.0


@pytest.mark.slow  # the default suite covers dense EK1 with a mass matrix on Robertson
def test_invertible_mass_matrix_rescales_the_vector_field():
    """``2 y' = -y`` is ``y' = -y / 2``: the solution is ``exp(-t / 2)``."""
    grid = jnp.linspace(0.0, 2.0, 21)
    sol = pnx.ode.solve_fixed_grid(
        lambda t, y, a: -y, jnp.ones(2), grid, solver=pnx.ode.EK1(num_derivatives=3),
        mass_matrix=2.0 * jnp.eye(2),
    )
    np.testing.assert_allclose(sol.mean, jnp.exp(-grid / 2)[:, None] * jnp.ones(2), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    "solver",
    [pnx.ode.EK0(num_derivatives=3, factorisation="dense"), pnx.ode.EK1(num_derivatives=3, factorisation="blockdiag"),
     pnx.ode.EK0(num_derivatives=3, factorisation="blockdiag")],
    ids=["EK0-dense", "EK1-blockdiag", "EK0-blockdiag"],
)
def test_invertible_mass_matrix_matches_the_scaled_ode(solver):
    """On one grid, ``M y' = f`` and ``y' = M^-1 f`` give the same posterior (row scaling)."""
    grid = jnp.linspace(0.0, 2.0, 21)
    ivp = pnx.problems.lotka_volterra()
    scale = jnp.array([2.0, 0.5])
    with_mass = pnx.ode.solve_fixed_grid(
        ivp.vector_field, ivp.y0, grid, solver=solver, args=ivp.args, mass_matrix=jnp.diag(scale)
    )
    scaled = pnx.ode.solve_fixed_grid(
        lambda t, y, a: ivp.vector_field(t, y, a) / scale, ivp.y0, grid, solver=solver, args=ivp.args
    )
    np.testing.assert_allclose(with_mass.mean, scaled.mean, rtol=1e-9)
    np.testing.assert_allclose(with_mass.std, scaled.std, rtol=1e-6)


def test_consistent_taylor_coefficients():
    """For an invertible M they are those of ``y' = M^-1 f``; for Robertson the third derivative
    follows from differentiating the algebraic equation (``y1 + y2 + y3 = 1``)."""
    ivp = pnx.problems.robertson()
    run = jax.jit(lambda m, y0: dae_taylor(robertson_dae, m, 0.0, y0, ivp.args, 3))
    # M = 2I: y' = f / 2, and y'' = J y' / 2
    y0 = jnp.array([0.5, 1e-3, 0.3])
    coeffs = run(2.0 * jnp.eye(3), y0)
    f0, jac = robertson_dae(0.0, y0, ivp.args), jax.jacfwd(robertson_dae, argnums=1)(0.0, y0, ivp.args)
    np.testing.assert_allclose(coeffs[1], f0 / 2, rtol=1e-12)
    np.testing.assert_allclose(coeffs[2], jac @ f0 / 4, rtol=1e-10)

    coeffs = run(ROBERTSON_MASS, ivp.y0)
    np.testing.assert_allclose(coeffs.sum(axis=1)[1:], 0.0, atol=1e-9)
    np.testing.assert_allclose(coeffs[1], [-0.04, 0.04, 0.0], atol=1e-15)
    # y2''' = 0.04 y1'' - 2 k2 y2'^2 at y2 = y3 = 0
    np.testing.assert_allclose(coeffs[3, 1], 0.04 * 0.0016 - 2 * 3e7 * 0.04**2, rtol=1e-12)


# bad input

F = lambda t, y, a: -y


@pytest.mark.parametrize("mass", [jnp.eye(3), jnp.ones(2), jnp.ones((2, 3))])
def test_mass_matrix_shape(mass):
    with pytest.raises(ValueError, match=r"mass_matrix must have shape \(d, d\) = \(2, 2\)"):
        pnx.ode.solve(F, jnp.ones(2), t0=0.0, t1=1.0, mass_matrix=mass)


def test_mass_matrix_finite():
    with pytest.raises(ValueError, match="mass_matrix must be finite"):
        pnx.ode.solve_fixed_grid(F, jnp.ones(2), jnp.linspace(0.0, 1.0, 3), mass_matrix=jnp.diag(jnp.array([1.0, jnp.nan])))


def test_singular_mass_matrix_needs_ek1():
    with pytest.raises(ValueError, match="singular mass_matrix.*needs EK1"):
        pnx.ode.solve(
            F, jnp.ones(2), t0=0.0, t1=1.0, mass_matrix=jnp.diag(jnp.array([1.0, 0.0])),
            solver=pnx.ode.EK0(factorisation="dense"),
        )


def test_mass_matrix_factorisations():
    with pytest.raises(ValueError, match="mass_matrix needs factorisation='dense'"):
        pnx.ode.solve(F, jnp.ones(2), t0=0.0, t1=1.0, mass_matrix=jnp.eye(2), solver=pnx.ode.EK0())
    with pytest.raises(ValueError, match="mass_matrix must be diagonal with factorisation='blockdiag'"):
        pnx.ode.solve(
            F, jnp.ones(2), t0=0.0, t1=1.0, mass_matrix=jnp.ones((2, 2)) + jnp.eye(2),
            solver=pnx.ode.EK1(factorisation="blockdiag"),
        )


def test_mass_matrix_with_higher_order_y0():
    with pytest.raises(ValueError, match="mass_matrix is not supported together with a higher-order y0"):
        pnx.ode.solve(
            lambda t, y, dy, a: -y, (jnp.ones(2), jnp.zeros(2)), t0=0.0, t1=1.0, mass_matrix=jnp.eye(2)
        )
