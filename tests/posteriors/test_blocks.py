"""Block-coordinate Laplace and VI: closed forms for Bayesian linear regression, per-unit GGN
blocks against jax.jacobian, joint-mode stationarity and predictives on a small classifier,
jit with equinox and flax models, bad input.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from probnum_jax import posteriors
from probnum_jax.posteriors import blocks
from probnum_jax.posteriors._jaxpr_layers import layer_graph

from .conftest import numpy_mlp

SIGMA, DELTA = 0.5, 2.0


# ---------------------------------------------------------------------------------------------
# Bayesian linear regression: closed forms by numpy solves


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    y = x @ rng.normal(size=(3, 2)) + 0.7 + SIGMA * rng.normal(size=(30, 2))
    return jnp.asarray(x), jnp.asarray(y)


def _linear(p, x):
    return x @ p["w"]


def _affine(p, x):
    return x @ p["w"] + p["b"]


def _closed_form(features, y, temperature=1.0):
    """Posterior precision (shared by the outputs) and mean of ``N(0, I/delta)``-prior regression."""
    f, y = np.asarray(features), np.asarray(y)
    precision = f.T @ f / (SIGMA**2 * temperature) + DELTA * np.eye(f.shape[1])
    return precision, np.linalg.solve(precision, f.T @ y / (SIGMA**2 * temperature))


def _fit(method, model_fn, params, x, y, **kwargs):
    if method == "laplace":
        return blocks.laplace(
            model_fn, params, x, y, likelihood="regression", prior_precision=DELTA, sigma_noise=SIGMA,
            tol=1e-11, num_sweeps=300, **kwargs,
        )  # fmt: skip
    return blocks.vi(
        model_fn, params, x, y, key=jax.random.key(0), likelihood="regression", prior_precision=DELTA,
        sigma_noise=SIGMA, num_samples=2, step_size=1.0, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("method", ["laplace", "vi"])
@pytest.mark.parametrize("block", ["unit", "layer"])
def test_linear_regression_recovers_the_exact_posterior(method, block, regression):
    """Without a bias the outputs are independent: both block structures are exact."""
    x, y = regression
    temperature = 1.0 if method == "laplace" else 0.5
    kwargs = {} if method == "laplace" else {"temperature": temperature, "num_sweeps": 1}
    post = _fit(method, _linear, {"w": jnp.zeros((3, 2))}, x, y, block=block, **kwargs)
    precision, mean = _closed_form(x, y, temperature)
    assert bool(post.converged) and int(post.num_sweeps) == (2 if method == "laplace" else 1)  # exact block solves
    np.testing.assert_allclose(post.mean["w"], mean, rtol=1e-10, atol=1e-12)
    (cov,) = post.covariance()
    if block == "unit":  # one block per output unit: its incoming weights w[:, j]
        np.testing.assert_allclose(cov, np.stack([np.linalg.inv(precision)] * 2), rtol=1e-10)
    else:  # vec(w) row-major: cov = inv(precision) kron I_2
        np.testing.assert_allclose(cov[0], np.kron(np.linalg.inv(precision), np.eye(2)), rtol=1e-10, atol=1e-14)


@pytest.fixture(scope="module")
def affine_laplace(regression):
    x, y = regression
    return _fit("laplace", _affine, {"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)}, x, y, block="layer")


@pytest.mark.parametrize("method", ["laplace", "vi"])
def test_linear_regression_with_bias_gives_joint_mean_and_conditional_blocks(method, regression, affine_laplace):
    """Mean: the joint posterior mean; covariance: inverses of the joint precision's diagonal blocks."""
    x, y = regression
    features = jnp.concatenate([x, jnp.ones((x.shape[0], 1))], axis=1)
    precision, mean = _closed_form(features, y)
    if method == "laplace":
        post = affine_laplace
        assert bool(post.converged) and 2 < int(post.num_sweeps) < 300  # linear convergence, then stop
    else:
        post = _fit("vi", _affine, {"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)}, x, y, block="layer", num_sweeps=60)
    np.testing.assert_allclose(post.mean["w"], mean[:3], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(post.mean["b"], mean[3], rtol=1e-8, atol=1e-9)
    cov_b, cov_w = post.covariance()  # leaves in jax.tree order: "b", "w"
    np.testing.assert_allclose(cov_b[0], np.eye(2) / precision[3, 3], rtol=1e-10)
    np.testing.assert_allclose(cov_w[0], np.kron(np.linalg.inv(precision[:3, :3]), np.eye(2)), rtol=1e-10)


def test_samples_have_the_block_covariance(regression, affine_laplace):
    x, _ = regression
    post = affine_laplace
    draws = post.sample(jax.random.key(3), 8000)
    assert draws["w"].shape == (8000, 3, 2) and draws["b"].shape == (8000, 2)
    cov_b, cov_w = post.covariance()
    np.testing.assert_allclose(np.mean(draws["w"], 0), post.mean["w"], atol=4 * np.sqrt(cov_w.max() / 8000))
    emp = np.cov(np.asarray(draws["w"]).reshape(8000, 6).T)  # vec(w), row-major
    np.testing.assert_allclose(emp, cov_w[0], atol=0.08 * np.abs(cov_w[0]).max())
    corr = np.corrcoef(np.asarray(draws["w"][:, 0, 0]), np.asarray(draws["b"][:, 0]))[0, 1]
    assert abs(corr) < 0.05  # different blocks are independent
    mean, var = blocks.predict(post, x[:5])
    np.testing.assert_allclose(mean, _affine(post.mean, x[:5]), rtol=1e-12)
    cov_w_unit0 = cov_w[0][0::2, 0::2]  # output 0's weights w[:, 0]
    expected = np.einsum("ni,ij,nj->n", x[:5], cov_w_unit0, x[:5]) + cov_b[0, 0, 0] + SIGMA**2
    np.testing.assert_allclose(var[:, 0], expected, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# Per-unit GGN blocks against the brute-force GGN


def _offsets(params):
    sizes = [leaf.size for leaf in jax.tree.leaves(params)]
    return np.concatenate([[0], np.cumsum(sizes)[:-1]])


def test_unit_and_layer_blocks_of_an_equinox_mlp_match_jax_jacobian(mlp_problem):
    """eqx.nn.Linear stores weight[out, in]: unit j is row j; a bias entry is a unit of its own."""
    p = mlp_problem
    full = p.ggn()
    unit = blocks.block_ggn(p.model_fn, p.params, p.x, p.y, likelihood=p.likelihood, block="unit")
    layer = blocks.block_ggn(p.model_fn, p.params, p.x, p.y, likelihood=p.likelihood, block="layer")
    for leaf, g_unit, g_layer, offset in zip(
        jax.tree.leaves(p.params), jax.tree.leaves(unit), jax.tree.leaves(layer), _offsets(p.params)
    ):
        if leaf.ndim == 2:
            d_out, d_in = leaf.shape
            units = [offset + j * d_in + np.arange(d_in) for j in range(d_out)]
            vec = offset + (np.arange(d_out)[None, :] * d_in + np.arange(d_in)[:, None]).ravel()  # vec(weight.T)
        else:
            units = [offset + np.array([j]) for j in range(leaf.size)]
            vec = offset + np.arange(leaf.size)
        reference = np.stack([full[np.ix_(u, u)] for u in units])
        np.testing.assert_allclose(g_unit, reference, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(g_layer[0], full[np.ix_(vec, vec)], rtol=1e-10, atol=1e-13)


def test_unit_blocks_of_convolutions_and_shared_kernels_match_jax_jacobian(sink_problem):
    p = sink_problem
    full = p.ggn()
    unit = blocks.block_ggn(p.model_fn, p.params, p.x, p.y, likelihood=p.likelihood, block="unit")
    graph = layer_graph(p.model_fn, p.params, p.x)
    for i, (g, offset) in enumerate(zip(jax.tree.leaves(unit), _offsets(p.params))):
        index = offset + graph.leaf_index[i]  # canonical [d_in, d_out] -> flat position
        reference = np.stack([full[np.ix_(index[:, j], index[:, j])] for j in range(index.shape[1])])
        np.testing.assert_allclose(g, reference, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# A one-hidden-layer classifier


def _net(p, x):
    return jnp.tanh(x @ p["w1"]) @ p["w2"]


def _data(rng, n):
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 0] * x[:, 1] > 0.3).astype(np.int32)
    flip = rng.uniform(size=n) < 0.1
    return jnp.asarray(x), jnp.asarray(np.where(flip, rng.integers(0, 3, n), y).astype(np.int32))


@pytest.fixture(scope="module")
def classifier():
    rng = np.random.default_rng(1)
    params = {"w1": jnp.asarray(rng.normal(size=(2, 6))), "w2": jnp.asarray(0.5 * rng.normal(size=(6, 3)))}
    (x, y), (x_test, y_test) = _data(rng, 60), _data(rng, 400)
    post = blocks.laplace(_net, params, x, y, prior_precision=1.0, num_sweeps=300, tol=1e-6)
    return post, x, y, x_test, y_test


def _regularised_loss(p, x, y, delta=1.0):
    flat, _ = ravel_pytree(p)
    return -jnp.sum(jax.nn.log_softmax(_net(p, x))[jnp.arange(x.shape[0]), y]) + 0.5 * delta * flat @ flat


def _nll(probs, y):
    return float(-np.mean(np.log(np.asarray(probs)[np.arange(len(y)), np.asarray(y)])))


def test_block_laplace_ends_at_a_joint_mode_with_the_gauss_newton_block_covariance(classifier):
    post, x, y, _, _ = classifier
    assert bool(post.converged) and int(post.num_sweeps) < 300
    grad, _ = ravel_pytree(jax.jit(jax.grad(_regularised_loss))(post.mean, x, y))
    assert np.max(np.abs(grad)) < 1e-5  # stationary in all blocks at once, not only per block
    # The blocks' covariances: inverses of the diagonal unit blocks of (GGN + delta I) at the mode.
    flat, unravel = ravel_pytree(post.mean)

    @jax.jit
    def ggn(flat):
        jac = jax.vmap(lambda xi: jax.jacobian(lambda w: _net(unravel(w), xi[None])[0])(flat))(x)
        prob = jax.nn.softmax(_net(unravel(flat), x))
        lam = jax.vmap(jnp.diag)(prob) - jnp.einsum("nc,nd->ncd", prob, prob)
        return jnp.einsum("ncp,ncd,ndq->pq", jac, lam, jac)

    full = np.asarray(ggn(flat)) + np.eye(flat.size)
    for cov, leaf, offset in zip(post.covariance(), jax.tree.leaves(post.mean), _offsets(post.mean)):
        d_in, d_out = leaf.shape if leaf.ndim == 2 else (1, leaf.size)
        for j in range(d_out):  # unit j of a kernel [d_in, d_out] is column j
            u = offset + np.arange(d_in) * d_out + j
            np.testing.assert_allclose(cov[j], np.linalg.inv(full[np.ix_(u, u)]), rtol=1e-8, atol=1e-12)


def test_glm_predictive_covariance_is_j_sigma_jt(classifier):
    post, _, _, x_test, _ = classifier
    xs = x_test[:4]
    flat, unravel = ravel_pytree(post.mean)
    jac = jax.jit(jax.vmap(lambda xi: jax.jacobian(lambda w: _net(unravel(w), xi[None])[0])(flat)))(xs)
    sigma = np.zeros((flat.size, flat.size))
    for cov, leaf, offset in zip(post.covariance(), jax.tree.leaves(post.mean), _offsets(post.mean)):
        d_in, d_out = leaf.shape if leaf.ndim == 2 else (1, leaf.size)
        for j in range(d_out):
            u = offset + np.arange(d_in) * d_out + j
            sigma[np.ix_(u, u)] = cov[j]
    mean, f_cov = blocks.glm_predictive(post, xs)
    np.testing.assert_allclose(mean, _net(post.mean, xs), rtol=1e-12)
    np.testing.assert_allclose(f_cov, np.einsum("ncp,pq,ndq->ncd", jac, sigma, jac), rtol=1e-9, atol=1e-12)


def test_predictives_are_no_worse_calibrated_than_the_map(classifier):
    post, _, _, x_test, y_test = classifier
    map_nll = _nll(jax.nn.softmax(_net(post.mean, x_test)), y_test)
    glm_nll = _nll(blocks.predict(post, x_test), y_test)
    nn_nll = _nll(blocks.predict(post, x_test, method="nn", key=jax.random.key(0), num_samples=200), y_test)
    print(f"test NLL: MAP {map_nll:.4f}, GLM {glm_nll:.4f}, NN {nn_nll:.4f}")
    assert glm_nll < map_nll + 0.02 and nn_nll < map_nll + 0.15
    assert glm_nll < np.log(3) - 0.3  # and still informative (far from uniform predictions)


def test_vi_tends_to_the_laplace_approximation_as_the_temperature_vanishes(classifier):
    """With prior precision delta / T, the fixed point of block VI is N(w*, T (G + delta I)^{-1}) + O(T)."""
    post, x, y, _, _ = classifier
    errors = []
    for temperature in (1e-3, 1e-4):  # arrays: one compilation for both
        t = jnp.asarray(temperature)
        q = blocks.vi(_net, post.mean, x, y, key=jax.random.key(1), num_sweeps=3, num_samples=1, step_size=1.0,
                      temperature=t, prior_precision=1.0 / t)  # fmt: skip
        pairs = zip(jax.tree.leaves(q.mean), jax.tree.leaves(post.mean))
        mean_err = max(float(jnp.max(jnp.abs(a - b))) for a, b in pairs)
        prec_err = max(
            float(jnp.max(jnp.abs(temperature * _gram(a) - _gram(b))) / jnp.max(jnp.abs(_gram(b))))
            for a, b in zip(q.precision_chol, post.precision_chol)
        )
        errors.append((mean_err, prec_err))
    print("VI vs Laplace (mean, precision) errors at T = 1e-3, 1e-4:", errors)
    (m3, p3), (m4, p4) = errors
    assert m4 < 1e-2 and p4 < 5e-3
    assert 4 < m3 / m4 < 25 and 4 < p3 / p4 < 25  # first order in T


def _gram(chol):
    return chol @ jnp.swapaxes(chol, -1, -2)


# ---------------------------------------------------------------------------------------------
# jit with equinox and flax models


def _framework_model(framework):
    if framework == "equinox_mlp":
        return posteriors.from_equinox(numpy_mlp(2, 3, 4, 1, jnp.tanh, seed=2))
    if framework == "equinox":
        linear = eqx.filter_eval_shape(eqx.nn.Linear, 2, 3, key=jax.random.key(0))
        rng = np.random.default_rng(3)
        linear = eqx.tree_at(lambda m: (m.weight, m.bias), linear, (jnp.asarray(rng.normal(size=(3, 2))), jnp.zeros(3)))
        return posteriors.from_equinox(linear)
    from flax import linen

    dense = linen.Dense(3)
    return posteriors.from_linen(dense, dense.init(jax.random.key(1), jnp.ones((1, 2))))


@pytest.mark.parametrize(
    "framework",
    [pytest.param("equinox", marks=pytest.mark.slow), "linen", pytest.param("equinox_mlp", marks=pytest.mark.slow)],
)  # equinox in the default suite: the block_ggn-vs-jax.jacobian test on an eqx MLP
def test_laplace_and_vi_run_under_jit(framework):
    model_fn, params = _framework_model(framework)
    x, y = _data(np.random.default_rng(2), 16)

    @jax.jit
    def fit(params, key):
        post = blocks.laplace(model_fn, params, x, y, num_sweeps=200, tol=1e-7)
        probs, chols = jax.nn.softmax(model_fn(post.mean, x[:3])), post.precision_chol
        if framework == "linen":  # VI and the predictive compiled once, for the time budget
            probs = blocks.predict(post, x[:3])
            chols = blocks.vi(model_fn, post.mean, x, y, key=key, num_sweeps=2, num_samples=2).precision_chol
        return post.mean, post.result == blocks.RESULTS.successful, probs, chols

    mean, ok, probs, chols = fit(params, jax.random.key(0))
    assert bool(ok)
    np.testing.assert_allclose(jnp.sum(probs, axis=-1), 1.0, rtol=1e-6)
    assert all(bool(jnp.all(jnp.isfinite(c))) for c in chols)

    def loss(p):
        flat, _ = ravel_pytree(p)
        return -jnp.sum(jax.nn.log_softmax(model_fn(p, x))[jnp.arange(16), y]) + 0.5 * flat @ flat

    grad, _ = ravel_pytree(jax.grad(loss)(mean))
    assert float(jnp.max(jnp.abs(grad))) < 1e-4  # a mode (float32 parameters for flax)


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"block": "diag"}, "block must be one of"),
        ({"prior_precision": 0.0}, "prior_precision must be > 0"),
        ({"prior_precision": -1.0}, "prior_precision must be > 0"),
        ({"num_sweeps": 0}, "num_sweeps must be an int >= 1"),
        ({"num_steps": 0}, "num_steps must be an int >= 1"),
        ({"sigma_noise": 0.0}, "sigma_noise must be > 0"),
        ({"likelihood": "poisson"}, "likelihood must be one of"),
    ],
)
@pytest.mark.parametrize("method", ["laplace", "vi"])
def test_bad_arguments_raise_naming_the_argument(method, kwargs, match, regression):
    x, y = regression
    extra = {"key": jax.random.key(0)} if method == "vi" else {}
    kwargs = {"likelihood": "regression", **kwargs}
    with pytest.raises(ValueError, match=match):
        getattr(blocks, method)(_linear, {"w": jnp.zeros((3, 2))}, x, y, **kwargs, **extra)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_samples": 0}, "num_samples must be an int >= 1"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"temperature": -2.0}, "temperature must be > 0"),
        ({"step_size": 1.5}, "step_size must be in"),
    ],
)
def test_bad_vi_arguments_raise_naming_the_argument(kwargs, match, regression):
    x, y = regression
    with pytest.raises(ValueError, match=match):
        blocks.vi(_linear, {"w": jnp.zeros((3, 2))}, x, y, key=jax.random.key(0), likelihood="regression", **kwargs)


def test_bad_laplace_arguments_and_shapes(regression):
    x, y = regression
    params = {"w": jnp.zeros((3, 2))}
    with pytest.raises(ValueError, match="damping must be >= 0"):
        blocks.laplace(_linear, params, x, y, likelihood="regression", damping=-1.0)
    with pytest.raises(ValueError, match="y must have the model output's shape"):
        blocks.laplace(_linear, params, x, y[:10], likelihood="regression")
    with pytest.raises(ValueError, match="y must have the model output's shape"):
        blocks.vi(_linear, params, x, y[:, :1], key=jax.random.key(0), likelihood="regression")
    with pytest.raises(ValueError, match=r"y must have shape \[n\]"):
        blocks.laplace(_linear, params, x, jnp.zeros(7, int))
    with pytest.raises(ValueError, match="block must be one of"):
        blocks.block_ggn(_linear, params, x, y, likelihood="regression", block="kron")


def test_bad_predict_and_sample_arguments(regression):
    x, y = regression
    post = blocks.laplace(_linear, {"w": jnp.zeros((3, 2))}, x, y, likelihood="regression", num_sweeps=2)
    with pytest.raises(ValueError, match="num_samples must be an int >= 1"):
        post.sample(jax.random.key(0), 0)
    with pytest.raises(ValueError, match="method must be one of"):
        blocks.predict(post, x, method="exact")
    with pytest.raises(ValueError, match="pass key"):
        blocks.predict(post, x, method="nn")
    with pytest.raises(ValueError, match="x must have shape"):
        blocks.predict(post, x[:, :2])
    with pytest.raises(TypeError, match="post must be a blocks.BlockGaussian"):
        blocks.predict(eqx.nn.Identity(), x)


# ---------------------------------------------------------------------------------------------
# Prior-precision tuning by the evidence


def test_evidence_tuning_reaches_the_closed_form_maximiser(regression):
    """Refitting at the tuned delta and re-tuning (MacKay's iteration) converges to the maximiser
    of the exact linear-regression evidence, log N(y_j; 0, sigma^2 I + X X^T / delta) summed over outputs."""
    from scipy.optimize import minimize_scalar

    x, y = regression
    xn, yn = np.asarray(x), np.asarray(y)

    def neg_log_evidence(log_delta):
        cov = SIGMA**2 * np.eye(xn.shape[0]) + xn @ xn.T / np.exp(log_delta)
        _, logdet = np.linalg.slogdet(cov)
        return 0.5 * (yn.shape[1] * logdet + np.sum(yn * np.linalg.solve(cov, yn)))

    reference = np.exp(minimize_scalar(neg_log_evidence, bounds=(-8, 8), method="bounded", options={"xatol": 1e-10}).x)
    delta = jnp.asarray(DELTA)  # an array: one compilation for every refit
    for _ in range(30):
        post = blocks.laplace(_linear, {"w": jnp.zeros((3, 2))}, x, y, likelihood="regression", block="layer",
                              prior_precision=delta, sigma_noise=SIGMA, tol=1e-12)  # fmt: skip
        tuned = blocks.optimize_prior_precision(post)
        converged = abs(float(tuned.prior_precision) / float(delta) - 1) < 1e-7
        delta = tuned.prior_precision
        if converged:
            break
    np.testing.assert_allclose(float(delta), reference, rtol=1e-4)
    # The tuned blocks are the precisions at the new delta: X^T X / sigma^2 + delta I (kron I_2).
    (cov,) = tuned.covariance()
    precision = xn.T @ xn / SIGMA**2 + float(delta) * np.eye(3)
    np.testing.assert_allclose(cov[0], np.kron(np.linalg.inv(precision), np.eye(2)), rtol=1e-9, atol=1e-14)


def test_optimize_prior_precision_rejects_other_posteriors():
    with pytest.raises(TypeError, match="post must be a blocks.BlockGaussian"):
        blocks.optimize_prior_precision({"w": jnp.zeros(2)})
