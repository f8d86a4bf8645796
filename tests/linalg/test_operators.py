"""Structured operators: low-rank-plus-prior algebra, the growing basis, symmetric Kronecker beliefs."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from probnum_jax import linalg
from probnum_jax.linalg._matrix_based import SymmetricKroneckerNormal
from probnum_jax.linalg._operators import GrowingBasis, concatenate, orthonormalise

N = 7


def _operator(middle_dense: bool, with_prior: bool):
    key1, key2, key3 = jax.random.split(jax.random.key(0), 3)
    factor = jax.random.normal(key1, (N, 3))
    middle = jax.random.normal(key2, (3,))
    if middle_dense:
        m = jax.random.normal(key3, (3, 3))
        middle = m + m.T
    prior = lx.MatrixLinearOperator(jnp.diag(jnp.arange(1.0, N + 1))) if with_prior else None
    return linalg.PriorPlusLowRank(prior, jnp.asarray(0.7), factor, middle)


@pytest.mark.parametrize("middle_dense", [False, True])
@pytest.mark.parametrize("with_prior", [False, True])
def test_prior_plus_low_rank_matches_its_dense_matrix(middle_dense, with_prior):
    op = _operator(middle_dense, with_prior)
    middle = op.middle if middle_dense else jnp.diag(op.middle)
    dense = op.factor @ middle @ op.factor.T
    if with_prior:
        dense = dense + 0.7 * jnp.diag(jnp.arange(1.0, N + 1))
    v = jnp.cos(jnp.arange(float(N)))
    np.testing.assert_allclose(op.as_matrix(), dense, atol=1e-12)
    np.testing.assert_allclose(op.mv(v), dense @ v, atol=1e-12)
    np.testing.assert_allclose(op @ v, dense @ v, atol=1e-12)
    np.testing.assert_allclose(op.diagonal(), jnp.diag(dense), atol=1e-12)
    np.testing.assert_allclose(op.trace(), jnp.trace(dense), atol=1e-12)
    np.testing.assert_allclose(op.as_lineax().mv(v), dense @ v, atol=1e-12)


def test_weighted_sum_of_operators():
    a, b = _operator(False, True), _operator(True, True)
    b = linalg.PriorPlusLowRank(a.prior, b.prior_scale, b.factor, b.middle)
    total = concatenate([a, b], [2.0, -0.5])
    np.testing.assert_allclose(total.as_matrix(), 2.0 * a.as_matrix() - 0.5 * b.as_matrix(), atol=1e-12)


def test_growing_basis_products_and_orthonormalisation():
    capacity = 40  # the blockwise loop (small buffers use one dense product)
    n = 9
    vectors = jax.random.normal(jax.random.key(1), (4, n))
    M = jnp.diag(jnp.arange(1.0, n + 1))  # inner product <u, v> = u^T M v

    @jax.jit
    def build(vectors):
        basis = GrowingBasis.empty(capacity, n, jnp.float64, block=4)
        images = GrowingBasis.empty(capacity, n, jnp.float64, block=4)
        reconstructions = []
        for v in vectors:
            q, mq, coefficients, norm = orthonormalise(v, basis, images, M @ v, images)
            reconstructions.append(basis.combine(coefficients) + norm * q)  # v = basis^T c + norm q
            basis = basis.append(q, jnp.asarray(True))
            images = images.append(mq, jnp.asarray(True))
        c = jnp.arange(1.0, basis.rows.shape[0] + 1)
        rejected = basis.append(vectors[0], jnp.asarray(False))
        return (basis.rows, jnp.stack(reconstructions), basis.project(vectors[0]), basis.combine(c),
                rejected.count, rejected.rows)

    rows, reconstructions, projection, combination, rejected_count, rejected_rows = build(vectors)
    np.testing.assert_allclose(reconstructions, vectors, atol=1e-12)
    Q = rows[:4]
    np.testing.assert_allclose(Q @ M @ Q.T, jnp.eye(4), atol=1e-12)
    np.testing.assert_allclose(projection, rows @ vectors[0], atol=1e-12)
    np.testing.assert_allclose(combination, Q.T @ jnp.arange(1.0, 5.0), atol=1e-12)
    assert int(rejected_count) == 4
    np.testing.assert_array_equal(rejected_rows, rows)


def test_symmetric_kronecker_vector_belief_matches_monte_carlo():
    """Cov(X v) for X ~ N(M, W ⊗_s W) against samples X = M + L Z L^T, Z symmetric Gaussian."""
    n = 4
    key1, key2 = jax.random.split(jax.random.key(2))
    L = jnp.tril(jax.random.normal(key1, (n, n))) + 2 * jnp.eye(n)
    W = L @ L.T
    mean = linalg.PriorPlusLowRank(None, jnp.asarray(0.0), jnp.eye(n), jnp.arange(1.0, n + 1))
    factor = linalg.PriorPlusLowRank(lx.MatrixLinearOperator(W), jnp.asarray(1.0), jnp.zeros((n, 1)), jnp.zeros(1))
    belief = SymmetricKroneckerNormal(mean, (factor,), (jnp.asarray(1.0),))
    v = jnp.array([1.0, -2.0, 0.5, 1.0])
    mv, cov = belief.vector_belief(v)
    rng = np.random.default_rng(0)
    G = rng.standard_normal((50_000, n, n))
    Z = (G + np.swapaxes(G, 1, 2)) / 2  # Var(Z_ii) = 1, Var(Z_ij) = 1/2: Cov(vec Z) = I ⊗_s I
    Ln = np.asarray(L)
    samples = np.einsum("ij,sjk,lk,l->si", Ln, Z, Ln, np.asarray(v), optimize=True)
    expected = np.asarray(cov.as_matrix())
    np.testing.assert_allclose(mv, mean.as_matrix() @ v, atol=1e-12)
    np.testing.assert_allclose(np.cov(samples.T), expected, rtol=0.06, atol=0.06 * expected.max())
    variances = belief.entry_variances()
    np.testing.assert_allclose(variances, (jnp.outer(jnp.diag(W), jnp.diag(W)) + W**2) / 2, atol=1e-12)


def test_result_to_normal_reuses_randvars(spd):
    res = linalg.bayescg(spd.A, spd.b, maxiter=2, throw=False)
    normal = res.to_normal()
    np.testing.assert_allclose(normal.cov, res.cov.as_matrix(), atol=1e-12)
    draws = res.sample(jax.random.key(3), (4,))
    assert draws.shape == (4, spd.n)
    # Samples lie in mean + range(U): the Krylov posterior has rank d = 5.
    U = res.cov.factor
    centred = np.asarray(draws - res.mean)
    residual = centred - centred @ np.asarray(U) @ np.linalg.pinv(np.asarray(U))
    np.testing.assert_allclose(residual, 0.0, atol=1e-8 * np.abs(centred).max())
