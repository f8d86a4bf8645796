"""The linear-system test problems against independent constructions (NumPy, SciPy)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse
import scipy.spatial.distance

from probnum_jax.problems._linear_systems import (
    poisson_2d_eigenvalues,
    poisson_2d_matvec,
    random_sparse_spd_matrix,
    random_spd_matrix,
    rbf_gram_matrix,
)


def test_random_spd_matrix_has_the_chosen_spectrum():
    eigenvalues = jnp.logspace(-2, 3, 30)
    A = random_spd_matrix(jax.random.key(0), eigenvalues)
    np.testing.assert_allclose(A, A.T, atol=1e-12)
    np.testing.assert_allclose(np.linalg.eigvalsh(np.asarray(A)), np.sort(eigenvalues), rtol=1e-9)
    B = random_spd_matrix(jax.random.key(1), eigenvalues)
    assert float(jnp.abs(A - B).max()) > 1.0  # the eigenvectors are random
    with pytest.raises(ValueError, match="eigenvalues must be a 1-D array"):
        random_spd_matrix(jax.random.key(0), jnp.ones((3, 3)))


def test_random_sparse_spd_matrix_is_sparse_symmetric_positive_definite():
    n, nnz = 60, 3
    A = random_sparse_spd_matrix(jax.random.key(2), n, nnz_per_row=nnz, diagonal_margin=0.5)
    dense = np.asarray(A.todense())
    np.testing.assert_allclose(dense, dense.T, atol=1e-12)
    assert np.linalg.eigvalsh(dense).min() >= 0.5 - 1e-10
    assert np.count_nonzero(dense) <= n * (2 * nnz + 1)
    v = jnp.arange(float(n))
    np.testing.assert_allclose(A @ v, dense @ np.asarray(v), atol=1e-10)
    with pytest.raises(ValueError, match="diagonal_margin must be > 0"):
        random_sparse_spd_matrix(jax.random.key(2), n, diagonal_margin=0.0)
    with pytest.raises(ValueError, match="nnz_per_row must be >= 1"):
        random_sparse_spd_matrix(jax.random.key(2), n, nnz_per_row=0)


def test_poisson_matvec_matches_the_kronecker_sum_laplacian():
    m = 7
    h = 1.0 / (m + 1)
    T = scipy.sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(m, m))
    L = (scipy.sparse.kron(scipy.sparse.eye(m), T) + scipy.sparse.kron(T, scipy.sparse.eye(m))) / h**2
    matvec = poisson_2d_matvec(m)
    v = np.cos(np.arange(m * m, dtype=float))
    np.testing.assert_allclose(matvec(jnp.asarray(v)), L @ v, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.eigvalsh(L.toarray()), poisson_2d_eigenvalues(m), rtol=1e-10)
    assert matvec(jnp.ones(m * m, jnp.float32)).dtype == jnp.float32
    with pytest.raises(ValueError, match="expects vectors of shape"):
        matvec(jnp.ones(m))
    with pytest.raises(ValueError, match="grid_size must be >= 1"):
        poisson_2d_matvec(0)


def test_rbf_gram_matrix_matches_scipy_distances():
    x = np.random.default_rng(0).normal(size=(25, 3))
    K = rbf_gram_matrix(jnp.asarray(x), lengthscale=0.7, output_scale=1.3, nugget=1e-3)
    d2 = scipy.spatial.distance.cdist(x, x, "sqeuclidean")
    expected = 1.3**2 * np.exp(-d2 / (2 * 0.7**2)) + 1e-3 * np.eye(25)
    np.testing.assert_allclose(K, expected, rtol=1e-10, atol=1e-12)
    assert np.linalg.eigvalsh(np.asarray(K)).min() >= 1e-3 - 1e-9
    with pytest.raises(ValueError, match="nugget must be > 0"):
        rbf_gram_matrix(jnp.asarray(x), nugget=0.0)
    with pytest.raises(ValueError, match=r"x must have shape \[n, d\]"):
        rbf_gram_matrix(jnp.ones((2, 2, 2)))
