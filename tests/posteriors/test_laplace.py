"""Laplace posteriors of a small network: the posterior algebra against dense references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from probnum_jax.posteriors import curvature, laplace

DELTA = 0.7
RANK = 8


@pytest.fixture(scope="module")
def net(mlp_problem):
    return mlp_problem


def dense_precision(net, post, hessian):
    """The posterior precision [p, p] built from the curvature module (validated elsewhere)."""
    p = net.flat.size
    if hessian == "full":
        return np.asarray(curvature.ggn_dense(net.model_fn, net.params, net.x, net.y)) + DELTA * np.eye(p)
    if hessian == "diag":
        g = np.asarray(jax.flatten_util.ravel_pytree(curvature.ggn_diag(net.model_fn, net.params, net.x, net.y))[0])
        return np.diag(g + DELTA)
    if hessian == "kfac":
        is_kf = lambda z: isinstance(z, curvature.KroneckerFactors)  # noqa: E731
        factors = jax.tree.leaves(curvature.kfac(net.model_fn, net.params, net.x, net.y), is_leaf=is_kf)
        return scipy.linalg.block_diag(*[np.asarray(k.to_dense()) for k in factors]) + DELTA * np.eye(p)
    u, lam = np.asarray(post.eigvecs), np.asarray(post.eigvals)
    return (u * lam) @ u.T + DELTA * np.eye(p)


def check_posterior(net, hessian, *, samples):
    post = laplace.fit(net.model_fn, net.params, (net.x, net.y), hessian=hessian, prior_precision=DELTA, rank=RANK)
    precision = dense_precision(net, post, hessian)
    cov = np.linalg.inv(precision)
    # log det and the marginal likelihood
    logdet = np.linalg.slogdet(precision)[1]
    assert float(post.log_det_precision(post.prior_precision, post.sigma_noise)) == pytest.approx(logdet, rel=1e-9)
    theta = np.asarray(net.flat)
    loss = float(np.sum(jax.vmap(net.sample_loss, (None, 0, 0))(net.params, net.x, net.y)))
    expected = -loss - 0.5 * (logdet - theta.size * np.log(DELTA) + DELTA * theta @ theta)
    assert float(laplace.log_marginal_likelihood(post)) == pytest.approx(expected, rel=1e-9)
    # the linearised predictive covariance J Sigma J^T
    x_test = jnp.concatenate([net.x[:2], 2.0 * net.x[2:4]])
    mean, f_cov = laplace.glm_predictive(post, x_test)
    jac = jax.vmap(lambda xi: jax.jacobian(lambda w: net.model_fn(net.unravel(w), xi[None])[0])(net.flat))(x_test)
    np.testing.assert_allclose(f_cov, np.einsum("ncp,pq,ndq->ncd", jac, cov, jac), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(mean, net.model_fn(net.params, x_test), rtol=1e-12)
    if samples:
        draws = post.sample(jax.random.key(0), 20000)
        flat = np.asarray(jax.vmap(lambda t: jax.flatten_util.ravel_pytree(t)[0])(draws))
        scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
        # Monte-Carlo error of a covariance entry relative to sqrt(var_i var_j) is ~ 1 / sqrt(20000).
        assert np.max(np.abs(np.cov(flat.T) - cov) / scale) < 0.05
        np.testing.assert_allclose(flat.mean(0), theta, atol=0.05 * np.sqrt(np.diag(cov)).max())
    return post


def test_kfac_posterior(net):
    check_posterior(net, "kfac", samples=True)


@pytest.mark.slow
@pytest.mark.parametrize("hessian", ["full", "diag", "lowrank"])
def test_other_posteriors(net, hessian):
    check_posterior(net, hessian, samples=hessian == "lowrank")


def test_lanczos_finds_the_leading_eigenpairs(net):
    post = laplace.fit(net.model_fn, net.params, (net.x, net.y), hessian="lowrank", prior_precision=DELTA, rank=RANK)
    ggn = np.asarray(curvature.ggn_dense(net.model_fn, net.params, net.x, net.y))
    eigvals = np.linalg.eigvalsh(ggn)[::-1][:RANK]
    np.testing.assert_allclose(post.eigvals, eigvals, rtol=1e-6, atol=1e-10 * eigvals[0])
    u = np.asarray(post.eigvecs)
    np.testing.assert_allclose(u.T @ u, np.eye(RANK), atol=1e-8)
    np.testing.assert_allclose(ggn @ u, u * eigvals, atol=1e-6 * eigvals[0])


@pytest.mark.slow
def test_float32(net):
    post64 = laplace.fit(net.model_fn, net.params, (net.x, net.y), hessian="kfac", prior_precision=DELTA)
    params32 = jax.tree.map(lambda a: a.astype(jnp.float32), net.params)
    x32 = net.x.astype(jnp.float32)
    post32 = laplace.fit(net.model_fn, params32, (x32, net.y), hessian="kfac", prior_precision=DELTA)
    assert post32.sigma_noise.dtype == jnp.float32
    lml32, lml64 = laplace.log_marginal_likelihood(post32), laplace.log_marginal_likelihood(post64)
    assert float(lml32) == pytest.approx(float(lml64), rel=1e-5)
    probs32 = laplace.predict(post32, x32)
    assert probs32.dtype == jnp.float32
    np.testing.assert_allclose(probs32, laplace.predict(post64, net.x), rtol=1e-4, atol=1e-6)
