"""Block-Gibbs sampling of the augmented MLP posterior (Piccioli, Troiani and Zdeborová, 2023).

:func:`init` and :func:`sweep` are the init/step pair; :func:`sample` runs a
chain under ``lax.scan`` and keeps every ``thin``-th state's weights.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._conditionals import (
    Uniforms,
    sample_post_activations,
    sample_pre_activations_linear,
    sample_pre_activations_relu,
    sample_probit_latents,
    sample_weights,
)
from ._spec import MLPSpec, check_data


class GibbsState(eqx.Module):
    """All variables of the augmented model: one state of the Markov chain.

    Attributes:
        weights: ``(W^1, ..., W^L)``, ``W^l`` of shape ``[d_l, d_{l-1}]``
            (``[d_l, d_{l-1} + 1]`` with a bias in the last column).
        pre: hidden pre-activations ``(Z^1, ..., Z^{L-1})``, each ``[n, d_l]``.
        post: hidden post-activations ``(X^1, ..., X^{L-1})``, each ``[n, d_l]``.
        latent: the probit latents ``u [n, 1]`` (``likelihood="probit"``) or the
            observations ``y [n, d_out]`` (``"gaussian"``): the output pre-activation.
    """

    weights: tuple[Float[Array, "..."], ...]
    pre: tuple[Float[Array, "n _"], ...]
    post: tuple[Float[Array, "n _"], ...]
    latent: Float[Array, "n d_out"]


def _check_weights(spec: MLPSpec, weights, name="weights"):
    shapes = spec.weight_shapes()
    if not isinstance(weights, (tuple, list)) or len(weights) != len(shapes):
        raise ValueError(f"{name} must be a tuple of {len(shapes)} arrays of shapes {shapes}, got {type(weights).__name__}.")
    got = tuple(tuple(jnp.shape(w)) for w in weights)
    if got != shapes:
        raise ValueError(f"{name} must have shapes {shapes} (W^l is [d_l, d_(l-1) + bias]), got {got}.")
    return tuple(weights)


def _check_latents(spec: MLPSpec, state, n: int, name: str):
    expected = tuple((n, d) for d in spec.widths[1:-1])
    for field in ("pre", "post"):
        got = tuple(tuple(jnp.shape(z)) for z in getattr(state, field))
        if got != expected:
            raise ValueError(
                f"{name}.{field} must hold one [n, d_l] array per hidden layer, {expected} for x with "
                f"{n} rows, got {got}."
            )


def num_weights(spec: MLPSpec) -> int:
    return sum(a * b for a, b in spec.weight_shapes())


def num_hidden(spec: MLPSpec, n: int) -> int:
    return n * sum(spec.widths[1:-1])


def prior_weights(spec: MLPSpec, rng: Uniforms, dtype):
    """Weights drawn from the prior ``W^l ~ N(0, I / prior_precision_l)``; uses ``num_weights`` normals."""
    return tuple(
        rng.normal(shape) / jnp.sqrt(spec.prior_precision[i]).astype(dtype)
        for i, shape in enumerate(spec.weight_shapes())
    )


def forward_latents(spec: MLPSpec, rng: Uniforms, weights, x):
    """A noisy forward pass of the augmented model: hidden ``(Z, X)`` and the output mean ``[n, d_out]``.

    Uses ``2 num_hidden`` normals.
    """
    pre, post, h = [], [], x
    for layer in range(spec.num_layers - 1):
        mean = spec.with_ones(h) @ weights[layer].T
        z = mean + jnp.sqrt(spec.noise_pre) * rng.normal(mean.shape)
        h = spec.activate(z) + jnp.sqrt(spec.noise_post) * rng.normal(z.shape)
        pre.append(z)
        post.append(h)
    return tuple(pre), tuple(post), spec.with_ones(h) @ weights[-1].T


def init(
    spec: MLPSpec,
    key: PRNGKeyArray,
    x: Float[Array, "n d_in"],
    y: Array,
    *,
    weights: tuple[Array, ...] | None = None,
) -> GibbsState:
    """A first state: weights from the prior (or ``weights``), latents by a noisy forward pass.

    Args:
        spec: the model, an :class:`MLPSpec`.
        key: a JAX random key.
        x: inputs ``[n, d_in]``.
        y: regression targets ``[n, d_out]``, or binary labels ``[n]`` for probit.
        weights: optional ``(W^1, ..., W^L)`` to start from (e.g. a teacher's);
            the hidden latents are then drawn from the model given these weights.

    Returns:
        A :class:`GibbsState`. For probit the latents ``u`` are drawn from their
        conditional given ``y``, so the state has positive posterior density.
    """
    x, y = check_data(spec, x, y)
    n = x.shape[0]
    if weights is not None:
        weights = tuple(jnp.asarray(w, x.dtype) for w in _check_weights(spec, weights))
    rng = Uniforms(key, n, num_weights(spec) + 2 * num_hidden(spec, n), x.dtype)
    if weights is None:
        weights = prior_weights(spec, rng, x.dtype)
    pre, post, out = forward_latents(spec, rng, weights, x)
    latent = sample_probit_latents(rng.take((n, 1)), out, y) if spec.likelihood == "probit" else y
    return GibbsState(weights=weights, pre=pre, post=post, latent=latent)


def sweep(spec: MLPSpec, state: GibbsState, x: Float[Array, "n d_in"], y: Array, key: PRNGKeyArray) -> GibbsState:
    """One systematic-scan block-Gibbs sweep; leaves the posterior of the augmented model invariant.

    In order: the weights of every layer (all rows of ``W^l`` from one Cholesky
    factor of ``lambda_l I + X^T X / Delta``), then for each hidden layer its
    pre-activations (entrywise; a two-piece truncated-Gaussian mixture for ReLU)
    and its post-activations (all rows from one Cholesky factor of
    ``I / Delta_X + W^T W / Delta``), and finally the probit latents. Each
    block is drawn exactly from its conditional (Piccioli et al., 2023, Sec. 3),
    so the sweep needs no tuning and no accept/reject step. Cost per sweep
    ``O(sum_l n d_{l-1} (d_{l-1} + d_l) + d_{l-1}^3)``.

    Args:
        spec: the model.
        state: the current :class:`GibbsState`.
        x: inputs ``[n, d_in]``.
        y: targets as for :func:`init`.
        key: a JAX random key.

    Returns:
        The next :class:`GibbsState`.
    """
    x, y = check_data(spec, x, y)
    if not isinstance(state, GibbsState):
        raise TypeError(f"state must be a gibbs.GibbsState, got {type(state).__name__}.")
    _check_weights(spec, state.weights, "state.weights")
    _check_latents(spec, state, x.shape[0], "state")
    num_layers, n = spec.num_layers, x.shape[0]
    hidden = num_hidden(spec, n)
    num_uniform = (2 * hidden if spec.activation == "relu" else 0) + (n if spec.likelihood == "probit" else 0)
    num_normal = num_weights(spec) + (hidden if spec.activation == "relu" else 2 * hidden)
    rng = Uniforms(key, num_uniform, num_normal, x.dtype)
    pre, post = list(state.pre), list(state.post)
    latent = y if spec.likelihood == "gaussian" else state.latent
    inputs = [x] + post
    targets = pre + [latent]
    noises = [spec.noise_pre] * (num_layers - 1) + [spec.noise_out]

    weights = [
        sample_weights(
            rng.normal(spec.weight_shapes()[l][::-1]), spec.with_ones(inputs[l]), targets[l], noises[l],
            spec.prior_precision[l],
        )
        for l in range(num_layers)
    ]
    conditional_pre = sample_pre_activations_relu if spec.activation == "relu" else sample_pre_activations_linear
    for l in range(num_layers - 1):
        mean = spec.with_ones(inputs[l]) @ weights[l].T
        pre[l] = conditional_pre(rng, mean, spec.noise_pre, post[l], spec.noise_post)
        post[l] = sample_post_activations(
            rng.normal(post[l].shape[::-1]), spec.activate(pre[l]), spec.noise_post, weights[l + 1],
            pre[l + 1] if l + 1 < num_layers - 1 else latent, noises[l + 1], spec.bias,
        )
        inputs[l + 1] = post[l]
    if spec.likelihood == "probit":
        out = spec.with_ones(inputs[-1]) @ weights[-1].T
        latent = sample_probit_latents(rng.take(out.shape), out, y)
    return GibbsState(weights=tuple(weights), pre=tuple(pre), post=tuple(post), latent=latent)


def sample(
    spec: MLPSpec,
    key: PRNGKeyArray,
    x: Float[Array, "n d_in"],
    y: Array,
    *,
    num_samples: int,
    num_warmup: int = 0,
    thin: int = 1,
    init_state: GibbsState | None = None,
) -> tuple[tuple[Array, ...], GibbsState]:
    """Run a block-Gibbs chain and return its weight samples (Piccioli, Troiani and Zdeborová, 2023).

    Args:
        spec: the model, an :class:`MLPSpec`.
        key: a JAX random key.
        x: inputs ``[n, d_in]``.
        y: regression targets ``[n, d_out]`` or binary labels ``[n]`` (probit).
        num_samples: number of weight samples returned.
        num_warmup: sweeps discarded before the first kept one.
        thin: sweeps per kept sample.
        init_state: the chain's first state (default: :func:`init` from the prior).

    Returns:
        ``(weights, state)``: ``weights`` is ``(W^1, ..., W^L)`` with a leading
        axis of ``num_samples``, ``state`` the chain's last :class:`GibbsState`
        (pass it as ``init_state`` to continue the chain).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.posteriors import gibbs
        >>> spec = gibbs.MLPSpec((2, 1), noise_obs=0.1)      # Bayesian linear regression
        >>> x = jax.random.normal(jax.random.key(0), (20, 2))
        >>> y = x @ jnp.array([[1.0], [-1.0]])
        >>> weights, state = gibbs.sample(spec, jax.random.key(1), x, y, num_samples=200)
        >>> weights[0].shape
        (200, 1, 2)
        >>> bool(jnp.allclose(weights[0].mean(0), jnp.array([[1.0, -1.0]]), atol=0.1))
        True
    """
    x, y = check_data(spec, x, y)
    for name, value, least in (("num_samples", num_samples, 1), ("num_warmup", num_warmup, 0), ("thin", thin, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ValueError(f"{name} must be an int >= {least}, got {value!r}.")
    if init_state is not None:
        if not isinstance(init_state, GibbsState):
            raise TypeError(f"init_state must be a gibbs.GibbsState, got {type(init_state).__name__}.")
        _check_weights(spec, init_state.weights, "init_state.weights")
        _check_latents(spec, init_state, x.shape[0], "init_state")
    return _run_chain(spec, key, x, y, init_state, num_samples, num_warmup, thin)


@eqx.filter_jit
def _run_chain(spec, key, x, y, state, num_samples, num_warmup, thin):
    k_init, k_draw = jax.random.split(key)
    if state is None:
        state = init(spec, k_init, x, y)

    # One scan over all sweeps (one copy of the sweep in the compiled program); the kept
    # weights are written into a buffer at every thin-th sweep after the warm-up.
    buffer = jax.tree.map(lambda w: jnp.zeros((num_samples,) + w.shape, w.dtype), state.weights)

    def one(carry, inputs):
        state, buffer = carry
        step, k = inputs
        state = sweep(spec, state, x, y, k)
        index = (step - num_warmup) // thin
        keep = (step >= num_warmup) & ((step - num_warmup) % thin == thin - 1)
        index = jnp.clip(index, 0, num_samples - 1)
        buffer = jax.tree.map(lambda b, w: b.at[index].set(jnp.where(keep, w, b[index])), buffer, state.weights)
        return (state, buffer), None

    total = num_warmup + num_samples * thin
    (state, weights), _ = jax.lax.scan(one, (state, buffer), (jnp.arange(total), jax.random.split(k_draw, total)))
    return weights, state
