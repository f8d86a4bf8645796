"""Parallel-in-time smoothing (``solve_fixed_grid(..., parallel=True)``) against the sequential smoother and scipy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import probnum_jax as pnx

from .conftest import geometric_mean_ratio

SOLVER = pnx.ode.EK1(num_derivatives=3, strategy="smoother", calibration="mle")


@pytest.fixture(scope="module")
def lotka_volterra():
    ivp = pnx.problems.lotka_volterra(t1=5.0)
    grid = jnp.linspace(ivp.t0, ivp.t1, 41)
    solve = lambda **kw: pnx.ode.solve_fixed_grid(  # noqa: E731
        ivp.vector_field, ivp.y0, grid, solver=SOLVER, args=ivp.args, **kw
    )
    return ivp, grid, solve(), solve(parallel=True)


def test_parallel_smoother_agrees_with_the_sequential_smoother(lotka_volterra):
    ivp, _, seq, par = lotka_volterra
    assert par.result == pnx.ode.RESULTS.successful
    assert 1 <= int(par.num_iterations) < 30
    np.testing.assert_allclose(par.mean, seq.mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(par.std[1:], seq.std[1:], rtol=1e-4)
    np.testing.assert_allclose(par.output_scale, seq.output_scale, rtol=1e-6)
    np.testing.assert_allclose(par.log_marginal_likelihood, seq.log_marginal_likelihood, rtol=1e-6)
    # Every iteration linearises (f and a d-column Jacobian) at all grid points, as the sequential pass does once.
    steps, dim = par.t.shape[0] - 1, ivp.y0.shape[0]
    assert int(par.num_f_evals) - int(seq.num_f_evals) == (1 + dim) * steps * int(par.num_iterations)


def test_parallel_smoother_is_accurate_and_calibrated(lotka_volterra, reference):
    ivp, grid, _, par = lotka_volterra
    _, ref = reference("lotka_volterra", t1=5.0)
    error = np.asarray(par.mean) - ref(np.asarray(grid)).T
    assert np.max(np.abs(error)) < 1e-3
    ratio = geometric_mean_ratio(error[1:], par.std[1:])
    print(f"max error {np.max(np.abs(error)):.2e}, geometric mean |error|/std {ratio:.2e}")
    # Not over-confident anywhere. (On this grid the global-MLE std is ~1e4 times the
    # error, for the sequential smoother alike: the test above shows both agree.)
    assert np.all(np.abs(error[1:]) < 3 * np.asarray(par.std[1:]))


def test_parallel_smoother_backward_chain_reproduces_its_marginals(lotka_volterra):
    """``p(x_n) = ∫ p(x_n | x_{n+1}) p(x_{n+1})``: the chain behind ``sol.sample`` matches the marginals."""
    _, _, _, par = lotka_volterra
    chain, margs = par.posterior, par.marginals
    gain, noise = np.asarray(chain.conditionals.gain), chain.conditionals.noise
    cov = lambda factor: np.einsum("...ij,...kj->...ik", factor, factor)  # noqa: E731
    mean_next, cov_next = np.asarray(margs.mean[1:]), cov(np.asarray(margs.cholesky[1:]))
    mean = np.einsum("nij,nj->ni", gain, mean_next) + np.asarray(noise.mean)
    covariance = np.einsum("nij,njk,nlk->nil", gain, cov_next, gain) + cov(np.asarray(noise.cholesky))
    np.testing.assert_allclose(mean, margs.mean[:-1], rtol=1e-8, atol=1e-10)
    scale = np.sqrt(np.einsum("nii->ni", covariance)).max()
    np.testing.assert_allclose(covariance, cov(np.asarray(margs.cholesky[:-1])), atol=1e-8 * scale**2)


def test_parallel_reports_non_convergence(lotka_volterra):
    ivp, grid, _, _ = lotka_volterra
    # A traced tolerance: this reuses the fixture's compiled solve.
    sol = pnx.ode.solve_fixed_grid(
        ivp.vector_field, ivp.y0, grid, solver=SOLVER, args=ivp.args, parallel=True, iteration_tol=1e-300
    )
    assert sol.result == pnx.ode.RESULTS.iterations_not_converged
    assert int(sol.num_iterations) == 100


def test_a_good_initial_guess_saves_iterations(lotka_volterra):
    ivp, grid, seq, par = lotka_volterra
    # A traced guess: this reuses the fixture's compiled solve (its default guess is y0 at every point).
    sol = pnx.ode.solve_fixed_grid(
        ivp.vector_field, ivp.y0, grid, solver=SOLVER, args=ivp.args, parallel=True, initial_guess=seq.mean
    )
    assert sol.result == pnx.ode.RESULTS.successful
    assert int(sol.num_iterations) <= 3 < int(par.num_iterations)
    np.testing.assert_allclose(sol.mean, seq.mean, rtol=1e-8, atol=1e-10)


@pytest.mark.slow
def test_initial_guess_from_a_coarse_solve_avoids_a_spurious_trajectory(reference):
    """Lotka-Volterra on [0, 20] with 1000 points: from y0 constant, Gauss-Newton converges to a
    wrong solution of the collocation equations; from a coarse sequential solve, to the right one."""
    ivp = pnx.problems.lotka_volterra(t1=20.0)
    grid = jnp.linspace(ivp.t0, ivp.t1, 1000)
    coarse = pnx.ode.solve_fixed_grid(ivp.vector_field, ivp.y0, grid[::10], solver=SOLVER, args=ivp.args)
    guess = jnp.stack([jnp.interp(grid, grid[::10], coarse.mean[:, i]) for i in range(2)], axis=1)
    solve = lambda g: pnx.ode.solve_fixed_grid(  # noqa: E731
        ivp.vector_field, ivp.y0, grid, solver=SOLVER, args=ivp.args, parallel=True, initial_guess=g
    )
    _, ref = reference("lotka_volterra", t1=20.0)
    truth = ref(np.asarray(grid)).T
    assert np.max(np.abs(np.asarray(solve(None).mean) - truth)) > 1.0
    sol = solve(guess)
    assert sol.result == pnx.ode.RESULTS.successful
    assert np.max(np.abs(np.asarray(sol.mean) - truth)) < 1e-2


@pytest.mark.slow
def test_gradient_through_the_parallel_smoother_matches_finite_differences():
    ivp = pnx.problems.logistic()
    grid = jnp.linspace(ivp.t0, ivp.t1, 41)

    def final(rate):
        sol = pnx.ode.solve_fixed_grid(ivp.vector_field, ivp.y0, grid, solver=SOLVER, args=(rate, 1.0), parallel=True)
        return sol.mean[-10, 0]

    eps = 1e-5
    fd = (final(1.0 + eps) - final(1.0 - eps)) / (2 * eps)
    np.testing.assert_allclose(jax.grad(final)(1.0), fd, rtol=1e-5)


def test_small_matrix_linear_algebra_matches_numpy():
    """The loop-based solves used inside the parallel smoother (no LAPACK), vmapped, against numpy."""
    from probnum_jax import _small_linalg as small

    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 6, 6))
    a[0, 0, 0] = 0.0  # needs pivoting
    b = rng.normal(size=(3, 6, 2))
    spd = np.einsum("nij,nkj->nik", a, a) + np.eye(6)
    chol = np.linalg.cholesky(spd)
    np.testing.assert_allclose(jax.vmap(small.solve)(a, b), np.linalg.solve(a, b), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jax.vmap(small.cholesky)(spd), chol, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jax.vmap(small.solve_lower)(chol, b), np.linalg.solve(chol, b), rtol=1e-10)
    np.testing.assert_allclose(jax.vmap(small.cho_solve)(chol, b), np.linalg.solve(spd, b), rtol=1e-10)


@pytest.mark.slow
def test_parallel_smoother_on_a_long_grid():
    """N = 2000 (the size at which batched LAPACK calls used to hang XLA's CPU runtime)."""
    ivp = pnx.problems.lotka_volterra(t1=10.0)
    grid = jnp.linspace(ivp.t0, ivp.t1, 2000)
    seq, par = (
        pnx.ode.solve_fixed_grid(ivp.vector_field, ivp.y0, grid, solver=SOLVER, args=ivp.args, parallel=p)
        for p in (False, True)
    )
    assert par.result == pnx.ode.RESULTS.successful
    np.testing.assert_allclose(par.mean, seq.mean, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    ("solver", "kwargs", "match"),
    [
        (pnx.ode.EK1(factorisation="blockdiag", strategy="smoother", calibration="mle"), {}, "factorisation='dense'"),
        (pnx.ode.EK1(calibration="mle"), {}, "smoothing posterior"),
        (pnx.ode.EK1(strategy="smoother"), {}, "calibration='mle' or 'none'"),
        (SOLVER, {"max_iterations": 0}, "max_iterations"),
        (SOLVER, {"iteration_tol": 0.0}, "iteration_tol"),
        (SOLVER, {"initial_guess": jnp.ones((4, 1))}, r"initial_guess must have shape \[len\(grid\), d\]"),
        (SOLVER, {"initial_guess": jnp.full((5, 1), jnp.nan)}, "initial_guess must be finite"),
    ],
)
def test_parallel_bad_input(solver, kwargs, match):
    f = lambda t, y, a: -y  # noqa: E731
    with pytest.raises(ValueError, match=match):
        pnx.ode.solve_fixed_grid(f, jnp.ones(1), jnp.linspace(0.0, 1.0, 5), solver=solver, parallel=True, **kwargs)


def test_initial_guess_is_refused_without_parallel():
    with pytest.raises(ValueError, match="parallel=True only"):
        pnx.ode.solve_fixed_grid(lambda t, y, a: -y, jnp.ones(1), jnp.linspace(0.0, 1.0, 5), initial_guess=jnp.ones((5, 1)))


def test_parallel_needs_ek1():
    solver = pnx.ode.EK0(factorisation="dense", strategy="smoother", calibration="mle")
    with pytest.raises(TypeError, match="needs EK1"):
        pnx.ode.solve_fixed_grid(lambda t, y, a: -y, jnp.ones(1), jnp.linspace(0.0, 1.0, 5), solver=solver, parallel=True)


def test_parallel_with_an_adaptive_solve_is_refused():
    with pytest.raises(ValueError, match="solve_fixed_grid"):
        pnx.ode.solve(lambda t, y, a: -y, jnp.ones(1), t0=0.0, t1=1.0, parallel=True)
