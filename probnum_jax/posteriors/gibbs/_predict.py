"""Predictions from weight samples, the functional network, and planted teacher-student data."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr
from jaxtyping import Array, Float, PRNGKeyArray

from ._conditionals import Uniforms
from ._sampler import (
    GibbsState,
    _check_weights,
    forward_latents,
    num_hidden,
    num_weights,
    prior_weights,
)
from ._spec import MLPSpec, check_inputs, check_spec


def network(spec: MLPSpec):
    """The noiseless network of ``spec`` as ``model_fn(weights, x[n, d_in]) -> outputs[n, d_out]``.

    ``f(x) = W^L sigma(... sigma(W^1 x))`` (with biases from the last columns),
    the convention of :mod:`probnum_jax.posteriors`: one draw of :func:`sample`'s
    weights (``jax.tree.map(lambda w: w[s], weights)``) is a valid ``weights``.
    For probit, ``f`` is the probit score: ``P(y = 1) = Phi(f)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import gibbs
        >>> spec = gibbs.MLPSpec((2, 3, 1))
        >>> model_fn = gibbs.network(spec)
        >>> model_fn((jnp.ones((3, 2)), jnp.ones((1, 3))), jnp.array([[1.0, -2.0], [1.0, 1.0]])).tolist()
        [[0.0], [6.0]]
    """
    check_spec(spec)

    def model_fn(weights, x):
        h = x
        for w in weights[:-1]:
            h = spec.activate(spec.with_ones(h) @ w.T)
        return spec.with_ones(h) @ weights[-1].T

    return model_fn


def predict(
    spec: MLPSpec,
    weights: tuple[Array, ...],
    x: Float[Array, "n d_in"],
    *,
    key: PRNGKeyArray | None = None,
    include_noise: bool = False,
):
    """Monte Carlo posterior predictive over the weight samples of :func:`sample`.

    By default the network is evaluated *without* the hidden-layer noise of the
    augmented model (:func:`network`); with ``key`` the forward pass draws the
    pre- and post-activation noise (``noise_pre``, ``noise_post``) once per
    sample, which is the augmented model's own predictive.

    Args:
        spec: the model.
        weights: ``(W^1, ..., W^L)`` with a leading sample axis ``S``.
        x: test inputs ``[n, d_in]``.
        key: if given, sample the hidden-layer noise in the forward pass.
        include_noise: regression only: add ``noise_obs`` to the variance.

    Returns:
        ``"gaussian"``: ``(mean, variance)``, each ``[n, d_out]``, the mean and
        variance of the network output over the samples (plus ``noise_obs`` if
        ``include_noise``). ``"probit"``: ``P(y = 1 | x)`` of shape ``[n]``, the
        average of ``Phi(f(x))`` over the samples.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import gibbs
        >>> spec = gibbs.MLPSpec((1, 1), noise_obs=0.5)
        >>> weights = (jnp.array([1.0, 3.0]).reshape(2, 1, 1),)
        >>> mean, var = gibbs.predict(spec, weights, jnp.ones((1, 1)), include_noise=True)
        >>> mean.tolist(), var.tolist()
        ([[2.0]], [[1.5]])
    """
    check_spec(spec)
    x = check_inputs(spec, x)
    if not isinstance(weights, (tuple, list)) or not weights or jnp.ndim(weights[0]) != 3:
        raise ValueError("weights must be a tuple (W^1, ..., W^L) with a leading sample axis, as returned by gibbs.sample.")
    _check_weights(spec, tuple(w[0] for w in weights))
    if include_noise and spec.likelihood != "gaussian":
        raise ValueError("include_noise is only used with likelihood='gaussian'.")
    return _predict(spec, tuple(weights), x, key, include_noise)


@eqx.filter_jit
def _predict(spec, weights, x, key, include_noise):
    num = weights[0].shape[0]
    if key is None:
        outputs = jax.vmap(network(spec), in_axes=(0, None))(tuple(weights), x)
    else:
        keys = jax.random.split(key, num)

        def noisy(w, k):
            return forward_latents(spec, Uniforms(k, 0, 2 * num_hidden(spec, x.shape[0]), x.dtype), w, x)[2]

        outputs = jax.vmap(noisy)(tuple(weights), keys)
    if spec.likelihood == "probit":
        return jnp.mean(ndtr(outputs[..., 0]), axis=0)
    mean = jnp.mean(outputs, axis=0)
    var = jnp.var(outputs, axis=0)
    return mean, var + spec.noise_obs if include_noise else var


def teacher_student(
    key: PRNGKeyArray,
    spec: MLPSpec,
    num_data: int,
    *,
    x: Float[Array, "n d_in"] | None = None,
) -> tuple[Array, Array, GibbsState]:
    """Synthetic data from a planted teacher drawn from the prior (Piccioli et al., 2023, Sec. 4).

    The teacher's weights are drawn from the prior of ``spec``, the inputs from
    ``N(0, I)`` (unless ``x`` is given), the hidden latents by a noisy forward
    pass, and the targets from the likelihood: ``y = f + N(0, noise_obs)`` or,
    for probit, ``y = 1[f + N(0, 1) > 0]``. Because the teacher is a draw from
    the posterior given the data it generates, a chain started at the teacher
    is at equilibrium from its first sweep: its traces (test error, log
    likelihood) should agree with those of chains started at random once those
    have thermalised; a lasting gap means they have not.

    Args:
        key: a JAX random key.
        spec: the model; to keep the pre-activations of order one choose
            ``prior_precision`` of order the fan-in (``widths[l-1]``).
        num_data: number of data points ``n``.
        x: optional inputs ``[n, d_in]``.

    Returns:
        ``(x, y, teacher)``: inputs ``[n, d_in]``, targets (``[n, d_out]`` floats,
        or ``[n]`` int labels for probit) and the teacher's :class:`GibbsState`,
        which is a valid ``init_state`` for :func:`sample`.

    Example:
        >>> import jax
        >>> from probnum_jax.posteriors import gibbs
        >>> spec = gibbs.MLPSpec((3, 4, 1), prior_precision=(3.0, 4.0))
        >>> x, y, teacher = gibbs.teacher_student(jax.random.key(0), spec, 50)
        >>> x.shape, y.shape, teacher.weights[0].shape, teacher.post[0].shape
        ((50, 3), (50, 1), (4, 3), (50, 4))
    """
    check_spec(spec)
    if not isinstance(num_data, int) or isinstance(num_data, bool) or num_data < 1:
        raise ValueError(f"num_data must be a positive int, got {num_data!r}.")
    if x is not None:
        x = check_inputs(spec, x)
        if x.shape[0] != num_data:
            raise ValueError(f"x must have num_data = {num_data} rows, got shape {x.shape}.")
    return _teacher_student(key, spec, num_data, x)


@eqx.filter_jit
def _teacher_student(key, spec, num_data, x):
    dtype = jnp.result_type(float) if x is None else x.dtype
    d_in, d_out = spec.widths[0], spec.widths[-1]
    size = num_data * d_in + num_weights(spec) + 2 * num_hidden(spec, num_data) + num_data * d_out
    rng = Uniforms(key, 0, size, dtype)
    inputs = rng.normal((num_data, d_in))
    x = inputs if x is None else x
    weights = prior_weights(spec, rng, dtype)
    pre, post, out = forward_latents(spec, rng, weights, x)
    noise = rng.normal(out.shape)
    if spec.likelihood == "gaussian":
        y = out + jnp.sqrt(spec.noise_obs) * noise
        teacher = GibbsState(weights=weights, pre=pre, post=post, latent=y)
    else:
        latent = out + noise
        y = (latent[:, 0] > 0).astype(jnp.int32)
        teacher = GibbsState(weights=weights, pre=pre, post=post, latent=latent)
    return x, y, teacher

