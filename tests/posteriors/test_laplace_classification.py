"""Laplace for classification: softmax regression against a numpy reference, digits MLP, subsets, jit."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

from probnum_jax import posteriors
from probnum_jax.posteriors import curvature, laplace, metrics

DELTA = 0.5


def softmax_regression(params, x):
    return x @ params["w"] + params["b"]


@pytest.fixture(scope="module")
def logistic():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 2))
    y = np.argmax(x @ np.array([[2.0, -1.0, 0.0], [0.0, 1.5, -2.0]]) + rng.gumbel(size=(40, 3)), axis=1)
    design = np.concatenate([np.ones((40, 1)), x], axis=1)  # parameters ordered (b, w) as ravel_pytree does

    def objective(theta):  # negative log joint, numpy
        b, w = theta[:3], theta[3:].reshape(2, 3)
        f = x @ w + b
        logp = f - scipy.special.logsumexp(f, axis=1, keepdims=True)
        return -np.sum(logp[np.arange(40), y]) + 0.5 * DELTA * theta @ theta

    theta = scipy.optimize.minimize(objective, np.zeros(9), method="BFGS", options={"gtol": 1e-10}).x
    b, w = theta[:3], theta[3:].reshape(2, 3)
    probs = scipy.special.softmax(x @ w + b, axis=1)
    hessian = DELTA * np.eye(9)
    for i in range(40):
        jac = np.kron(design[i][None, :], np.eye(3))  # d f / d (b, w): [3, 9]
        lam = np.diag(probs[i]) - np.outer(probs[i], probs[i])
        hessian += jac.T @ lam @ jac
    params = {"b": jnp.asarray(b), "w": jnp.asarray(w)}
    post = laplace.fit(
        softmax_regression, params, (jnp.asarray(x), jnp.asarray(y)), hessian="full", prior_precision=DELTA
    )
    return {"x": x, "y": y, "params": params, "hessian": hessian, "cov": np.linalg.inv(hessian), "post": post}


def test_logistic_regression_posterior(logistic):
    post = logistic["post"]
    np.testing.assert_allclose(post.ggn + DELTA * np.eye(9), logistic["hessian"], rtol=1e-9)
    x_test = np.array([[0.5, -1.0], [3.0, 2.0], [-2.0, 0.1]])
    mean, cov = laplace.glm_predictive(post, jnp.asarray(x_test))
    design = np.concatenate([np.ones((3, 1)), x_test], axis=1)
    jac = np.stack([np.kron(d[None, :], np.eye(3)) for d in design])
    f_cov = np.einsum("ncp,pq,ndq->ncd", jac, logistic["cov"], jac)
    np.testing.assert_allclose(cov, f_cov, rtol=1e-8)
    # Probit link: softmax of mean / sqrt(1 + pi/8 var) (MacKay, 1992).
    f_mean = np.asarray(mean)
    kappa = 1 / np.sqrt(1 + np.pi / 8 * np.diagonal(f_cov, axis1=1, axis2=2))
    np.testing.assert_allclose(
        laplace.predict(post, jnp.asarray(x_test)), scipy.special.softmax(kappa * f_mean, axis=1), rtol=1e-9
    )
    # MC link against numpy Monte Carlo on the same Gaussian.
    rng = np.random.default_rng(0)
    draws = np.stack([rng.multivariate_normal(f_mean[i], f_cov[i], size=20000) for i in range(3)], axis=1)
    expected = scipy.special.softmax(draws, axis=2).mean(0)
    mc = laplace.predict(post, jnp.asarray(x_test), link="mc", num_samples=20000, key=jax.random.key(0))
    np.testing.assert_allclose(mc, expected, atol=1e-2)


@pytest.mark.slow
def test_sampled_network_predictive_of_a_linear_model(logistic):
    # For a linear model the sampled-network and linearised predictives coincide.
    post, x_test = logistic["post"], jnp.asarray([[0.5, -1.0], [3.0, 2.0]])
    nn = laplace.predict(post, x_test, method="nn", num_samples=20000, key=jax.random.key(1))
    mc = laplace.predict(post, x_test, link="mc", num_samples=20000, key=jax.random.key(2))
    np.testing.assert_allclose(nn, mc, atol=1e-2)


def test_laplace_bridge_inverts_the_dirichlet_laplace_approximation():
    # The Laplace approximation of Dir(alpha) in the softmax basis (Hobbhahn et al., 2022)
    # mapped back by the bridge gives the Dirichlet mean alpha / sum(alpha).
    from probnum_jax.posteriors.laplace._predict import link_probabilities

    alpha = np.array([[2.0, 5.0, 0.5, 1.0], [1.0, 1.0, 1.0, 30.0]])
    k = alpha.shape[1]
    mean = np.log(alpha) - np.mean(np.log(alpha), axis=1, keepdims=True)
    inv = 1 / alpha
    cov = np.stack(
        [np.diag(a) - (a[:, None] + a[None, :]) / k + np.sum(a) / k**2 for a in inv]
    )  # delta_kl / alpha_k - (1/alpha_k + 1/alpha_l) / K + sum_u (1/alpha_u) / K^2
    probs = link_probabilities(jnp.asarray(mean), jnp.asarray(cov), "bridge", 0, None)
    np.testing.assert_allclose(probs, alpha / alpha.sum(1, keepdims=True), rtol=1e-10)


@pytest.fixture(scope="module")
def digits():
    """A ReLU MLP trained by optax without weight decay on 300 digits: overconfident."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = data.data / 16.0, data.target
    perm = np.random.default_rng(2).permutation(len(x))
    x, y = jnp.asarray(x[perm]), jnp.asarray(y[perm])
    split = {"train": (x[:300], y[:300]), "val": (x[300:600], y[300:600]), "test": (x[600:], y[600:])}
    from .conftest import numpy_mlp

    model_fn, params = posteriors.from_equinox(numpy_mlp(64, 10, 64, 2, jax.nn.relu, seed=0))
    optimizer = optax.adam(1e-2)
    x_train, y_train = split["train"]

    @jax.jit
    def train(params):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(model_fn(p, x_train), y_train).sum()

        def step(carry, _):
            p, state = carry
            updates, state = optimizer.update(jax.grad(loss)(p), state, p)
            return (optax.apply_updates(p, updates), state), None

        return jax.lax.scan(step, (params, optimizer.init(params)), None, length=3000)[0][0]

    return model_fn, train(params), split


def test_laplace_improves_nll_and_ece_on_digits(digits):
    model_fn, params, split = digits
    x_test, y_test = split["test"]
    map_probs = jax.nn.softmax(model_fn(params, x_test))
    post = laplace.fit(model_fn, params, split["train"], hessian="kfac", subset="last_layer")
    post = laplace.optimize_prior_precision(post, split["val"], method="gridsearch", grid=jnp.logspace(-2, 4, 25))
    probs = laplace.predict(post, x_test)
    figures = {
        name: (float(metrics.accuracy(p, y_test)), float(metrics.nll(p, y_test)), float(metrics.ece(p, y_test)))
        for name, p in (("map", map_probs), ("laplace", probs))
    }
    print("digits (accuracy, NLL, ECE):", figures, "prior precision", float(post.prior_precision[0]))
    assert figures["laplace"][1] < 0.9 * figures["map"][1]
    assert figures["laplace"][2] < figures["map"][2]
    assert figures["laplace"][0] >= figures["map"][0] - 0.01


def test_last_layer_equals_its_mask(digits):
    model_fn, params, split = digits
    post = laplace.fit(model_fn, params, split["train"], hessian="diag", subset="last_layer")
    mask = jax.tree.map(lambda _: False, params)
    mask = eqx.tree_at(lambda m: (m.layers[-1].weight, m.layers[-1].bias), mask, (True, True))
    masked = laplace.fit(model_fn, params, split["train"], hessian="diag", subset=mask)
    assert post.subset.leaves == masked.subset.leaves
    for a, b in zip(post.ggn_diagonal, masked.ggn_diagonal):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.slow
def test_elementwise_subnetwork(mlp_problem):
    net = mlp_problem
    leaves = jax.tree.leaves(net.params)
    masks = [np.zeros(leaf.shape, bool) for leaf in leaves]
    masks[0].ravel()[[1, 4, 7]] = True
    masks[2][...] = True
    mask = jax.tree.unflatten(jax.tree.structure(net.params), masks)
    post = laplace.fit(net.model_fn, net.params, (net.x, net.y), hessian="full", subset=mask, prior_precision=DELTA)
    ggn = np.asarray(curvature.ggn_dense(net.model_fn, net.params, net.x, net.y))
    starts = np.concatenate([[0], np.cumsum([leaf.size for leaf in leaves])])
    idx = np.concatenate([starts[0] + np.array([1, 4, 7]), np.arange(starts[2], starts[3])])
    np.testing.assert_allclose(post.ggn, ggn[np.ix_(idx, idx)], rtol=1e-10, atol=1e-12)
    draws = post.sample(jax.random.key(0), 3)
    for i, (leaf, m) in enumerate(zip(jax.tree.leaves(draws), masks)):
        fixed = np.broadcast_to(np.asarray(leaves[i]), leaf.shape)[:, ~m]
        np.testing.assert_array_equal(np.asarray(leaf)[:, ~m], fixed)  # unselected entries stay at the MAP


def test_batches_equal_one_pass_and_jit(mlp_problem):
    net = mlp_problem
    batches = iter([(net.x[:4], net.y[:4]), (net.x[4:], net.y[4:])])  # a one-shot iterator of batches
    batched = laplace.fit(net.model_fn, net.params, batches, hessian="kfac", prior_precision=DELTA)
    fit = jax.jit(lambda p, x, y: laplace.fit(net.model_fn, p, (x, y), hessian="kfac", prior_precision=DELTA))
    jitted = fit(net.params, net.x, net.y)
    reference = float(laplace.log_marginal_likelihood(jitted))
    assert float(laplace.log_marginal_likelihood(batched)) == pytest.approx(reference, rel=1e-10)
    predict = jax.jit(lambda post, x: laplace.predict(post, x, link="bridge"))
    np.testing.assert_allclose(predict(jitted, net.x), laplace.predict(batched, net.x, link="bridge"), rtol=1e-10)
