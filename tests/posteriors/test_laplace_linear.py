"""Laplace on linear models, where closed forms exist: evidence, posterior, predictive."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from scipy.stats import multivariate_normal

from probnum_jax.posteriors import laplace

ALPHA, SIGMA = 2.0, 0.3


def linear_model(params, x):
    return x @ params["w"] + params["b"]


def evidence(x, y, prior_var, sigma):
    """Closed-form log evidence of Bayesian linear regression with design [1, x]."""
    design = np.concatenate([np.ones((x.shape[0], 1)), x], axis=1)
    cov = sigma**2 * np.eye(x.shape[0]) + design @ np.diag(prior_var) @ design.T
    return multivariate_normal(np.zeros(x.shape[0]), cov).logpdf(y[:, 0])


def posterior(x, y, prior_precision, sigma):
    """Exact posterior mean and covariance over (b, w)."""
    design = np.concatenate([np.ones((x.shape[0], 1)), x], axis=1)
    precision = design.T @ design / sigma**2 + np.diag(prior_precision)
    cov = np.linalg.inv(precision)
    return cov @ design.T @ y[:, 0] / sigma**2, cov


def as_params(theta):
    return {"b": jnp.asarray(theta[:1]), "w": jnp.asarray(theta[1:, None])}


@pytest.fixture(scope="module")
def blr():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    x = x - x.mean(0)  # centred: the GGN is block-diagonal in (b, w), so KFAC is exact too
    w_true = rng.normal(size=(3, 1))
    y = x @ w_true + 0.5 + SIGMA * rng.normal(size=(40, 1))
    mean, cov = posterior(x, y, np.full(4, ALPHA), SIGMA)
    return {
        "x": x,
        "y": y,
        "w_true": w_true,
        "params": as_params(mean),
        "cov": cov,
        "evidence": evidence(x, y, np.full(4, 1 / ALPHA), SIGMA),
    }


class _LazyFits(dict):
    """Fits on first use, so a test worker compiles only the structures it needs."""

    def __init__(self, blr):
        super().__init__()
        self.blr = blr

    def __missing__(self, hessian):
        data = (jnp.asarray(self.blr["x"]), jnp.asarray(self.blr["y"]))
        post = laplace.fit(
            linear_model,
            self.blr["params"],
            data,
            likelihood="regression",
            hessian=hessian,
            prior_precision=ALPHA,
            sigma_noise=SIGMA,
        )
        self[hessian] = post
        return post


@pytest.fixture(scope="module")
def blr_posts(blr):
    return _LazyFits(blr)


@pytest.mark.parametrize("hessian", ["full", "kfac", "lowrank"])
def test_log_marginal_likelihood_is_the_exact_evidence(blr, blr_posts, hessian):
    post = blr_posts[hessian]
    assert float(laplace.log_marginal_likelihood(post)) == pytest.approx(blr["evidence"], rel=1e-10)
    # The predictive is the exact Gaussian predictive of Bayesian linear regression.
    x_test = np.array([[0.3, -1.0, 2.0], [0.0, 0.0, 0.0]])
    mean, var = laplace.predict(post, jnp.asarray(x_test))
    design = np.concatenate([np.ones((2, 1)), x_test], axis=1)
    np.testing.assert_allclose(var[:, 0], np.einsum("nd,de,ne->n", design, blr["cov"], design) + SIGMA**2, rtol=1e-9)
    np.testing.assert_allclose(mean, linear_model(blr["params"], jnp.asarray(x_test)), rtol=1e-12)


def test_diagonal_log_marginal_likelihood(blr, blr_posts):
    design = np.concatenate([np.ones((40, 1)), blr["x"]], axis=1)
    theta = np.concatenate([np.asarray(blr["params"]["b"]), np.asarray(blr["params"]["w"])[:, 0]])
    residual = blr["y"][:, 0] - design @ theta
    loglik = -0.5 * residual @ residual / SIGMA**2 - 40 * np.log(SIGMA * np.sqrt(2 * np.pi))
    precision_diag = np.sum(design**2, 0) / SIGMA**2 + ALPHA
    expected = loglik - 0.5 * (np.sum(np.log(precision_diag)) - 4 * np.log(ALPHA) + ALPHA * theta @ theta)
    assert float(laplace.log_marginal_likelihood(blr_posts["diag"])) == pytest.approx(expected, rel=1e-10)


def test_marginal_likelihood_gradient_matches_the_evidence(blr, blr_posts):
    # At the MAP of the prior, d/d(alpha, sigma) of the Laplace evidence equals that of the exact one.
    post = blr_posts["full"]
    grad = jax.grad(lambda a, s: laplace.log_marginal_likelihood(post, a, s), argnums=(0, 1))(ALPHA, SIGMA)
    h = 1e-5
    d_alpha = (
        evidence(blr["x"], blr["y"], np.full(4, 1 / (ALPHA + h)), SIGMA)
        - evidence(blr["x"], blr["y"], np.full(4, 1 / (ALPHA - h)), SIGMA)
    ) / (2 * h)
    d_sigma = (
        evidence(blr["x"], blr["y"], np.full(4, 1 / ALPHA), SIGMA + h)
        - evidence(blr["x"], blr["y"], np.full(4, 1 / ALPHA), SIGMA - h)
    ) / (2 * h)
    assert float(grad[0]) == pytest.approx(d_alpha, rel=1e-5)
    assert float(grad[1]) == pytest.approx(d_sigma, rel=1e-5)


@pytest.mark.parametrize("structure", ["layerwise", "diagonal"])
def test_layerwise_and_diagonal_priors(blr, structure):
    prior_vec = np.array([0.5, 1.0, 3.0, 7.0])  # over (b, w1, w2, w3)
    if structure == "layerwise":
        prior_vec = np.array([0.5, 3.0, 3.0, 3.0])
        prior = jnp.array([0.5, 3.0])  # one per leaf: b, w
    else:
        prior = jnp.asarray(prior_vec)
    mean, _ = posterior(blr["x"], blr["y"], prior_vec, SIGMA)
    post = laplace.fit(
        linear_model,
        as_params(mean),
        (jnp.asarray(blr["x"]), jnp.asarray(blr["y"])),
        likelihood="regression",
        hessian="full",
        prior_precision=prior,
        sigma_noise=SIGMA,
    )
    expected = evidence(blr["x"], blr["y"], 1 / prior_vec, SIGMA)
    assert float(laplace.log_marginal_likelihood(post)) == pytest.approx(expected, rel=1e-10)


def laplace_objective_numpy(blr, alpha, sigma):
    """The Laplace log evidence at the fixed MAP, written with numpy."""
    design = np.concatenate([np.ones((40, 1)), blr["x"]], axis=1)
    theta = np.concatenate([np.asarray(blr["params"]["b"]), np.asarray(blr["params"]["w"])[:, 0]])
    residual = blr["y"][:, 0] - design @ theta
    loglik = -0.5 * residual @ residual / sigma**2 - 40 * np.log(sigma * np.sqrt(2 * np.pi))
    precision = design.T @ design / sigma**2 + alpha * np.eye(4)
    return loglik - 0.5 * (np.linalg.slogdet(precision)[1] - 4 * np.log(alpha) + alpha * theta @ theta)


def test_optimize_prior_precision_marglik(blr, blr_posts):
    tuned = laplace.optimize_prior_precision(blr_posts["full"], num_steps=300, tune_sigma_noise=True)
    res = scipy.optimize.minimize(
        lambda z: -laplace_objective_numpy(blr, np.exp(z[0]), np.exp(z[1])),
        np.log([ALPHA, SIGMA]),
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-12},
    )
    assert float(tuned.prior_precision[0]) == pytest.approx(np.exp(res.x[0]), rel=1e-3)
    assert float(tuned.sigma_noise) == pytest.approx(np.exp(res.x[1]), rel=1e-3)
    assert float(laplace.log_marginal_likelihood(tuned)) >= float(laplace.log_marginal_likelihood(blr_posts["full"]))


def test_gridsearch_minimises_validation_nll(blr, blr_posts):
    # Validation data far from the training data, drawn from the posterior
    # predictive of prior precision 0.05: the best grid value is interior.
    rng = np.random.default_rng(1)
    x_val = 4.0 * rng.normal(size=(60, 3))
    mean_true, cov_true = posterior(blr["x"], blr["y"], np.full(4, 0.05), SIGMA)
    theta = rng.multivariate_normal(mean_true, cov_true, size=60)
    y_val = (theta[:, 0] + np.sum(x_val * theta[:, 1:], 1) + SIGMA * rng.normal(size=60))[:, None]
    grid = np.logspace(-3, 3, 13)
    tuned = laplace.optimize_prior_precision(
        blr_posts["full"], (jnp.asarray(x_val), jnp.asarray(y_val)), method="gridsearch", grid=grid
    )
    design = np.concatenate([np.ones((40, 1)), blr["x"]], axis=1)
    design_val = np.concatenate([np.ones((60, 1)), x_val], axis=1)
    mean = np.asarray(linear_model(blr["params"], jnp.asarray(x_val)))[:, 0]
    nll = []
    for a in grid:
        cov = np.linalg.inv(design.T @ design / SIGMA**2 + a * np.eye(4))
        var = np.einsum("nd,de,ne->n", design_val, cov, design_val) + SIGMA**2
        nll.append(np.mean(0.5 * np.log(2 * np.pi * var) + 0.5 * (y_val[:, 0] - mean) ** 2 / var))
    best = int(np.argmin(nll))
    assert 0 < best < len(grid) - 1
    assert float(tuned.prior_precision[0]) == pytest.approx(grid[best])
    with pytest.warns(UserWarning, match="edge of the grid"):
        laplace.optimize_prior_precision(
            blr_posts["full"], (jnp.asarray(x_val), jnp.asarray(y_val)), method="gridsearch", grid=grid[:2]
        )


def test_posterior_uncertainty_is_calibrated():
    # Weights drawn from the prior, data from the model: the true weights'
    # z-scores under the posterior are standard normal (mean z^2 = 1).
    num, n = 200, 12

    rng = np.random.default_rng(5)
    ws = rng.normal(size=(num, 3, 1)) / np.sqrt(ALPHA)
    xs = rng.normal(size=(num, n, 3))
    ys = xs @ ws + SIGMA * rng.normal(size=(num, n, 1))

    def one(w, x, y):
        precision = x.T @ x / SIGMA**2 + ALPHA * jnp.eye(3)
        w_map = jnp.linalg.solve(precision, x.T @ y / SIGMA**2)
        post = laplace.fit(
            lambda p, x: x @ p,
            w_map,
            (x, y),
            likelihood="regression",
            hessian="kfac",
            prior_precision=ALPHA,
            sigma_noise=SIGMA,
        )
        _, cov = laplace.glm_predictive(post, jnp.eye(3))  # J = e_j: the weights' marginal variances
        return (w[:, 0] - w_map[:, 0]) / jnp.sqrt(cov[:, 0, 0])

    z = jax.jit(jax.vmap(one))(jnp.asarray(ws), jnp.asarray(xs), jnp.asarray(ys))
    assert float(jnp.mean(z**2)) == pytest.approx(1.0, abs=0.2)  # 600 z-scores: std of the mean ~0.06
    assert float(jnp.mean(jnp.abs(z) < 1.96)) == pytest.approx(0.95, abs=0.04)
