"""Training a score model by denoising score matching with an optax optimiser.

``train_step`` is one optimiser step on one minibatch (drive it yourself, as
with any optax transformation); ``train`` runs ``num_steps`` of them on random
minibatches of a data set inside one jitted ``jax.lax.scan``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

from ._checks import check_count
from ._loss import _check_data, _check_model_output, _check_weighting, denoising_score_matching_loss


def _check_optimizer(optimizer):
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got {type(optimizer).__name__}.")


def train_step(
    model_fn,
    params,
    opt_state,
    sde,
    batch: Float[Array, "b ..."],
    optimizer: optax.GradientTransformation,
    *,
    key,
    weighting: str = "default",
    t_min: float = 1e-5,
):
    """One optimiser step on the denoising-score-matching loss of one minibatch.

    Args:
        model_fn: ``model_fn(params, x_one, t) -> score`` (see
            :func:`denoising_score_matching_loss`).
        params: the current parameters.
        opt_state: the optimiser state, initially ``optimizer.init(params)``.
        sde: an :class:`AbstractSDE`.
        batch: the minibatch ``[b, *shape]``.
        optimizer: an ``optax.GradientTransformation``.
        key: the random key for the loss (times and noise).
        weighting, t_min: as in :func:`denoising_score_matching_loss`.

    Returns:
        ``(params, opt_state, loss)``: the updated parameters and optimiser
        state, and the loss at the parameters before the update.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> from probnum_jax import diffusion
        >>> sde = diffusion.VPSDE()
        >>> model_fn = lambda params, x, t: -params * x
        >>> optimizer = optax.sgd(1e-2)
        >>> params = jnp.asarray(3.0)
        >>> opt_state = optimizer.init(params)
        >>> batch = jax.random.normal(jax.random.key(0), (64, 2))
        >>> params, opt_state, loss = diffusion.train_step(
        ...     model_fn, params, opt_state, sde, batch, optimizer, key=jax.random.key(1))
        >>> loss.shape
        ()
    """
    _check_optimizer(optimizer)

    def loss_fn(p):
        return denoising_score_matching_loss(model_fn, p, sde, batch, key=key, weighting=weighting, t_min=t_min)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return params, opt_state, loss


@eqx.filter_jit
def _train_loop(model_fn, params, sde, data, optimizer, key, num_steps, batch_size, weighting, t_min):
    n = data.shape[0]

    def body(carry, step_key):
        params, opt_state = carry
        key_batch, key_loss = jax.random.split(step_key)
        index = jax.random.randint(key_batch, (batch_size,), 0, n)
        params, opt_state, loss = train_step(
            model_fn, params, opt_state, sde, data[index], optimizer, key=key_loss, weighting=weighting, t_min=t_min
        )
        return (params, opt_state), loss

    (params, _), losses = jax.lax.scan(body, (params, optimizer.init(params)), jax.random.split(key, num_steps))
    return params, losses


def train(
    model_fn,
    params,
    sde,
    data: Float[Array, "n ..."],
    optimizer: optax.GradientTransformation,
    *,
    key,
    num_steps: int,
    batch_size: int = 128,
    weighting: str = "default",
    t_min: float = 1e-5,
):
    """Train a score model by denoising score matching (Vincent 2011; Song et al. 2021).

    Runs ``num_steps`` of :func:`train_step` from a fresh optimiser state,
    each on a minibatch of ``batch_size`` samples drawn at random from
    ``data`` (uniformly, with replacement), inside one jitted
    ``jax.lax.scan``.

    Args:
        model_fn: ``model_fn(params, x_one, t) -> score`` for one sample; for a
            noise-predicting network use ``sde.score_model(net_fn)``.
        params: the initial parameters (a pytree of arrays).
        sde: an :class:`AbstractSDE`.
        data: the training set ``[n, *shape]``.
        optimizer: an ``optax.GradientTransformation``.
        key: the random key (minibatches, times, noise).
        num_steps: the number of optimiser steps.
        batch_size: the minibatch size.
        weighting, t_min: as in :func:`denoising_score_matching_loss`.

    Returns:
        ``(params, losses)``: the trained parameters and the minibatch loss of
        every step, ``losses[num_steps]``.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> from probnum_jax import diffusion
        >>> sde = diffusion.VPSDE()
        >>> net_fn, params = diffusion.from_equinox(diffusion.ScoreMLP(2, key=jax.random.key(0), width=16, depth=1))
        >>> data = jax.random.normal(jax.random.key(1), (512, 2))
        >>> params, losses = diffusion.train(sde.score_model(net_fn), params, sde, data, optax.adam(1e-3),
        ...                                  key=jax.random.key(2), num_steps=20, batch_size=64)
        >>> losses.shape
        (20,)
    """
    check_count("num_steps", num_steps)
    check_count("batch_size", batch_size)
    _check_weighting(weighting)
    _check_optimizer(optimizer)
    data = _check_data("data", data)
    t0 = jnp.asarray(0.5 * (sde.t_min + sde.t_max), data.dtype)
    _check_model_output(model_fn, params, data[0], t0)
    return _train_loop(model_fn, params, sde, data, optimizer, key, num_steps, batch_size, weighting, t_min)
