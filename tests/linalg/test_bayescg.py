"""BayesCG: CG-iterate means, Krylov posterior, convergence, calibration, transformations.

Most calls share one compiled configuration (dense 40 x 40, float64,
``throw=False``); ``maxiter`` and the tolerances are traced, so varying them
does not recompile.
"""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse.linalg

from probnum_jax import linalg
from probnum_jax.problems._linear_systems import (
    poisson_2d_matvec,
    random_sparse_spd_matrix,
    random_spd_matrix,
    rbf_gram_matrix,
)

N = 40


@pytest.mark.parametrize("m", [3, 12])
def test_mean_equals_cg_iterates(spd, cg_iterates, m):
    res = linalg.bayescg(spd.A, spd.b, maxiter=m, atol=0.0, rtol=0.0, throw=False)
    reference = cg_iterates(spd.A, spd.b, m + 5)
    scale = np.linalg.norm(reference[m])
    assert int(res.num_iterations) == m
    assert not bool(res.converged)
    assert res.result == linalg.RESULTS.max_iterations_reached
    np.testing.assert_allclose(res.mean, reference[m], atol=1e-10 * scale, rtol=0)
    # SciPy agrees too (a second, independent implementation).
    x_scipy, _ = scipy.sparse.linalg.cg(np.asarray(spd.A), np.asarray(spd.b), rtol=0.0, atol=0.0, maxiter=m)
    np.testing.assert_allclose(res.mean, x_scipy, atol=1e-10 * scale, rtol=0)
    # The covariance factor holds the next d = 5 CG steps x_{m+i+1} - x_{m+i}.
    steps = np.diff(reference[m:], axis=0).T
    np.testing.assert_allclose(res.cov.factor, steps, atol=1e-10 * scale, rtol=0)


def test_preconditioned_mean_equals_pcg_iterates(spd, cg_iterates):
    d = jnp.linspace(1.0, 30.0, N)
    A = d[:, None] * spd.A * d[None, :]
    b = A @ spd.x
    M = 1.0 / jnp.diag(A)
    res = linalg.bayescg(A, b, maxiter=12, atol=0.0, rtol=0.0, preconditioner=M, throw=False)
    reference = cg_iterates(A, b, 12, M=np.diag(M))
    np.testing.assert_allclose(res.mean, reference[12], atol=1e-10 * np.linalg.norm(reference[12]), rtol=0)
    plain = linalg.bayescg(A, b, atol=0.0, rtol=1e-8, throw=False)
    precond = linalg.bayescg(A, b, atol=0.0, rtol=1e-8, preconditioner=M, throw=False)
    assert int(precond.num_iterations) < int(plain.num_iterations)


def _problems():
    key = jax.random.key(3)
    spd = random_spd_matrix(key, jnp.logspace(0, 3, N))
    sparse = random_sparse_spd_matrix(key, N, nnz_per_row=3)
    poisson = poisson_2d_matvec(6)
    poisson_dense = jax.vmap(poisson)(jnp.eye(36)).T
    gram = rbf_gram_matrix(jnp.linspace(0.0, 1.0, N)[:, None], lengthscale=0.2, nugget=1e-2)
    return [
        ("random_spd", spd, spd),
        ("sparse_spd", sparse, sparse.todense()),
        ("poisson_2d", poisson, poisson_dense),
        ("rbf_gram", gram, gram),
    ]


@pytest.mark.parametrize("name, A, dense", _problems(), ids=[p[0] for p in _problems()])
def test_converges_on_test_problems(name, A, dense):
    n = dense.shape[0]
    b = jnp.cos(jnp.arange(n, dtype=jnp.float64))
    res = linalg.bayescg(A, b, atol=0.0, rtol=1e-10, throw=False)
    x_ref = scipy.linalg.solve(np.asarray(dense), np.asarray(b), assume_a="pos")
    assert bool(res.converged)
    assert res.result == linalg.RESULTS.successful
    assert float(res.residual_norm) <= 2e-10 * float(jnp.linalg.norm(b))
    cond = np.linalg.cond(np.asarray(dense))
    np.testing.assert_allclose(res.mean, x_ref, atol=1e-9 * cond * np.abs(x_ref).max(), rtol=0)


def test_calibration_of_krylov_posterior(spd):
    """Early-stopped BayesCG over 200 right-hand sides ``b = A x``, ``x ~ N(0, I)`` (Reid et al. 2023).

    The S-statistic ``||x - x_m||_A^2`` is near its posterior mean (slightly
    optimistic: the rank-d posterior omits the tail beyond the post-iterations),
    and RMS(error) / RMS(std) lies within [0.1, 10]. The Euclidean Z-statistic
    exceeds its chi^2_d mean: the error has components outside the rank-d range.
    """
    d = 5
    X = jax.random.normal(jax.random.key(8), (200, N))

    def one(x):
        res = linalg.bayescg(spd.A, spd.A @ x, maxiter=10, num_post_iterations=d, throw=False)
        stats = linalg.calibration_statistics(res, spd.A, x)
        return jnp.stack(
            [stats.z, stats.z_mean, stats.s, stats.s_mean, jnp.mean((x - res.mean) ** 2), jnp.mean(res.std**2)]
        )

    z, z_mean, s, s_mean, e2, v2 = np.asarray(jax.jit(jax.vmap(one))(X)).T
    s_ratio = np.mean(s) / np.mean(s_mean)
    rms_ratio = np.sqrt(np.mean(e2) / np.mean(v2))
    print(f"bayescg: S/E[S] = {s_ratio:.3f}, RMS(err)/RMS(std) = {rms_ratio:.3f}, mean Z = {z.mean():.1f} (rank {d})")
    assert np.all(z_mean == d)
    assert 1.0 <= s_ratio <= 2.0
    assert 0.1 <= rms_ratio <= 10.0
    assert z.mean() >= d


def test_vmap_over_rhs_and_systems_equals_separate_solves(spd):
    B = jax.random.normal(jax.random.key(4), (3, N))
    solve = lambda A, b: linalg.bayescg(A, b, maxiter=15, throw=False)  # noqa: E731
    batched, stds = jax.jit(jax.vmap(lambda A, b: (solve(A, b), solve(A, b).std), in_axes=(None, 0)))(spd.A, B)
    for i in range(3):
        single = solve(spd.A, B[i])
        np.testing.assert_allclose(batched.mean[i], single.mean, atol=1e-12)
        np.testing.assert_allclose(stds[i], single.std, atol=1e-12)
        assert int(batched.num_iterations[i]) == int(single.num_iterations)
    As = jnp.stack([spd.A, 2.0 * spd.A, spd.A + jnp.eye(N)])
    means = jax.jit(jax.vmap(lambda A: solve(A, spd.b).mean))(As)
    for i in range(3):
        np.testing.assert_allclose(means[i], solve(As[i], spd.b).mean, atol=1e-12)


def test_float32_stays_finite(spd):
    A, b = spd.A.astype(jnp.float32), spd.b.astype(jnp.float32)
    res = linalg.bayescg(A, b, rtol=1e-5, throw=False)
    assert res.mean.dtype == jnp.float32 and res.std.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(res.mean))) and bool(jnp.all(jnp.isfinite(res.std)))
    assert bool(res.converged)
    np.testing.assert_allclose(res.mean, spd.x, atol=1e-3)
    early = linalg.bayescg(A, b, maxiter=5, throw=False)
    assert bool(jnp.all(jnp.isfinite(early.std))) and float(jnp.max(early.std)) > 0


def test_gradients_by_implicit_differentiation_match_dense_solve():
    x = jnp.linspace(0.0, 1.0, N)[:, None]
    b = jnp.sin(3 * x[:, 0])
    w = jnp.cos(jnp.arange(float(N)))

    def loss(params, use_matvec=False, reference=False):
        ell, rhs = params
        K = rbf_gram_matrix(x, lengthscale=ell, nugget=0.1)
        if reference:
            return w @ jnp.linalg.solve(K, rhs)
        A = (lambda v: K @ v) if use_matvec else K  # a matvec closing over the parameter
        return w @ linalg.bayescg(A, rhs, atol=0.0, rtol=1e-12, throw=False).mean

    params = (jnp.asarray(0.3), b)
    ref = jax.grad(loss)(params, reference=True)
    # A as a matvec closing over the lengthscale (the dense-array case is tested for problinsolve).
    g = jax.grad(loss)(params, use_matvec=True)
    np.testing.assert_allclose(g[0], ref[0], rtol=1e-7)
    np.testing.assert_allclose(g[1], ref[1], rtol=1e-7, atol=1e-9)


def test_indefinite_matrix_is_reported_and_raises():
    eigenvalues = jnp.linspace(1.0, 5.0, N)
    # Indefinite in the first direction: p0 = b with b^T A b < 0.
    A1 = jnp.diag(eigenvalues.at[1].set(-10.0))
    b1 = jnp.zeros(N).at[1].set(1.0).at[0].set(1.0)
    # Indefinite in a direction CG only reaches after a few steps.
    A2 = jnp.diag(eigenvalues.at[-1].set(-0.5))
    for A, b in ((A1, b1), (A2, jnp.ones(N))):
        res = linalg.bayescg(A, b, throw=False)
        assert not bool(res.converged)
        assert res.result == linalg.RESULTS.indefinite
        assert bool(jnp.all(jnp.isfinite(res.mean))) and bool(jnp.all(jnp.isfinite(res.std)))
    with pytest.raises(RuntimeError, match="not symmetric positive definite"):
        linalg.bayescg(A1, b1)


def test_nonfinite_inside_jit_is_reported_not_silent(spd):
    b = spd.b.at[3].set(jnp.nan)
    res = jax.jit(lambda b: linalg.bayescg(spd.A, b, throw=False))(b)
    assert res.result == linalg.RESULTS.nonfinite
    assert not bool(res.converged)
    with pytest.raises(RuntimeError, match="NaN or inf"):
        linalg.bayescg(lambda v: spd.A @ v + jnp.nan * v[0], spd.b)


def test_lineax_solver_matches_bayescg_and_differentiates(spd):
    op = lx.MatrixLinearOperator(spd.A, lx.positive_semidefinite_tag)
    solver = linalg.BayesCG(rtol=1e-10, atol=0.0)
    sol = lx.linear_solve(op, spd.b, solver=solver)
    res = linalg.bayescg(spd.A, spd.b, rtol=1e-10, atol=0.0, throw=False)
    np.testing.assert_allclose(sol.value, res.mean, atol=1e-12)
    np.testing.assert_allclose(sol.stats["cov_factor"], res.cov.factor, atol=1e-12)
    assert int(sol.stats["num_steps"]) == int(res.num_iterations)
    w = jnp.arange(N, dtype=jnp.float64)
    grad = jax.grad(lambda b: w @ lx.linear_solve(op, b, solver=solver).value)(spd.b)
    np.testing.assert_allclose(grad, jnp.linalg.solve(spd.A, w), rtol=1e-8)
    with pytest.raises(ValueError, match="positive_semidefinite_tag"):
        lx.linear_solve(lx.MatrixLinearOperator(spd.A), spd.b, solver=solver)
    with pytest.raises(ValueError, match="num_post_iterations"):
        linalg.BayesCG(rtol=1e-6, atol=1e-6, num_post_iterations=0)


def test_exact_convergence_gives_zero_covariance_not_nan():
    # A = 2 I: the first step is exact (alpha = 1/2), so the residual is exactly zero and the
    # post-iterations must contribute zero columns, not 0/0.
    A = 2.0 * jnp.eye(N)
    b = jnp.cos(jnp.arange(float(N)))
    res = linalg.bayescg(A, b, atol=0.0, rtol=0.0, throw=False)
    assert res.result == linalg.RESULTS.successful and bool(res.converged)
    assert int(res.num_iterations) == 1
    np.testing.assert_array_equal(res.cov.factor, 0.0)
    np.testing.assert_allclose(res.mean, b / 2, rtol=1e-15)
    # Three distinct eigenvalues: CG converges in three steps; later steps are round-off.
    A3 = jnp.diag(jnp.tile(jnp.array([1.0, 2.0, 3.0]), N)[:N])
    res3 = linalg.bayescg(A3, jnp.ones(N), atol=1e-12, rtol=0.0, throw=False)
    assert int(res3.num_iterations) == 3 and bool(res3.converged)
    assert bool(jnp.all(jnp.isfinite(res3.std))) and float(jnp.max(res3.std)) < 1e-10
    zero = linalg.bayescg(A, jnp.zeros(N), throw=False)
    assert int(zero.num_iterations) == 0 and bool(zero.converged)
    np.testing.assert_array_equal(zero.mean, 0.0)
    np.testing.assert_array_equal(zero.std, 0.0)
