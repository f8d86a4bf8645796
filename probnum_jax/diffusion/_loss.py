"""Denoising score matching: the training loss of score-based diffusion models.

References:
    P. Vincent. *A connection between score matching and denoising
    autoencoders.* Neural Computation 23(7), 2011. (Denoising score matching.)

    Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon, B. Poole.
    *Score-based generative modeling through stochastic differential
    equations.* ICLR 2021. (The time-integrated objective, eq. 7.)

    Y. Song, C. Durkan, I. Murray, S. Ermon. *Maximum likelihood training of
    score-based diffusion models.* NeurIPS 2021. (Likelihood weighting
    ``lambda(t) = g(t)^2``.)

    T. Karras, M. Aittala, T. Aila, S. Laine. *Elucidating the design space of
    diffusion-based generative models.* NeurIPS 2022. (EDM weighting and
    noise-level distribution.)
"""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

WEIGHTINGS = ("default", "likelihood", "none")


def _check_weighting(weighting):
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}.")


def _check_data(name, x):
    """``x[n, *shape]`` with ``n >= 1``; finite when concrete."""
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape [n, *shape] with at least one sample, got shape {x.shape}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name} must be a floating-point array, got dtype {x.dtype}.")
    if not isinstance(x, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} contains non-finite values (nan or inf).")
    return x


def _check_model_output(model_fn, params, x_one, t_one):
    out = jax.eval_shape(model_fn, params, x_one, t_one)
    out_shape = getattr(out, "shape", None)
    if out_shape != x_one.shape:
        raise ValueError(
            f"model_fn(params, x, t) must return the score of one sample, of the sample's shape {x_one.shape}; "
            f"it returned shape {out_shape}."
        )


def _weight(sde, t, weighting):
    if weighting == "default":
        return sde.loss_weight(t)
    if weighting == "likelihood":
        return sde.diffusion_squared(t)
    return jnp.ones_like(t)


def denoising_score_matching_loss(
    model_fn,
    params,
    sde,
    x: Float[Array, "n ..."],
    *,
    key,
    weighting: str = "default",
    t_min: float = 1e-5,
) -> Array:
    """The denoising-score-matching loss of a score model on a batch of data.

    Estimates (Vincent 2011; Song et al. 2021, eq. 7)

        E_t E_{x0} E_{noise} lambda(t) || s(x_t, t) + noise / sigma(t) ||^2,
        x_t = alpha(t) x0 + sigma(t) noise,

    with one time ``t ~ sde.sample_time`` and one standard-normal ``noise`` per
    sample of ``x``; ``-noise / sigma(t)`` is the score of ``x_t | x0``. The
    minimiser over all functions is the score of the diffused data marginal.

    Args:
        model_fn: ``model_fn(params, x_one, t) -> score`` for one sample
            ``x_one`` (of shape ``x.shape[1:]``) and a scalar time; vmapped
            over the batch. Build one from a noise-predicting network with
            ``sde.score_model(net_fn)``.
        params: the parameters passed to ``model_fn``.
        sde: an :class:`AbstractSDE`.
        x: the data batch ``[n, *shape]``.
        key: the random key for the times and the noise.
        weighting: ``"default"`` for ``sde.loss_weight(t)`` (``sigma(t)^2`` for
            VP/sub-VP/VE; EDM's ``lambda(sigma) sigma^4``), ``"likelihood"`` for
            ``g(t)^2`` (Song, Durkan, Murray & Ermon 2021, which makes the loss
            an upper bound on the negative log-likelihood up to a constant), or
            ``"none"`` for ``lambda = 1``.
        t_min: the smallest training time (uniform times on
            ``[t_min, t_max]``); EDM ignores it and draws log-normal noise levels.

    Returns:
        The scalar loss, averaged over the batch.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax import diffusion
        >>> sde = diffusion.VPSDE()
        >>> model_fn = lambda params, x, t: -params * x   # the score of N(0, I / params)
        >>> x = jax.random.normal(jax.random.key(0), (256, 2))
        >>> loss = diffusion.denoising_score_matching_loss(model_fn, 1.0, sde, x, key=jax.random.key(1))
        >>> loss.shape
        ()
    """
    _check_weighting(weighting)
    x = _check_data("x", x)
    n = x.shape[0]
    key_t, key_noise = jax.random.split(key)
    t = sde.sample_time(key_t, n, t_min=t_min, dtype=x.dtype)
    _check_model_output(model_fn, params, x[0], t[0])
    noise = jax.random.normal(key_noise, x.shape, x.dtype)
    expand = (slice(None),) + (None,) * (x.ndim - 1)
    x_t = sde.perturb(x, t[expand], noise)
    score = jax.vmap(model_fn, in_axes=(None, 0, 0))(params, x_t, t)
    sigma = sde.std(t)[expand]
    residual = (score + noise / sigma).reshape(n, -1)
    per_sample = _weight(sde, t, weighting) * jnp.sum(residual**2, axis=1)
    return jnp.mean(per_sample)
