"""Bad input to the Laplace functions: clear errors, and results as values under jit."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

from probnum_jax.posteriors import laplace


@pytest.fixture(scope="module")
def setup(mlp_problem):
    net = mlp_problem
    post = laplace.fit(net.model_fn, net.params, (net.x, net.y), hessian="diag")
    return net, post


def test_unknown_options(setup):
    net, post = setup
    data = (net.x, net.y)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        laplace.fit(net.model_fn, net.params, data, likelihood="poisson")
    with pytest.raises(ValueError, match="hessian must be one of"):
        laplace.fit(net.model_fn, net.params, data, hessian="block")
    with pytest.raises(ValueError, match="subset must be one of"):
        laplace.fit(net.model_fn, net.params, data, subset="first_layer")
    with pytest.raises(ValueError, match="subset mask"):
        laplace.fit(net.model_fn, net.params, data, subset=jax.tree.map(lambda _: False, net.params))
    with pytest.raises(ValueError, match="method must be one of"):
        laplace.predict(post, net.x, method="sampling")
    with pytest.raises(ValueError, match="link must be one of"):
        laplace.predict(post, net.x, link="softmax")
    with pytest.raises(ValueError, match="pass key"):
        laplace.predict(post, net.x, link="mc")
    with pytest.raises(ValueError, match="method must be one of"):
        laplace.optimize_prior_precision(post, method="cv")
    with pytest.raises(ValueError, match="validation data"):
        laplace.optimize_prior_precision(post, method="gridsearch")
    with pytest.raises(ValueError, match="prior_structure"):
        laplace.optimize_prior_precision(post, prior_structure="blockwise")


def test_data_that_does_not_match_the_model(setup):
    net, post = setup
    with pytest.raises(ValueError, match=r"y must have shape \[n\]"):
        laplace.fit(net.model_fn, net.params, (net.x, net.y[:-1]))
    with pytest.raises(ValueError, match=r"labels in \[0, 4\)"):
        laplace.fit(net.model_fn, net.params, (net.x, net.y + 4))
    with pytest.raises(ValueError, match=r"y must have the model output's shape"):
        laplace.fit(net.model_fn, net.params, (net.x, jnp.zeros((8, 1))), likelihood="regression")
    with pytest.raises(TypeError, match=r"\(x, y\) pair"):
        laplace.fit(net.model_fn, net.params, net.x)
    with pytest.raises(TypeError, match="model_fn"):
        laplace.fit(net.model_fn, net.params, (jnp.zeros((8, 5)), net.y))
    with pytest.raises(ValueError, match=r"x must have shape \[n, \*\(3,\)\]"):
        laplace.predict(post, jnp.zeros((2, 4)))


def test_hyperparameters_must_be_positive(setup):
    net, post = setup
    data = (net.x, net.y)
    with pytest.raises(ValueError, match="prior_precision must be > 0"):
        laplace.fit(net.model_fn, net.params, data, prior_precision=0.0)
    with pytest.raises(ValueError, match="sigma_noise must be > 0"):
        laplace.fit(net.model_fn, net.params, data, sigma_noise=-1.0)
    with pytest.raises(ValueError, match="prior_precision must be > 0"):
        laplace.log_marginal_likelihood(post, prior_precision=jnp.array([1.0, -1.0, 1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="prior_precision must be a scalar"):
        laplace.log_marginal_likelihood(post, prior_precision=jnp.ones(5))


def test_non_finite_parameters_and_curvature(setup):
    net, _ = setup
    bad = jax.tree.map(lambda a: a, net.params)
    bad = eqx.tree_at(lambda m: m.layers[0].bias, bad, bad.layers[0].bias.at[0].set(jnp.inf))
    with pytest.raises(ValueError, match="params must be finite"):
        laplace.fit(net.model_fn, bad, (net.x, net.y), hessian="diag")
    # Inside jit the failure is a value; throw=True raises it at run time.
    fit = jax.jit(lambda p, x: laplace.fit(net.model_fn, p, (x, net.y), hessian="diag", throw=False))
    assert fit(bad, net.x).result == laplace.RESULTS.nonfinite_params
    nan_x = net.x.at[0, 0].set(jnp.nan)
    assert fit(net.params, nan_x).result == laplace.RESULTS.nonfinite_curvature
    assert fit(net.params, net.x).result == laplace.RESULTS.successful
    with pytest.raises(Exception, match="curvature"):
        laplace.fit(net.model_fn, net.params, (nan_x, net.y), hessian="diag")
    bad_prior = jax.jit(
        lambda a: laplace.fit(net.model_fn, net.params, (net.x, net.y), hessian="diag", prior_precision=a, throw=False)
    )
    assert bad_prior(-1.0).result == laplace.RESULTS.invalid_hyperparameters


def test_structure_specific_errors(mlp_problem):
    net = mlp_problem
    with pytest.raises(ValueError, match="needs a dense layer"):
        laplace.fit(lambda p, x: x[:, :2] * p, jnp.ones(2), (net.x, net.y[:8] % 2), subset="last_layer")
    mask = jax.tree.map(lambda a: jnp.zeros(a.shape, bool).at[(0,) * a.ndim].set(True), net.params)
    with pytest.raises(ValueError, match="whole leaves"):
        laplace.fit(net.model_fn, net.params, (net.x, net.y), hessian="kfac", subset=mask)
    with pytest.raises(ValueError, match="positive int"):
        laplace.fit(net.model_fn, net.params, (net.x, net.y), hessian="lowrank", rank=0)
    post = laplace.fit(net.model_fn, net.params, (net.x, net.y), hessian="kfac")
    num_params = sum(a.size for a in jax.tree.leaves(net.params))
    with pytest.raises(ValueError, match="scalar or layer-wise"):
        laplace.log_marginal_likelihood(post, prior_precision=jnp.ones(num_params))
