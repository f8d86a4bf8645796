"""The square-root Gaussian operations against dense covariance formulas (numpy / scipy)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from probnum_jax import randvars

M, D = 3, 2  # state size per block, number of columns / blocks


def _random_factor(rng, n):
    a = rng.standard_normal((n, n))
    return np.linalg.cholesky(a @ a.T + 0.5 * np.eye(n))


def _random_rv(kind, rng):
    """A structured Gaussian, its dense (mean, cov), and a function lifting a per-block map."""
    if kind == "dense":
        n = M * D
        L = _random_factor(rng, n)
        rv = randvars.DenseNormal(jnp.asarray(rng.standard_normal(n)), jnp.asarray(L))
        return rv, np.asarray(rv.mean), L @ L.T
    if kind == "isotropic":
        L = _random_factor(rng, M)
        rv = randvars.IsotropicNormal(jnp.asarray(rng.standard_normal((M, D))), jnp.asarray(L))
        # row-major flattening of [M, D]: covariance kron(S, I_D)
        return rv, np.asarray(rv.mean).reshape(-1), np.kron(L @ L.T, np.eye(D))
    Ls = np.stack([_random_factor(rng, M) for _ in range(D)])
    rv = randvars.BlockDiagNormal(jnp.asarray(rng.standard_normal((D, M))), jnp.asarray(Ls))
    return rv, np.asarray(rv.mean).reshape(-1), scipy.linalg.block_diag(*[L @ L.T for L in Ls])


def _random_map(kind, rng, rows):
    """A structured linear map and its dense matrix."""
    if kind == "dense":
        a = rng.standard_normal((rows * D, M * D))
        return jnp.asarray(a), a
    if kind == "isotropic":
        a = rng.standard_normal((rows, M))
        return jnp.asarray(a), np.kron(a, np.eye(D))
    a = rng.standard_normal((D, rows, M))
    return jnp.asarray(a), scipy.linalg.block_diag(*a)


def _random_noise(kind, rng, rows):
    if kind == "dense":
        L = _random_factor(rng, rows * D)
        return jnp.asarray(L), L @ L.T
    if kind == "isotropic":
        L = _random_factor(rng, rows)
        return jnp.asarray(L), np.kron(L @ L.T, np.eye(D))
    Ls = np.stack([_random_factor(rng, rows) for _ in range(D)])
    return jnp.asarray(Ls), scipy.linalg.block_diag(*[L @ L.T for L in Ls])


def _dense(rv):
    mean = np.asarray(rv.mean).reshape(-1)
    chol = np.asarray(rv.cholesky)
    if isinstance(rv, randvars.IsotropicNormal):
        return mean, np.kron(chol @ chol.T, np.eye(rv.mean.shape[1]))
    if isinstance(rv, randvars.BlockDiagNormal):
        return mean, scipy.linalg.block_diag(*[L @ L.T for L in chol])
    return mean, chol @ chol.T


KINDS = ["dense", "isotropic", "blockdiag"]


@pytest.mark.parametrize("kind", KINDS)
def test_predict_matches_dense_formula(kind):
    rng = np.random.default_rng(0)
    rv, m, P = _random_rv(kind, rng)
    A, A_dense = _random_map(kind, rng, M)
    Q, Q_dense = _random_noise(kind, rng, M)
    out = randvars.predict(rv, A, Q)
    mean, cov = _dense(out)
    np.testing.assert_allclose(mean, A_dense @ m, rtol=1e-10)
    np.testing.assert_allclose(cov, A_dense @ P @ A_dense.T + Q_dense, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("noisy", [True, False])
def test_update_matches_kalman_formula(kind, noisy):
    rng = np.random.default_rng(1)
    rv, m, P = _random_rv(kind, rng)
    H, H_dense = _random_map(kind, rng, 1)
    R, R_dense = _random_noise(kind, rng, 1) if noisy else (None, 0.0)
    data_dense = rng.standard_normal(H_dense.shape[0])
    data = jnp.asarray(data_dense).reshape(
        {"dense": (D,), "isotropic": (1, D), "blockdiag": (D, 1)}[kind]
    )
    post, marginal = randvars.update(rv, H, data, R)
    S = H_dense @ P @ H_dense.T + R_dense
    K = P @ H_dense.T @ np.linalg.inv(S)
    mean, cov = _dense(post)
    np.testing.assert_allclose(mean, m + K @ (data_dense - H_dense @ m), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cov, P - K @ S @ K.T, rtol=1e-9, atol=1e-10)
    expected = scipy.stats.multivariate_normal(H_dense @ m, S).logpdf(data_dense)
    np.testing.assert_allclose(float(marginal.logpdf(data)), expected, rtol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_backward_conditional_and_marginalise_recover_the_joint(kind):
    """RTS: p(x | x') from the joint of x and x' = A x + b + noise; marginalising gives p(x) back."""
    rng = np.random.default_rng(2)
    rv, m, P = _random_rv(kind, rng)
    A, A_dense = _random_map(kind, rng, M)
    Q, Q_dense = _random_noise(kind, rng, M)
    b = jnp.asarray(rng.standard_normal(rv.mean.shape))
    predicted, cond = randvars.backward_conditional(rv, A, Q, b)
    pm, pP = _dense(predicted)
    np.testing.assert_allclose(pm, A_dense @ m + np.asarray(b).reshape(-1), rtol=1e-10)
    np.testing.assert_allclose(pP, A_dense @ P @ A_dense.T + Q_dense, rtol=1e-10)
    G = P @ A_dense.T @ np.linalg.inv(pP)
    x_next = rng.standard_normal(pm.shape)
    cm, cP = _dense(cond(jnp.asarray(x_next).reshape(rv.mean.shape)))
    np.testing.assert_allclose(cm, m + G @ (x_next - pm), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cP, P - G @ pP @ G.T, rtol=1e-9, atol=1e-10)
    back_m, back_P = _dense(randvars.marginalise(predicted, cond))
    np.testing.assert_allclose(back_m, m, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(back_P, P, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_compose_equals_two_marginalisations(kind):
    rng = np.random.default_rng(3)
    rv, _, _ = _random_rv(kind, rng)
    conds = []
    for _ in range(2):
        A, _ = _random_map(kind, rng, M)
        Q, _ = _random_noise(kind, rng, M)
        _, c = randvars.backward_conditional(rv, A, Q)
        conds.append(c)
    two_step = randvars.marginalise(randvars.marginalise(rv, conds[1]), conds[0])
    one_step = randvars.marginalise(rv, conds[0].compose(conds[1]))
    for a, b in zip(_dense(two_step), _dense(one_step)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_logpdf_and_samples_match_scipy(kind):
    rng = np.random.default_rng(4)
    rv, m, P = _random_rv(kind, rng)
    x = rng.standard_normal(m.shape)
    expected = scipy.stats.multivariate_normal(m, P).logpdf(x)
    np.testing.assert_allclose(float(rv.logpdf(jnp.asarray(x).reshape(rv.mean.shape))), expected, rtol=1e-10)
    draws = np.asarray(rv.sample(jax.random.PRNGKey(0), (20_000,))).reshape(20_000, -1)
    np.testing.assert_allclose(draws.mean(0), m, atol=5 * np.sqrt(np.diag(P).max() / 20_000))
    np.testing.assert_allclose(np.cov(draws.T), P, atol=0.1 * np.abs(P).max())
    np.testing.assert_allclose(np.asarray(rv.std).reshape(-1), np.sqrt(np.diag(P)), rtol=1e-10)


def test_triangularize_is_lower_triangular_square_root():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 9))
    L = np.asarray(randvars.triangularize(jnp.asarray(a)))
    np.testing.assert_allclose(L @ L.T, a @ a.T, rtol=1e-10)
    np.testing.assert_allclose(L, np.tril(L))


def test_square_root_update_stays_positive_semidefinite_in_float32():
    """A nearly exact observation of an ill-scaled Gaussian: the factor form cannot go indefinite."""
    scales = np.logspace(-6, 6, 6).astype(np.float32)
    rv = randvars.DenseNormal(jnp.zeros(6, jnp.float32), jnp.diag(jnp.asarray(scales)))
    H = jnp.ones((1, 6), jnp.float32)
    post, _ = randvars.update(rv, H, jnp.ones(1, jnp.float32), jnp.full((1, 1), 1e-6, jnp.float32))
    assert post.cholesky.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(post.cholesky)))
    cov = np.asarray(post.cholesky, np.float64) @ np.asarray(post.cholesky, np.float64).T
    assert np.linalg.eigvalsh(cov).min() >= -1e-12 * np.abs(cov).max()
