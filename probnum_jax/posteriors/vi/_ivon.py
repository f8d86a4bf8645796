"""IVON: the improved variational online Newton optimizer (Shen et al., 2024).

Y. Shen, N. Daheim, B. Cong, P. Nickl, G. M. Marconi, C. Bazan, R. Yokota,
I. Gurevych, D. Cremers, M. E. Khan and T. Moellenhoff, "Variational Learning
is Effective for Large Deep Networks", ICML 2024, Algorithm 1. The posterior
is ``N(m, diag(1 / (ess * (h + weight_decay))))``; ``h`` is a running average
of the reparameterisation-trick Hessian estimate ``g * (theta - m) / sigma**2``
(Stein's lemma: its expectation is the expected diagonal Hessian), kept
positive by the Riemannian-gradient correction term.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, PyTree

from ._posterior import check_positive_scalar


class IVONState(NamedTuple):
    """State of :func:`ivon`.

    Attributes:
        count: number of updates taken.
        momentum: running average of the gradients.
        hess: running estimate of the expected diagonal Hessian of the per-sample loss
            (does not include the weight decay).
        noise: ``theta - m`` of the sample drawn by :func:`sample_params` for the
            next update (zeros until one is drawn).
        ess: the effective sample size (a scalar array).
        delta: the weight decay (a scalar array).
    """

    count: Array
    momentum: PyTree
    hess: PyTree
    noise: PyTree
    ess: Array
    delta: Array


def ivon(
    learning_rate: optax.ScalarOrSchedule,
    *,
    ess: float,
    hess_init: float = 1.0,
    beta1: float = 0.9,
    beta2: float = 0.99999,
    weight_decay: float = 1e-4,
    clip_radius: float = float("inf"),
    rescale_lr: bool = True,
) -> optax.GradientTransformation:
    """The IVON optimizer (Shen et al., 2024, "Variational Learning is Effective for Large Deep Networks").

    Learns a mean-field Gaussian ``N(m, diag(1 / (ess * (h + weight_decay))))``
    over the parameters at the cost of Adam. Each step:

    1. ``theta, opt_state = vi.sample_params(opt_state, params, key)`` draws
       ``theta ~ q`` and records ``theta - m`` in the state;
    2. the user evaluates ``grads`` of the *mean* per-sample loss at ``theta``;
    3. ``updates, opt_state = opt.update(grads, opt_state, params)`` updates the
       momentum, the Hessian estimate ``h <- beta2 h + (1 - beta2) hhat +
       0.5 (1 - beta2)**2 (h - hhat)**2 / (h + weight_decay)`` with
       ``hhat = grads * (theta - m) / sigma**2`` and returns
       ``-lr * clip((momentum_debiased + weight_decay * m) / (h + weight_decay), clip_radius)``.

    ``params`` (the mean ``m``) must be passed to ``update``. Without a draw
    from :func:`sample_params` before an update the noise is zero and the
    Hessian estimate decays. :func:`posterior` gives the Gaussian.

    Args:
        learning_rate: a scalar or an optax schedule.
        ess: the effective sample size ``lambda``, typically the training-set size; > 0.
        hess_init: initial Hessian estimate ``h0``, > 0.
        beta1: momentum coefficient.
        beta2: Hessian averaging coefficient (the paper's default 0.99999).
        weight_decay: ``delta``; the prior is ``N(0, 1 / (ess * delta))``.
        clip_radius: elementwise clipping of the preconditioned step.
        rescale_lr: multiply the learning rate by ``hess_init + weight_decay``, so
            that it is on the scale of an SGD learning rate (as in the paper's code).

    Returns:
        An ``optax.GradientTransformation`` whose state is an :class:`IVONState`.

    Example:
        >>> import jax, jax.numpy as jnp, optax
        >>> from probnum_jax.posteriors import vi
        >>> loss = lambda p: 0.5 * jnp.sum(jnp.array([1.0, 4.0]) * p["w"] ** 2)
        >>> opt = vi.ivon(0.1, ess=100.0, beta2=0.99)
        >>> params = {"w": jnp.ones(2)}
        >>> state = opt.init(params)
        >>> @jax.jit
        ... def step(params, state, key):
        ...     theta, state = vi.sample_params(state, params, key)
        ...     updates, state = opt.update(jax.grad(loss)(theta), state, params)
        ...     return optax.apply_updates(params, updates), state
        >>> for k in jax.random.split(jax.random.key(0), 500):
        ...     params, state = step(params, state, k)
        >>> vi.posterior(state, params).std["w"].shape
        (2,)
    """
    check_positive_scalar("ess", ess)
    check_positive_scalar("hess_init", hess_init)
    if not callable(learning_rate):
        check_positive_scalar("learning_rate", learning_rate)
    if not 0 <= beta1 < 1:
        raise ValueError(f"beta1 must be in [0, 1), got {beta1}.")
    if not 0 <= beta2 < 1:
        raise ValueError(f"beta2 must be in [0, 1), got {beta2}.")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}.")
    check_positive_scalar("clip_radius", clip_radius)
    scale = (hess_init + weight_decay) if rescale_lr else 1.0

    def init_fn(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        dtype = jnp.result_type(*jax.tree.leaves(params))
        return IVONState(
            count=jnp.zeros((), jnp.int32),
            momentum=zeros,
            hess=jax.tree.map(lambda p: jnp.full_like(p, hess_init), params),
            noise=zeros,
            ess=jnp.asarray(ess, dtype),
            delta=jnp.asarray(weight_decay, dtype),
        )

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError("params must be passed to ivon's update (the posterior mean m).")
        count = state.count + 1
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        delta = state.delta

        def leaf(g, mom, h, eps, m):
            hhat = g * eps * state.ess * (h + delta)  # g * eps / sigma**2
            mom = beta1 * mom + (1 - beta1) * g
            h = beta2 * h + (1 - beta2) * hhat + 0.5 * (1 - beta2) ** 2 * jnp.square(h - hhat) / (h + delta)
            mom_hat = mom / (1 - beta1 ** count.astype(mom.dtype))
            step = jnp.clip((mom_hat + delta * m) / (h + delta), -clip_radius, clip_radius)
            dtype = jnp.result_type(m)
            return (-lr * scale * step).astype(dtype), mom.astype(dtype), h.astype(dtype)

        out = jax.tree.map(leaf, grads, state.momentum, state.hess, state.noise, params)
        is_triple = lambda t: isinstance(t, tuple) and len(t) == 3  # noqa: E731
        pick = lambda i: jax.tree.map(lambda t: t[i], out, is_leaf=is_triple)  # noqa: E731
        new_state = IVONState(
            count=count,
            momentum=pick(1),
            hess=pick(2),
            noise=jax.tree.map(jnp.zeros_like, state.noise),
            ess=state.ess,
            delta=state.delta,
        )
        return pick(0), new_state

    return optax.GradientTransformation(init_fn, update_fn)
