"""VOGN: variational online Gauss-Newton (Khan et al., 2018; Osawa et al., 2019).

K. Osawa, S. Swaroop, A. Jain, R. Eschenhagen, R. E. Turner, R. Yokota and
M. E. Khan, "Practical Deep Learning with Bayesian Principles", NeurIPS 2019,
Algorithm 1. The posterior is ``N(mu, diag(1 / (ess * s + prior_precision)))``
where ``s`` is a running average of the mean *squared per-sample gradients*
(the Gauss-Newton approximation of the Hessian diagonal) at sampled weights;
the mean follows an Adam-like natural-gradient step.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PyTree

from .._checks import check_model_data, check_params
from .._likelihoods import check_likelihood, sum_loss
from ..curvature import sum_grad_squared
from ._posterior import check_positive_scalar


class VOGNState(NamedTuple):
    """State of :func:`vogn`.

    Attributes:
        count: number of updates taken.
        momentum: running average of ``grads + prior_precision / ess * mu``.
        hess: running average ``s`` of the mean squared per-sample gradients.
        noise: ``theta - mu`` of the last draw of :func:`sample_params` (for the record).
        ess: the effective sample size (a scalar array).
        delta: ``prior_precision / ess`` (a scalar array).
    """

    count: Array
    momentum: PyTree
    hess: PyTree
    noise: PyTree
    ess: Array
    delta: Array


def vogn(
    learning_rate: optax.ScalarOrSchedule,
    *,
    ess: float,
    prior_precision: float = 1.0,
    hess_init: float = 1.0,
    beta1: float = 0.9,
    beta2: float = 0.999,
) -> optax.GradientTransformationExtraArgs:
    """The VOGN optimizer (Osawa et al., 2019, "Practical Deep Learning with Bayesian Principles").

    Learns ``q = N(mu, diag(1 / (ess * (s + delta))))`` with ``delta =
    prior_precision / ess``. Each step:

    1. ``theta, opt_state = vi.sample_params(opt_state, params, key)``;
    2. ``loss, grads, grad_squared = vi.vogn_grads(model_fn, theta, x, y)``: the
       mean loss, its gradient and the mean of the squared per-sample gradients
       (from :func:`probnum_jax.posteriors.curvature.sum_grad_squared`);
    3. ``updates, opt_state = opt.update(grads, opt_state, params, grad_squared=grad_squared)``:
       ``s <- beta2 s + (1 - beta2) grad_squared``,
       ``momentum <- beta1 momentum + (1 - beta1) (grads + delta mu)`` and the
       step ``-lr * momentum_debiased / (s + delta)``.

    Args:
        learning_rate: a scalar or an optax schedule.
        ess: the effective sample size ``N`` (the training-set size), > 0.
        prior_precision: precision of the prior ``N(0, 1/prior_precision)``, > 0.
        hess_init: initial value of ``s``, > 0.
        beta1: momentum coefficient.
        beta2: averaging coefficient of ``s``.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose ``update`` needs
        ``params`` and the keyword ``grad_squared``; its state is a :class:`VOGNState`.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> from probnum_jax.posteriors import vi
        >>> model_fn = lambda p, x: x @ p["w"]
        >>> x = jax.random.normal(jax.random.key(0), (32, 3))
        >>> y = (x[:, 0] > 0).astype(int)
        >>> opt = vi.vogn(0.1, ess=32.0)
        >>> params = {"w": jnp.zeros((3, 2))}
        >>> state = opt.init(params)
        >>> @jax.jit
        ... def step(params, state, key):
        ...     theta, state = vi.sample_params(state, params, key)
        ...     loss, grads, grad_squared = vi.vogn_grads(model_fn, theta, x, y)
        ...     updates, state = opt.update(grads, state, params, grad_squared=grad_squared)
        ...     return optax.apply_updates(params, updates), state, loss
        >>> for k in jax.random.split(jax.random.key(1), 100):
        ...     params, state, loss = step(params, state, k)
        >>> bool(loss < 0.5)
        True
    """
    check_positive_scalar("ess", ess)
    check_positive_scalar("prior_precision", prior_precision)
    check_positive_scalar("hess_init", hess_init)
    if not callable(learning_rate):
        check_positive_scalar("learning_rate", learning_rate)
    if not 0 <= beta1 < 1:
        raise ValueError(f"beta1 must be in [0, 1), got {beta1}.")
    if not 0 <= beta2 < 1:
        raise ValueError(f"beta2 must be in [0, 1), got {beta2}.")

    def init_fn(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        dtype = jnp.result_type(*jax.tree.leaves(params))
        return VOGNState(
            count=jnp.zeros((), jnp.int32),
            momentum=zeros,
            hess=jax.tree.map(lambda p: jnp.full_like(p, hess_init), params),
            noise=zeros,
            ess=jnp.asarray(ess, dtype),
            delta=jnp.asarray(prior_precision / ess, dtype),
        )

    def update_fn(grads, state, params=None, *, grad_squared=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("params must be passed to vogn's update (the posterior mean mu).")
        if grad_squared is None:
            raise ValueError(
                "grad_squared must be passed to vogn's update: the mean squared per-sample gradients "
                "at the sampled weights (see vi.vogn_grads)."
            )
        if jax.tree.structure(grad_squared) != jax.tree.structure(grads):
            raise ValueError("grad_squared must have the same pytree structure as grads.")
        count = state.count + 1
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        delta = state.delta
        hess = jax.tree.map(lambda s, g2: (beta2 * s + (1 - beta2) * g2).astype(s.dtype), state.hess, grad_squared)
        momentum = jax.tree.map(
            lambda mom, g, m: (beta1 * mom + (1 - beta1) * (g + delta * m)).astype(mom.dtype),
            state.momentum,
            grads,
            params,
        )
        debias = 1 - beta1 ** count.astype(delta.dtype)
        updates = jax.tree.map(lambda mom, s: (-lr * (mom / debias) / (s + delta)).astype(s.dtype), momentum, hess)
        return updates, state._replace(count=count, momentum=momentum, hess=hess)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def vogn_grads(
    model_fn: Callable,
    params: PyTree,
    x: Float[Array, "n ..."],
    y: Array,
    *,
    likelihood: str = "classification",
    noise_variance: float = 1.0,
) -> tuple[Float[Array, ""], PyTree, PyTree]:
    """Mean negative log-likelihood, its gradient, and the mean squared per-sample gradients.

    The per-sample loss is the softmax cross-entropy (classification) or
    ``0.5 * ||y - f||^2 / noise_variance`` (regression, without constants).
    The squared per-sample gradients come from
    :func:`probnum_jax.posteriors.curvature.sum_grad_squared` without forming
    the per-sample gradients (Dangel et al., 2020); they are what :func:`vogn`
    averages into its Gauss-Newton estimate (Osawa et al., 2019).

    Args:
        model_fn: ``model_fn(params, x[n, ...]) -> outputs[n, C]``.
        params: the parameters to evaluate at (a sample from :func:`sample_params`).
        x: inputs ``[n, ...]``.
        y: integer labels ``[n]`` (classification) or targets ``[n, C]`` (regression).
        likelihood: ``"classification"`` or ``"regression"``.
        noise_variance: observation-noise variance (regression), > 0.

    Returns:
        ``(loss, grads, grad_squared)``: a scalar and two pytrees like ``params``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import vi
        >>> model_fn = lambda p, x: x @ p["w"]
        >>> x, y = jnp.ones((4, 3)), jnp.zeros((4, 1))
        >>> loss, g, g2 = vi.vogn_grads(model_fn, {"w": jnp.ones((3, 1))}, x, y, likelihood="regression")
        >>> float(loss), g2["w"].ravel().tolist()
        (4.5, [9.0, 9.0, 9.0])
    """
    check_likelihood(likelihood)
    check_params(params)
    check_positive_scalar("noise_variance", noise_variance)
    n, _ = check_model_data(model_fn, params, x, y, likelihood)
    scale = 1.0 if likelihood == "classification" else 1.0 / noise_variance

    def mean_loss(p):
        return scale * sum_loss(likelihood, model_fn(p, x), y) / n

    loss, grads = jax.value_and_grad(mean_loss)(params)
    sq = sum_grad_squared(model_fn, params, x, y, likelihood=likelihood)
    grad_squared = jax.tree.map(lambda s, p: (s * (scale**2 / n)).astype(jnp.result_type(p)), sq, params)
    return loss, grads, grad_squared
