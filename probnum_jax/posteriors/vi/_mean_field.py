"""Mean-field Gaussian VI by the reparameterisation trick (Blundell et al., 2015).

The variational parameters are the mean and ``rho`` with ``std = softplus(rho)``;
an optax optimizer minimises the negative (tempered) ELBO

    E_q[-log p(D | theta)] + temperature * KL(q || N(0, 1/prior_precision)),

with the expected negative log-likelihood estimated by Monte Carlo over
``theta = mean + std * eps`` (Kingma & Welling, 2014; Blundell et al., 2015,
"Weight uncertainty in neural networks") and the KL in closed form. On a
minibatch the likelihood term is rescaled by ``num_data / batch_size``.
"""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .._checks import check_model_data, check_params
from .._likelihoods import check_likelihood
from ._posterior import (
    MeanFieldGaussian,
    check_positive_scalar,
    check_positive_tree,
    kl_to_prior,
    tree_normal_like,
)


def log_likelihood(likelihood, f, y, noise_variance):
    """Summed log-likelihood of outputs ``f[n, C]`` (Gaussian noise ``noise_variance`` for regression)."""
    if likelihood == "classification":
        return jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(f, axis=-1), y[:, None], axis=-1))
    resid = jnp.square(y - f)
    return -0.5 * jnp.sum(resid / noise_variance + jnp.log(2 * jnp.pi * noise_variance))


def _inverse_softplus(x):
    return x + jnp.log(-jnp.expm1(-x))


class MeanFieldState(NamedTuple):
    """State of :class:`MeanFieldVI`: variational parameters and the optimizer's state.

    Attributes:
        mean: pytree of variational means.
        rho: pytree of unconstrained scales, ``std = softplus(rho)``.
        opt_state: the optax state over ``(mean, rho)``.
        count: number of steps taken.
    """

    mean: PyTree
    rho: PyTree
    opt_state: optax.OptState
    count: Array


class MeanFieldVI(eqx.Module):
    """Mean-field Gaussian VI as an init/step pair; build it with :func:`mean_field`.

    Attributes:
        model_fn: ``model_fn(params, x[n, ...]) -> outputs[n, C]``.
        optimizer: the optax transformation applied to ``(mean, rho)``.
        likelihood: ``"classification"`` or ``"regression"``.
        num_data: training-set size ``N``; the likelihood of a batch is scaled by ``N / n``.
        prior_precision: precision of the zero-mean Gaussian prior (scalar or pytree).
        noise_variance: observation-noise variance (regression).
        temperature: multiplies the KL term (``< 1`` is a "cold" posterior).
        num_samples: Monte Carlo samples per step.
        init_std: the initial posterior standard deviation.
    """

    model_fn: Callable = eqx.field(static=True)
    optimizer: optax.GradientTransformation = eqx.field(static=True)
    likelihood: str = eqx.field(static=True)
    num_data: float
    prior_precision: PyTree
    noise_variance: float
    temperature: float
    num_samples: int = eqx.field(static=True)
    init_std: float

    def init(self, params: PyTree) -> MeanFieldState:
        """Initial state: mean ``params`` and standard deviation ``init_std`` everywhere."""
        check_params(params)
        rho = jax.tree.map(lambda p: jnp.full_like(p, _inverse_softplus(jnp.asarray(self.init_std, p.dtype))), params)
        return MeanFieldState(params, rho, self.optimizer.init((params, rho)), jnp.zeros((), jnp.int32))

    def posterior(self, state: MeanFieldState) -> MeanFieldGaussian:
        """The current :class:`MeanFieldGaussian` of ``state``."""
        return MeanFieldGaussian(state.mean, jax.tree.map(jax.nn.softplus, state.rho))

    def loss(self, variational: tuple, data: tuple, key: PRNGKeyArray) -> Float[Array, ""]:
        """Negative ELBO per training sample, ``(E_q[NLL] + temperature * KL) / num_data``, at ``(mean, rho)``."""
        mean, rho = variational
        x, y = data
        check_model_data(self.model_fn, mean, x, y, self.likelihood)
        q = MeanFieldGaussian(mean, jax.tree.map(jax.nn.softplus, rho))
        eps = tree_normal_like(key, mean, (self.num_samples,))
        thetas = jax.tree.map(lambda m, s, e: m + s * e, q.mean, q.std, eps)
        loglik = jax.vmap(lambda th: log_likelihood(self.likelihood, self.model_fn(th, x), y, self.noise_variance))
        expected_nll = -jnp.mean(loglik(thetas)) * (self.num_data / x.shape[0])
        return (expected_nll + self.temperature * kl_to_prior(q, self.prior_precision)) / self.num_data

    def step(self, state: MeanFieldState, data: tuple, key: PRNGKeyArray) -> tuple[MeanFieldState, Float[Array, ""]]:
        """One optimizer step on the negative ELBO of a batch ``data = (x, y)``.

        Returns:
            ``(state, loss)`` with ``loss`` the negative ELBO per training sample
            before the step (a Monte Carlo estimate).
        """
        variational = (state.mean, state.rho)
        loss, grads = jax.value_and_grad(self.loss)(variational, data, key)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, variational)
        mean, rho = optax.apply_updates(variational, updates)
        return MeanFieldState(mean, rho, opt_state, state.count + 1), loss

    def run(
        self, state: MeanFieldState, data: tuple, *, key: PRNGKeyArray, num_steps: int
    ) -> tuple[MeanFieldState, Float[Array, " num_steps"]]:
        """``num_steps`` full-batch steps under ``lax.scan``; returns the state and the losses."""

        def body(state, k):
            return self.step(state, data, k)

        return jax.lax.scan(body, state, jax.random.split(key, num_steps))


def mean_field(
    model_fn: Callable,
    optimizer: optax.GradientTransformation,
    *,
    num_data: int,
    likelihood: str = "classification",
    prior_precision: PyTree | float = 1.0,
    noise_variance: float = 1.0,
    temperature: float = 1.0,
    num_samples: int = 1,
    init_std: float = 1e-3,
) -> MeanFieldVI:
    """Mean-field Gaussian variational inference with the reparameterisation trick.

    Minimises the tempered negative ELBO
    ``E_q[-log p(D | theta)] + temperature * KL(q || N(0, 1/prior_precision))``
    over ``q = N(mean, diag(softplus(rho)**2))``: the expectation by Monte Carlo
    with ``theta = mean + std * eps`` (Blundell et al., 2015, "Weight
    uncertainty in neural networks"; Kingma & Welling, 2014), the KL in closed
    form (:func:`kl_to_prior`). For regression the likelihood is
    ``N(y | f(x; theta), noise_variance * I)``; for classification a softmax.

    Args:
        model_fn: ``model_fn(params, x[n, ...]) -> outputs[n, C]``.
        optimizer: an optax transformation, applied to the pair ``(mean, rho)``.
        num_data: the training-set size ``N`` (scales minibatch likelihoods by ``N / n``).
        likelihood: ``"classification"`` or ``"regression"``.
        prior_precision: precision of the zero-mean Gaussian prior, a positive scalar
            or a pytree like the parameters.
        noise_variance: the Gaussian observation-noise variance (regression), > 0.
        temperature: the weight of the KL term, > 0 (1 is the Bayesian posterior).
        num_samples: Monte Carlo samples of ``theta`` per step.
        init_std: initial standard deviation of every parameter, > 0.

    Returns:
        A :class:`MeanFieldVI` with ``init(params)``, ``step(state, (x, y), key)``
        (jit-able), ``run(state, (x, y), key=..., num_steps=...)`` and ``posterior(state)``.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> from probnum_jax.posteriors import vi
        >>> model_fn = lambda p, x: x @ p["w"]
        >>> x = jax.random.normal(jax.random.key(0), (20, 2))
        >>> y = x @ jnp.array([[1.0], [-1.0]])
        >>> mf = vi.mean_field(model_fn, optax.adam(0.05), num_data=20, likelihood="regression",
        ...                    noise_variance=0.1)
        >>> state = mf.init({"w": jnp.zeros((2, 1))})
        >>> state, losses = jax.jit(mf.run, static_argnames="num_steps")(
        ...     state, (x, y), key=jax.random.key(1), num_steps=300)
        >>> q = mf.posterior(state)
        >>> bool(jnp.allclose(q.mean["w"].ravel(), jnp.array([1.0, -1.0]), atol=0.2))
        True
    """
    check_likelihood(likelihood)
    check_positive_scalar("num_data", num_data)
    check_positive_tree("prior_precision", prior_precision)
    check_positive_scalar("noise_variance", noise_variance)
    check_positive_scalar("temperature", temperature)
    check_positive_scalar("init_std", init_std)
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}.")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got {type(optimizer).__name__}.")
    return MeanFieldVI(
        model_fn=model_fn,
        optimizer=optimizer,
        likelihood=likelihood,
        num_data=float(num_data),
        prior_precision=prior_precision,
        noise_variance=noise_variance,
        temperature=temperature,
        num_samples=num_samples,
        init_std=init_std,
    )
