"""Variational inference: analytic optima on Bayesian linear regression, IVON's
Hessian estimate on a quadratic, jit with equinox and flax models, bad input.

References are closed forms (numpy): for a Gaussian likelihood and prior the
optimal mean-field Gaussian has the exact posterior mean and precision
``diag(Lambda)`` of the posterior precision ``Lambda``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from probnum_jax import posteriors
from probnum_jax.posteriors import vi

NOISE, PRIOR, N, D = 0.25, 2.0, 30, 3


def rbg_key(seed):
    """A key of the "rbg" generator: its random bits compile ~5x faster on CPU than threefry's,
    which dominates the compile time of these tiny problems. The methods accept any key."""
    return jax.random.key(seed, impl="rbg")


@pytest.fixture(scope="module")
def blr():
    """Bayesian linear regression data and its analytic optimal mean-field Gaussian."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)) @ np.array([[1.0, 0.6, 0.0], [0.0, 1.0, 0.4], [0.0, 0.0, 1.0]])
    w_true = np.array([[1.0], [-0.5], [2.0]])
    y = x @ w_true + np.sqrt(NOISE) * rng.normal(size=(N, 1))

    def optimum(noise):
        lam = x.T @ x / noise + PRIOR * np.eye(D)
        mean = np.linalg.solve(lam, x.T @ y / noise)
        return mean, 1 / np.sqrt(np.diag(lam))[:, None]

    return jnp.asarray(x), jnp.asarray(y), optimum


def linear_model(params, x):
    return x @ params["w"]


def eqx_linear():
    """``x @ w`` as an equinox module: the analytic tests double as the equinox tests."""
    linear = eqx.filter_eval_shape(eqx.nn.Linear, D, 1, use_bias=False, key=rbg_key(0))
    return posteriors.from_equinox(eqx.tree_at(lambda m: m.weight, linear, jnp.zeros((1, D))))


def test_mean_field_reaches_the_analytic_mean_field_optimum(blr):
    x, y, optimum = blr
    steps = 2000
    opt = optax.adam(optax.cosine_decay_schedule(0.05, steps, alpha=0.01))

    model_fn, params = eqx_linear()

    @eqx.filter_jit
    def fit(temperature, key):
        mf = vi.mean_field(model_fn, opt, num_data=N, likelihood="regression", prior_precision=PRIOR,
                           noise_variance=NOISE, temperature=temperature, num_samples=16, init_std=0.1)
        state, losses = mf.run(mf.init(params), (x, y), key=key, num_steps=steps)
        return mf.posterior(state), losses

    for temperature in (1.0, 0.5):
        q, losses = fit(jnp.asarray(temperature), rbg_key(0))
        # The tempered optimum is the posterior with noise variance NOISE * temperature.
        mean, std = optimum(NOISE * temperature)
        mean_err = np.max(np.abs(q.mean.weight.T - mean)) / np.max(np.abs(mean))
        std_err = np.max(np.abs(q.std.weight.T / std - 1))
        print(f"MFVI T={temperature}: rel. mean error {mean_err:.2e}, rel. std error {std_err:.2e}")
        assert mean_err < 0.02
        assert std_err < 0.05
        assert np.mean(losses[-100:]) < np.mean(losses[:100])


def test_kl_to_prior_matches_the_dense_gaussian_formula():
    rng = np.random.default_rng(1)
    mean, std = {"a": rng.normal(size=(2, 2)), "b": rng.normal(size=3)}, {"a": rng.uniform(0.2, 2, (2, 2)), "b": rng.uniform(0.2, 2, 3)}
    q = vi.MeanFieldGaussian(jax.tree.map(jnp.asarray, mean), jax.tree.map(jnp.asarray, std))
    m = np.concatenate([mean["a"].ravel(), mean["b"]])
    s2 = np.concatenate([std["a"].ravel(), std["b"]]) ** 2
    for prec in (0.5, {"a": 3.0, "b": np.array([1.0, 2.0, 4.0])}):
        p = np.full(7, prec) if np.isscalar(prec) else np.concatenate([np.full(4, prec["a"]), prec["b"]])
        cov0, cov1 = np.diag(s2), np.diag(1 / p)
        dense = 0.5 * (np.trace(np.linalg.solve(cov1, cov0)) + m @ np.linalg.solve(cov1, m) - 7
                       + np.linalg.slogdet(cov1)[1] - np.linalg.slogdet(cov0)[1])
        np.testing.assert_allclose(jax.jit(vi.kl_to_prior)(q, prec), dense, rtol=1e-12)


def test_ivon_recovers_the_hessian_diagonal_of_a_quadratic():
    rng = np.random.default_rng(2)
    b = rng.normal(size=(4, 4))
    a = jnp.asarray(b @ b.T / 4 + np.diag([0.5, 1.0, 2.0, 4.0]))
    c = jnp.asarray(rng.normal(size=4))
    loss = lambda p: 0.5 * (p["w"] - c) @ a @ (p["w"] - c)  # noqa: E731
    opt = vi.ivon(0.05, ess=20.0, beta2=0.999, weight_decay=1e-6)
    burn_in, steps = 5000, 20000

    @jax.jit
    def run(key):
        params = {"w": jnp.zeros(4)}

        def body(carry, k):
            params, state = carry
            theta, state = vi.sample_params(state, params, k)
            updates, state = opt.update(jax.grad(loss)(theta), state, params)
            return (optax.apply_updates(params, updates), state), state.hess["w"]

        (params, _), hess = jax.lax.scan(body, (params, opt.init(params)), jax.random.split(key, steps))
        return params, jnp.mean(hess[burn_in:], axis=0)

    params, hess = run(rbg_key(3))
    err = np.max(np.abs(hess / np.diag(a) - 1))
    print(f"IVON Hessian diagonal: rel. error {err:.2e}")
    assert err < 0.03
    np.testing.assert_allclose(params["w"], c, atol=0.05)


def test_ivon_and_vogn_find_the_posterior_mean_of_linear_regression(blr):
    x, y, optimum = blr
    mean, std = optimum(NOISE)
    model_fn, params = eqx_linear()
    schedule = optax.cosine_decay_schedule(0.5, 3000, alpha=0.01)
    ivon = vi.ivon(schedule, ess=N, beta2=0.999, weight_decay=PRIOR / N, hess_init=10.0)
    vogn = vi.vogn(schedule, ess=N, prior_precision=PRIOR, hess_init=10.0)

    @jax.jit
    def run(key):
        """Full-batch IVON and VOGN on the mean per-sample NLL, side by side."""

        def body(carry, k):
            (p_ivon, s_ivon), (p_vogn, s_vogn) = carry
            k1, k2 = jax.random.split(k)
            theta, s_ivon = vi.sample_params(s_ivon, p_ivon, k1)
            _, grads, _ = vi.vogn_grads(model_fn, theta, x, y, likelihood="regression", noise_variance=NOISE)
            u, s_ivon = ivon.update(grads, s_ivon, p_ivon)
            theta, s_vogn = vi.sample_params(s_vogn, p_vogn, k2)
            _, grads, g2 = vi.vogn_grads(model_fn, theta, x, y, likelihood="regression", noise_variance=NOISE)
            v, s_vogn = vogn.update(grads, s_vogn, p_vogn, grad_squared=g2)
            return ((optax.apply_updates(p_ivon, u), s_ivon), (optax.apply_updates(p_vogn, v), s_vogn)), None

        init = ((params, ivon.init(params)), (params, vogn.init(params)))
        ((p_ivon, s_ivon), (p_vogn, s_vogn)), _ = jax.lax.scan(body, init, jax.random.split(key, 3000))
        return vi.posterior(s_ivon, p_ivon), vi.posterior(s_vogn, p_vogn)

    q_ivon, q_vogn = run(rbg_key(4))
    for name, q in (("IVON", q_ivon), ("VOGN", q_vogn)):
        err = np.max(np.abs(q.mean.weight.T - mean)) / np.max(np.abs(mean))
        print(f"{name}: rel. mean error {err:.2e}, std ratio {np.ravel(q.std.weight.T / std)}")
        assert err < 0.03
    # IVON's Hessian estimate is exact in expectation for a quadratic loss: its std is the
    # mean-field optimum; VOGN's squared-gradient (empirical Fisher) std only roughly.
    np.testing.assert_allclose(q_ivon.std.weight.T, std, rtol=0.1)
    np.testing.assert_allclose(q_vogn.std.weight.T, std, rtol=0.5)


def test_predict_regression_matches_the_linear_gaussian_moments():
    q = vi.MeanFieldGaussian({"w": jnp.array([[1.0], [-2.0]])}, {"w": jnp.array([[0.5], [0.1]])})
    x = jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    mean, var = vi.predict(linear_model, q, x, key=rbg_key(0), num_samples=4000, likelihood="regression",
                           noise_variance=0.3)
    np.testing.assert_allclose(mean[:, 0], x @ q.mean["w"][:, 0], atol=0.05)
    np.testing.assert_allclose(var[:, 0], (x**2) @ q.variance["w"][:, 0] + 0.3, rtol=0.1)


# ---------------------------------------------------------------------------------------------
# equinox and flax models under jit


@pytest.fixture(scope="module")
def models():
    return dict(_models())


def _models():
    from flax import linen, nnx

    # Tiny models keep the compilation of the four methods within the test-time budget.
    mlp = eqx.nn.MLP(2, 3, 4, 1, activation=jnp.tanh, key=rbg_key(0))
    yield "equinox", posteriors.from_equinox(mlp)
    dense = linen.Dense(3)
    yield "linen", posteriors.from_linen(dense, dense.init(rbg_key(1), jnp.ones((1, 2))))
    yield "nnx", posteriors.from_nnx(nnx.Linear(2, 3, rngs=nnx.Rngs(rbg_key(2))))


@pytest.fixture(scope="module")
def classification_data():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, 2))
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0.5).astype(np.int32)
    return jnp.asarray(x), jnp.asarray(y)


@pytest.mark.parametrize(
    # equinox is covered in the default suite by the linear-regression tests (an eqx.nn.Linear).
    "framework", [pytest.param("equinox", marks=pytest.mark.slow), "linen", pytest.param("nnx", marks=pytest.mark.slow)]
)
def test_all_methods_run_under_jit_with_equinox_and_flax_models(framework, models, classification_data):
    model_fn, params = models[framework]
    x, y = classification_data
    mf = vi.mean_field(model_fn, optax.sgd(0.05), num_data=16)
    ivon, vogn = vi.ivon(0.05, ess=16.0, hess_init=0.5), vi.vogn(0.05, ess=16.0)

    @jax.jit
    def train(params, key):
        """40 steps of each method and their predictives, in one compiled function."""
        k_mf, k_ng, k_pred = jax.random.split(key, 3)
        state, loss_mf = mf.run(mf.init(params), (x, y), key=k_mf, num_steps=40)

        def body(carry, k):
            (p_ivon, s_ivon), (p_vogn, s_vogn) = carry
            k1, k2 = jax.random.split(k)
            theta, s_ivon = vi.sample_params(s_ivon, p_ivon, k1)
            loss_ivon, grads = jax.value_and_grad(
                lambda p: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(model_fn(p, x), y))
            )(theta)
            u, s_ivon = ivon.update(grads, s_ivon, p_ivon)
            theta, s_vogn = vi.sample_params(s_vogn, p_vogn, k2)
            loss_vogn, grads, g2 = vi.vogn_grads(model_fn, theta, x, y)
            v, s_vogn = vogn.update(grads, s_vogn, p_vogn, grad_squared=g2)
            carry = ((optax.apply_updates(p_ivon, u), s_ivon), (optax.apply_updates(p_vogn, v), s_vogn))
            return carry, (loss_ivon, loss_vogn)

        init = ((params, ivon.init(params)), (params, vogn.init(params)))
        ((p_ivon, s_ivon), (p_vogn, s_vogn)), (loss_ivon, loss_vogn) = jax.lax.scan(
            body, init, jax.random.split(k_ng, 40)
        )
        posts = (mf.posterior(state), vi.posterior(s_ivon, p_ivon), vi.posterior(s_vogn, p_vogn))
        # One predictive for all three (same code path, one compilation).
        stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *posts)
        probs = jax.vmap(lambda q: vi.predict(model_fn, q, x, key=k_pred, num_samples=8))(stacked)
        return posts, probs, (loss_mf, loss_ivon, loss_vogn)

    posts, probs, losses = train(params, rbg_key(0))
    for loss in losses:
        assert np.all(np.isfinite(loss))
        assert np.mean(loss[-10:]) < np.mean(loss[:10])
    for q, p in zip(posts, probs):
        assert jax.tree.structure(q.mean) == jax.tree.structure(params)
        assert all(np.all(np.asarray(s) > 0) for s in jax.tree.leaves(q.std))
        assert p.shape == (16, 3)
        np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)


def test_sample_params_finds_the_state_inside_an_optax_chain():
    opt = optax.chain(optax.clip_by_global_norm(1.0), vi.ivon(0.1, ess=10.0))
    params = {"w": jnp.zeros(3)}

    @jax.jit
    def step(params, key):
        theta, state = vi.sample_params(opt.init(params), params, key)
        (ivon_state,) = [s for s in state if isinstance(s, vi.IVONState)]
        _, state = opt.update({"w": jnp.ones(3)}, state, params)
        return theta, ivon_state.noise, vi.posterior(state, params)

    theta, noise, q = step(params, rbg_key(0))
    np.testing.assert_allclose(theta["w"], noise["w"])
    assert q.std["w"].shape == (3,)
    with pytest.raises(ValueError, match="opt_state must contain exactly one"):
        vi.sample_params(optax.adam(0.1).init(params), params, rbg_key(0))


# ---------------------------------------------------------------------------------------------
# bad input


def test_ess_must_be_positive():
    for ess in (0.0, -3.0):
        with pytest.raises(ValueError, match="ess must be > 0"):
            vi.ivon(0.1, ess=ess)
        with pytest.raises(ValueError, match="ess must be > 0"):
            vi.vogn(0.1, ess=ess)


def test_noise_variance_and_prior_precision_must_be_positive(blr):
    x, y, _ = blr
    with pytest.raises(ValueError, match="noise_variance must be > 0"):
        vi.mean_field(linear_model, optax.adam(0.1), num_data=N, likelihood="regression", noise_variance=0.0)
    with pytest.raises(ValueError, match="noise_variance must be > 0"):
        vi.vogn_grads(linear_model, {"w": jnp.zeros((D, 1))}, x, y, likelihood="regression", noise_variance=-1.0)
    q = vi.MeanFieldGaussian({"w": jnp.zeros((D, 1))}, {"w": jnp.ones((D, 1))})
    with pytest.raises(ValueError, match="noise_variance must be > 0"):
        vi.predict(linear_model, q, x, key=rbg_key(0), likelihood="regression", noise_variance=0.0)
    with pytest.raises(ValueError, match="prior_precision must be > 0"):
        vi.mean_field(linear_model, optax.adam(0.1), num_data=N, prior_precision=0.0)
    with pytest.raises(ValueError, match="prior_precision must be > 0"):
        vi.mean_field(linear_model, optax.adam(0.1), num_data=N, prior_precision={"w": jnp.array([1.0, -1.0, 1.0])})
    with pytest.raises(ValueError, match="prior_precision must be > 0"):
        vi.vogn(0.1, ess=10.0, prior_precision=-1.0)
    with pytest.raises(ValueError, match="prior_precision must be > 0"):
        vi.kl_to_prior(q, 0.0)


def test_temperature_must_be_positive():
    for temperature in (0.0, -1.0):
        with pytest.raises(ValueError, match="temperature must be > 0"):
            vi.mean_field(linear_model, optax.adam(0.1), num_data=N, temperature=temperature)


def test_mismatched_data_shapes_are_rejected(blr):
    x, y, _ = blr
    params = {"w": jnp.zeros((D, 1))}
    mf = vi.mean_field(linear_model, optax.adam(0.1), num_data=N, likelihood="regression")
    state = mf.init(params)
    with pytest.raises(ValueError, match=r"y must have the model output's shape"):
        mf.step(state, (x, y[:-1]), rbg_key(0))
    with pytest.raises(ValueError, match=r"y must have shape \[n\]"):
        vi.mean_field(linear_model, optax.adam(0.1), num_data=N).step(state, (x, jnp.zeros((N, 1), int)), rbg_key(0))
    with pytest.raises(ValueError, match=r"y must have the model output's shape"):
        vi.vogn_grads(linear_model, params, x, y[:, [0, 0]], likelihood="regression")
    with pytest.raises(ValueError, match="x does not fit the model"):
        vi.predict(linear_model, mf.posterior(state), x[:, :2], key=rbg_key(0))
    with pytest.raises(ValueError, match="std leaves must match"):
        vi.MeanFieldGaussian({"w": jnp.zeros(3)}, {"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="params must have the structure"):
        vi.sample_params(vi.ivon(0.1, ess=1.0).init(params), {"v": jnp.zeros(3)}, rbg_key(0))


def test_update_without_its_inputs_is_rejected():
    params = {"w": jnp.zeros(2)}
    ivon, vogn = vi.ivon(0.1, ess=1.0), vi.vogn(0.1, ess=1.0)
    with pytest.raises(ValueError, match="params must be passed"):
        ivon.update(params, ivon.init(params))
    with pytest.raises(ValueError, match="grad_squared must be passed"):
        vogn.update(params, vogn.init(params), params)
