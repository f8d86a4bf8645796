"""problinsolve: solution- and matrix-based beliefs, policies, stopping, calibration, noise.

Most calls share one compiled configuration per (belief, policy): dense 40 x 40,
``maxiter=40``, ``throw=False``; the tolerances are traced.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from probnum_jax import linalg
from probnum_jax.problems._linear_systems import random_spd_matrix, rbf_gram_matrix

N = 40
KEY = jax.random.key(11)


def solve(A, b, belief, policy, **kwargs):
    kwargs.setdefault("maxiter", N)
    kwargs.setdefault("throw", False)
    return linalg.problinsolve(A, b, belief=belief, policy=policy, key=KEY, **kwargs)


@functools.cache
def _converged(belief, policy):
    A = random_spd_matrix(jax.random.key(0), jnp.logspace(0, 2, N))
    x = jax.random.normal(jax.random.key(1), (N,))
    return A, x, solve(A, A @ x, belief, policy, atol=0.0, rtol=1e-10)


@pytest.mark.parametrize("belief", ["matrix", "solution"])
@pytest.mark.parametrize("policy", ["cg", "random"])
def test_converges_to_the_solution(belief, policy):
    A, x, res = _converged(belief, policy)
    x_ref = scipy.linalg.solve(np.asarray(A), np.asarray(A @ x), assume_a="pos")
    assert bool(res.converged) and res.result == linalg.RESULTS.successful
    assert int(res.num_iterations) <= N
    np.testing.assert_allclose(res.mean, x_ref, atol=1e-7 * np.abs(x_ref).max())
    assert float(res.residual_norm) <= 1e-8 * float(jnp.linalg.norm(A @ x))
    assert bool(jnp.all(jnp.isfinite(res.std)))


def test_matrix_beliefs_after_n_random_directions_are_exact():
    """After n linearly independent directions the beliefs about A and A^{-1} are A and A^{-1}."""
    A, x, res = _converged("matrix", "random")
    assert int(res.num_iterations) == N

    @jax.jit
    def beliefs(posterior, b):
        return (posterior.matrix_belief.mean.as_matrix(), posterior.inverse_belief.mean.as_matrix(),
                posterior.inverse_belief.vector_belief(b)[0])

    A_mean, H_mean, hb = beliefs(res.matrix_posterior, A @ x)
    np.testing.assert_allclose(A_mean, A, atol=1e-9 * float(jnp.abs(A).max()))
    np.testing.assert_allclose(H_mean, np.linalg.inv(A), atol=1e-9)
    np.testing.assert_allclose(hb, x, atol=1e-9)
    assert float(jnp.max(res.std)) < 1e-6  # nothing left unexplored


def test_matrix_based_cg_policy_reproduces_cg_and_learns_the_krylov_space(spd, cg_iterates):
    """Hennig (2015): the CG policy gives the CG iterates, and the posterior means match A
    and A^{-1} on the Krylov space K_m(A, b) explored so far (A_k S = Y, H_k Y = S)."""
    res = solve(spd.A, spd.b, "matrix", "cg", atol=0.0, rtol=0.05)  # stops early, at some m
    m = int(res.num_iterations)
    assert 5 <= m < N // 2
    reference = cg_iterates(spd.A, spd.b, m)
    np.testing.assert_allclose(res.mean, reference[m], atol=1e-9 * np.linalg.norm(reference[m]))
    krylov = [spd.b]
    for _ in range(m - 1):
        krylov.append(spd.A @ krylov[-1])
    K, _ = np.linalg.qr(np.stack(krylov, axis=1))  # orthonormal basis of K_m(A, b)
    A_K = np.asarray(spd.A) @ K

    @jax.jit
    def apply_means(posterior, K, A_K):
        A_belief, H_belief = posterior.matrix_belief, posterior.inverse_belief
        return (jax.vmap(A_belief.mean.mv, 1, 1)(K), jax.vmap(H_belief.mean.mv, 1, 1)(A_K),
                H_belief.factors[0].diagonal())

    A_mean, H_mean, h_variance = apply_means(res.matrix_posterior, jnp.asarray(K), jnp.asarray(A_K))
    np.testing.assert_allclose(A_mean, A_K, atol=1e-7 * np.abs(A_K).max())
    np.testing.assert_allclose(H_mean, K, atol=1e-6)
    # ... but not on the rest of the space: the belief about A^{-1} is still uncertain.
    assert float(jnp.max(h_variance)) > 1e-3


def test_posterior_mean_of_inverse_applied_to_b_matches_the_solution():
    A = rbf_gram_matrix(jnp.linspace(0.0, 1.0, N)[:, None], lengthscale=0.3, nugget=1e-2)
    x = jax.random.normal(jax.random.key(2), (N,))
    res = solve(A, A @ x, "matrix", "cg", atol=0.0, rtol=1e-8)
    assert bool(res.converged) and int(res.num_iterations) < N  # before exploring everything
    hb, _ = res.inverse_belief.vector_belief(A @ x)
    np.testing.assert_allclose(hb, res.mean, atol=1e-6 * float(jnp.linalg.norm(x)))
    x_ref = scipy.linalg.solve(np.asarray(A), np.asarray(A @ x), assume_a="pos")
    np.testing.assert_allclose(hb, x_ref, atol=1e-5 * float(jnp.linalg.norm(x)))


def test_solution_belief_with_inverse_prior_gives_cg_iterates(spd, cg_iterates):
    """Cockayne et al. (2019, Sec. 4.1): with Sigma0 = A^{-1} the BayesCG mean is the CG iterate."""
    m = 12
    res = solve(spd.A, spd.b, "solution", "cg", maxiter=m, atol=0.0, rtol=0.0,
                prior_inverse=jnp.linalg.inv(spd.A), calibration="none", throw=True)
    reference = cg_iterates(spd.A, spd.b, m)
    np.testing.assert_allclose(res.mean, reference[m], atol=1e-9 * np.linalg.norm(reference[m]))
    # The posterior covariance is A^{-1} - S (S^T A S)^{-1} S^T: zero A-norm variance on K_m.
    S = jnp.asarray(np.diff(reference, axis=0).T)  # the CG steps span K_m(A, b)
    AS = spd.A @ S
    np.testing.assert_allclose(jax.vmap(res.cov.mv, 1, 1)(AS), 0.0, atol=1e-8)


def test_solution_belief_with_random_directions_is_calibrated(spd):
    """x ~ N(0, I), b = A x: for directions chosen independently of b the Gaussian posterior is
    exactly calibrated, so Z ~ chi^2_{n-k} and RMS(error) = RMS(std)."""
    k = 10
    X = jax.random.normal(jax.random.key(5), (200, N))

    def one(x):
        res = solve(spd.A, spd.A @ x, "solution", "random", maxiter=k, calibration="none")
        stats = linalg.calibration_statistics(res, spd.A, x)
        return jnp.stack([stats.z, stats.z_mean, jnp.mean((x - res.mean) ** 2), jnp.mean(res.std**2)])

    z, z_mean, e2, v2 = np.asarray(jax.jit(jax.vmap(one))(X)).T
    rms = np.sqrt(e2.mean() / v2.mean())
    print(f"solution/random: mean Z = {z.mean():.2f} (expected {N - k}), RMS ratio {rms:.3f}")
    assert np.all(z_mean == N - k)
    assert abs(z.mean() - (N - k)) < 4 * np.sqrt(2 * (N - k) / len(X))
    assert 0.9 < rms < 1.1


def test_matrix_belief_rayleigh_calibration_on_a_kernel_matrix():
    """Early-stopped matrix-based solves on a Gram matrix: RMS(error)/RMS(std) within [0.1, 10]."""
    n, k = N, 8
    A = rbf_gram_matrix(jnp.linspace(0.0, 1.0, n)[:, None], lengthscale=0.15, nugget=1e-2)
    X = jax.random.normal(jax.random.key(6), (100, n))

    def one(x):
        res = solve(A, A @ x, "matrix", "cg", maxiter=k)
        stats = linalg.calibration_statistics(res, A, x)
        return jnp.stack([stats.z, stats.z_mean, stats.s, stats.s_mean, jnp.mean((x - res.mean) ** 2),
                          jnp.mean(res.std**2)])

    z, z_mean, s, s_mean, e2, v2 = np.asarray(jax.jit(jax.vmap(one))(X)).T
    rms = np.sqrt(e2.mean() / v2.mean())
    print(f"matrix/cg Rayleigh: RMS ratio {rms:.3f}, mean Z {z.mean():.1f} (rank {z_mean.mean():.0f}), "
          f"S/E[S] {s.mean() / s_mean.mean():.3f}")
    assert 0.1 <= rms <= 10.0


def test_posterior_contraction_stopping():
    A = rbf_gram_matrix(jnp.linspace(0.0, 1.0, N)[:, None], lengthscale=0.3, nugget=1e-2)
    b = A @ jax.random.normal(jax.random.key(2), (N,))
    tol = 1e-4
    res = solve(A, b, "matrix", "cg", stopping="contraction", atol=tol, rtol=0.0)
    assert bool(res.converged)
    # The returned covariance satisfies the criterion the loop checked, before the residual
    # criterion at the same tolerance would have stopped.
    assert float(res.cov.trace()) <= tol**2 * (1 + 1e-6)
    assert int(res.num_iterations) < N
    assert float(res.residual_norm) > 1e-8
    # Solution belief with a fixed prior scale c: trace Cov(x) = c (n - k), so the
    # criterion trace <= atol^2 = c (n - 9.5) stops after exactly k = 10 directions.
    c = 1e-6
    sol = solve(A, b, "solution", "cg", stopping="contraction", calibration=c, atol=np.sqrt(c * (N - 9.5)), rtol=0.0)
    assert int(sol.num_iterations) == 10 and bool(sol.converged)
    np.testing.assert_allclose(float(sol.cov.trace()), c * (N - 10), rtol=1e-8)


def test_noisy_matrix_vector_products_widen_the_posterior(spd):
    """A is only seen through A + E, E ~ N(0, eps^2 A ⊗_s A): with noise_std = eps the
    posterior covers the error against the true solution; without, it is overconfident."""
    eps = 0.02
    L = jnp.linalg.cholesky(spd.A)
    G = jax.random.normal(jax.random.key(9), (N, N))
    noisy = spd.A + eps * L @ ((G + G.T) / 2) @ L.T
    ratios = {}
    for noise_std in (None, eps):
        res = solve(noisy, spd.b, "matrix", "cg", noise_std=noise_std, atol=0.0, rtol=1e-10)
        ratios[noise_std] = float(jnp.sqrt(jnp.mean((spd.x - res.mean) ** 2) / jnp.mean(res.std**2)))
    print(f"noisy matvecs: RMS(err)/RMS(std) = {ratios[eps]:.3f} with noise_std, {ratios[None]:.3g} without")
    assert 0.33 < ratios[eps] < 3.0
    assert ratios[None] > 100.0


def test_prior_inverse_acts_as_preconditioner(spd):
    d = jnp.logspace(0, 1.5, N)
    A = d[:, None] * spd.A * d[None, :]
    b = A @ spd.x
    plain = solve(A, b, "matrix", "cg", atol=0.0, rtol=1e-8)
    jacobi = solve(A, b, "matrix", "cg", atol=0.0, rtol=1e-8, prior_inverse=1.0 / jnp.diag(A))
    assert bool(jacobi.converged)
    assert int(jacobi.num_iterations) < int(plain.num_iterations)
    np.testing.assert_allclose(jacobi.mean, spd.x, atol=1e-5)
    assert bool(jnp.all(jnp.isfinite(jacobi.std)))


def test_vmap_equals_separate_solves(spd):
    B = jax.random.normal(jax.random.key(4), (3, N))
    f = lambda b: solve(spd.A, b, "matrix", "cg", rtol=1e-4)  # noqa: E731
    batched, stds = jax.jit(jax.vmap(lambda b: (f(b), f(b).std)))(B)
    for i in range(3):
        single = f(B[i])
        np.testing.assert_allclose(batched.mean[i], single.mean, atol=1e-10)
        np.testing.assert_allclose(stds[i], single.std, atol=1e-10)
        assert int(batched.num_iterations[i]) == int(single.num_iterations)


def test_float32_stays_finite(spd):
    A, b = spd.A.astype(jnp.float32), spd.b.astype(jnp.float32)

    @jax.jit
    def run(A, b):
        return [(r.mean, r.std, r.converged) for r in
                (solve(A, b, "matrix", "cg", rtol=1e-5), solve(A, b, "solution", "cg", rtol=1e-5))]

    for mean, std, converged in run(A, b):
        assert mean.dtype == jnp.float32 and std.dtype == jnp.float32
        assert bool(jnp.all(jnp.isfinite(mean))) and bool(jnp.all(jnp.isfinite(std)))
        assert bool(converged)
        np.testing.assert_allclose(mean, spd.x, atol=2e-3)


def test_gradients_by_implicit_differentiation_match_dense_solve():
    x = jnp.linspace(0.0, 1.0, N)[:, None]
    b = jnp.sin(3 * x[:, 0])
    w = jnp.cos(jnp.arange(float(N)))

    def loss(params, reference=False):
        ell, rhs = params
        K = rbf_gram_matrix(x, lengthscale=ell, nugget=0.1)
        if reference:
            return w @ jnp.linalg.solve(K, rhs)
        return w @ solve(K, rhs, "matrix", "cg", atol=0.0, rtol=1e-12).mean

    params = (jnp.asarray(0.3), b)
    ours, ref = jax.grad(loss)(params), jax.grad(loss)(params, reference=True)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-6)
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("belief", ["matrix", "solution"])
def test_indefinite_matrix_is_reported(belief):
    A = jnp.diag(jnp.linspace(1.0, 5.0, N).at[1].set(-10.0))
    b = jnp.zeros(N).at[0].set(1.0).at[1].set(1.0)
    res = solve(A, b, belief, "cg")
    assert res.result == linalg.RESULTS.indefinite
    assert not bool(res.converged)
    assert bool(jnp.all(jnp.isfinite(res.mean))) and bool(jnp.all(jnp.isfinite(res.std)))
    if belief == "solution":
        with pytest.raises(RuntimeError, match="not symmetric positive definite"):
            solve(A, b, belief, "cg", throw=True)
