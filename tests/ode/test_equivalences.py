"""Equivalences that must hold exactly: filter vs smoother at t1, factorisations, fixed-point vs smoother."""

import jax.numpy as jnp
import numpy as np
import pytest

import probnum_jax as pnx


def _solve(ivp, solver, **kwargs):
    return pnx.ode.solve(ivp.vector_field, ivp.y0, t0=ivp.t0, t1=ivp.t1, args=ivp.args, solver=solver, **kwargs)


@pytest.mark.parametrize("solver_cls", [pytest.param(pnx.ode.EK0, marks=pytest.mark.slow), pnx.ode.EK1])
def test_filter_and_smoother_agree_at_t1(solver_cls):
    ivp = pnx.problems.lotka_volterra(t1=5.0)
    ts = jnp.linspace(ivp.t0, ivp.t1, 7)
    filt = _solve(ivp, solver_cls(num_derivatives=3), save_at=ts, atol=1e-6, rtol=1e-6)
    smooth = _solve(ivp, solver_cls(num_derivatives=3, strategy="smoother"), save_at=ts, atol=1e-6, rtol=1e-6, max_steps=500)
    np.testing.assert_allclose(smooth.mean[-1], filt.mean[-1], rtol=1e-10)
    np.testing.assert_allclose(smooth.std[-1], filt.std[-1], rtol=1e-8)
    assert int(smooth.num_steps) == int(filt.num_steps)
    # in the interior the smoother uses more data, so its std is smaller
    assert np.all(np.asarray(smooth.std[1:-1]) <= np.asarray(filt.std[1:-1]) * (1 + 1e-8))


@pytest.mark.slow  # both smoothers are also checked against their marginals by the sampling tests
def test_fixedpoint_and_full_smoother_agree_at_the_save_points():
    ivp = pnx.problems.lotka_volterra(t1=5.0)
    ts = jnp.linspace(ivp.t0, ivp.t1, 9)[1:]  # save points that are neither t0 nor step ends
    fixed = _solve(ivp, pnx.ode.EK1(num_derivatives=3, strategy="fixedpoint"), save_at=ts)
    full = _solve(ivp, pnx.ode.EK1(num_derivatives=3, strategy="smoother"), save_at=ts, max_steps=500)
    np.testing.assert_allclose(fixed.mean, full.mean, rtol=1e-9)
    np.testing.assert_allclose(fixed.std, full.std, rtol=1e-6)


def test_ek0_factorisations_agree_where_they_must():
    """With a fixed output scale, EK0 treats every coordinate alike: all three layouts coincide."""
    ivp = pnx.problems.lotka_volterra(t1=5.0)
    grid = jnp.linspace(ivp.t0, ivp.t1, 51)
    sols = [
        pnx.ode.solve_fixed_grid(
            ivp.vector_field, ivp.y0, grid, args=ivp.args,
            solver=pnx.ode.EK0(num_derivatives=3, factorisation=fact, calibration="none"),
        )
        for fact in ("isotropic", "blockdiag", "dense")
    ]
    for other in sols[1:]:
        np.testing.assert_allclose(other.mean, sols[0].mean, rtol=1e-10)
        np.testing.assert_allclose(other.std, sols[0].std, rtol=1e-8)


@pytest.mark.slow
def test_ek0_factorisations_agree_adaptively_in_one_dimension():
    ivp = pnx.problems.logistic()
    sols = [
        _solve(ivp, pnx.ode.EK0(num_derivatives=3, factorisation=fact), save_at=jnp.linspace(ivp.t0, ivp.t1, 5))
        for fact in ("isotropic", "blockdiag", "dense")
    ]
    for other in sols[1:]:
        assert int(other.num_steps) == int(sols[0].num_steps)
        np.testing.assert_allclose(other.mean, sols[0].mean, rtol=1e-9)
        # roundoff moves the adaptive step sizes slightly, and the std scales like dt^(q+1/2)
        np.testing.assert_allclose(other.std, sols[0].std, rtol=1e-3)


def test_diagonal_ek1_equals_dense_ek1_for_a_decoupled_system():
    """A diagonal Jacobian loses nothing when the system is decoupled."""
    rates = jnp.array([-1.0, -3.0])

    def f(t, y, args):
        return rates * y + jnp.sin(t)

    grid = jnp.linspace(0.0, 2.0, 41)
    y0 = jnp.array([1.0, 2.0])
    dense, diag = (
        pnx.ode.solve_fixed_grid(f, y0, grid, solver=pnx.ode.EK1(num_derivatives=3, factorisation=fact, calibration="none"))
        for fact in ("dense", "blockdiag")
    )
    np.testing.assert_allclose(diag.mean, dense.mean, rtol=1e-10)
    np.testing.assert_allclose(diag.std, dense.std, rtol=1e-8)
