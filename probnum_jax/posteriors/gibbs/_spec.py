"""The augmented MLP model sampled by block-Gibbs, and the checks on its data.

The model follows Piccioli, Troiani and Zdeborová (2023), "Gibbs sampling the
posterior of neural networks", arXiv:2306.02729, Sec. 2. For widths
``(d_0, ..., d_L)`` and inputs ``X^0 = x``:

* hidden layers ``l = 1, ..., L - 1``:
  ``Z^l = X^{l-1} W^l^T + N(0, noise_pre)`` and ``X^l = sigma(Z^l) + N(0, noise_post)``;
* output layer, regression: ``y = X^{L-1} W^L^T + N(0, noise_obs)``: the output
  pre-activation *is* the observation, so its noise is the likelihood noise;
* output layer, probit (Albert and Chib, 1993): ``u = X^{L-1} W^L^T + N(0, 1)``
  and ``y = 1[u > 0]``;
* priors ``W^l ~ N(0, I / prior_precision_l)`` entrywise; with ``bias=True`` a
  column of ones is appended to ``X^{l-1}`` and the last column of ``W^l`` is the
  bias (with the same prior).
"""

from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import is_concrete

ACTIVATIONS = ("relu", "linear")
LIKELIHOODS = ("gaussian", "probit")


def _positive(name, value, shape=()):
    arr = jnp.asarray(value, dtype=float)
    if arr.shape not in (shape, ()):
        raise ValueError(f"{name} must be a scalar or have shape {shape}, got shape {arr.shape}.")
    if is_concrete(arr) and not np.all(np.asarray(arr) > 0):
        raise ValueError(f"{name} must be > 0, got {np.asarray(arr)}.")
    return jnp.broadcast_to(arr, shape)


class MLPSpec(eqx.Module):
    """The augmented multilayer perceptron of Piccioli et al. (2023) that :func:`sweep` samples.

    Hidden layers carry Gaussian noise on the pre-activations (variance
    ``noise_pre``) and on the post-activations (variance ``noise_post``); these
    latent variables make every conditional of a Gibbs sweep tractable. The
    output pre-activation is the regression observation (noise ``noise_obs``) or
    the probit latent ``u`` (unit noise, ``y = 1[u > 0]``). As the noise
    variances go to zero the model approaches the plain network
    ``f(x) = W^L sigma(... sigma(W^1 x))`` with output noise only, but the
    sampler mixes more slowly.

    Args:
        widths: ``(d_in, d_1, ..., d_out)``, at least two entries; ``(d_in, d_out)``
            is Bayesian linear (or probit) regression. Probit needs ``d_out = 1``.
        activation: ``"relu"`` or ``"linear"`` (identity).
        likelihood: ``"gaussian"`` (regression) or ``"probit"`` (binary classification).
        noise_pre: ``Delta_Z > 0``, variance of the hidden pre-activation noise.
        noise_post: ``Delta_X > 0``, variance of the hidden post-activation noise.
        noise_obs: ``Delta_y > 0``, observation-noise variance (``"gaussian"`` only).
        prior_precision: ``lambda > 0``, a scalar or one per layer (``L`` values).
        bias: whether each layer has a bias (a last column of ``W^l``).

    Attributes:
        num_layers: ``L = len(widths) - 1``.

    Example:
        >>> from probnum_jax.posteriors import gibbs
        >>> spec = gibbs.MLPSpec((2, 8, 1), activation="relu", noise_obs=0.1, prior_precision=(2.0, 8.0))
        >>> spec.num_layers, spec.prior_precision.tolist()
        (2, [2.0, 8.0])
    """

    widths: tuple[int, ...] = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    likelihood: str = eqx.field(static=True)
    bias: bool = eqx.field(static=True)
    noise_pre: Float[Array, ""]
    noise_post: Float[Array, ""]
    noise_obs: Float[Array, ""]
    prior_precision: Float[Array, " L"]

    def __init__(
        self,
        widths: Sequence[int],
        *,
        activation: str = "relu",
        likelihood: str = "gaussian",
        noise_pre: float = 0.1,
        noise_post: float = 0.1,
        noise_obs: float = 0.1,
        prior_precision: float | Sequence[float] = 1.0,
        bias: bool = False,
    ):
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
            raise TypeError(f"widths must be a sequence of ints (d_in, ..., d_out), got {type(widths).__name__}.")
        widths = tuple(widths)
        if len(widths) < 2 or not all(isinstance(w, (int, np.integer)) and w >= 1 for w in widths):
            raise ValueError(f"widths must be at least two positive ints (d_in, ..., d_out), got {widths}.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}.")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
        if likelihood == "probit" and widths[-1] != 1:
            raise ValueError(f"likelihood='probit' is binary: widths[-1] must be 1, got widths={widths}.")
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}.")
        self.widths = tuple(int(w) for w in widths)
        self.activation = activation
        self.likelihood = likelihood
        self.bias = bias
        self.noise_pre = _positive("noise_pre", noise_pre)
        self.noise_post = _positive("noise_post", noise_post)
        self.noise_obs = _positive("noise_obs", noise_obs)
        num_layers = len(widths) - 1
        if isinstance(prior_precision, Sequence) and len(prior_precision) != num_layers:
            raise ValueError(
                f"prior_precision must be a scalar or have one value per layer ({num_layers}), "
                f"got {len(prior_precision)} values."
            )
        self.prior_precision = _positive("prior_precision", prior_precision, (num_layers,))

    @property
    def num_layers(self) -> int:
        return len(self.widths) - 1

    @property
    def noise_out(self):
        """Noise variance of the output pre-activation: ``noise_obs``, or 1 for probit."""
        return self.noise_obs if self.likelihood == "gaussian" else jnp.ones_like(self.noise_obs)

    def weight_shapes(self) -> tuple[tuple[int, int], ...]:
        """Shapes ``(d_l, d_{l-1} + bias)`` of the weight matrices ``W^l``."""
        extra = int(self.bias)
        return tuple((self.widths[i + 1], self.widths[i] + extra) for i in range(self.num_layers))

    def activate(self, z):
        return jnp.maximum(z, 0.0) if self.activation == "relu" else z

    def with_ones(self, x):
        """Append the column of ones that multiplies the bias, if ``bias``."""
        if not self.bias:
            return x
        return jnp.concatenate([x, jnp.ones(x.shape[:-1] + (1,), x.dtype)], axis=-1)


def check_spec(spec):
    if not isinstance(spec, MLPSpec):
        raise TypeError(f"spec must be a gibbs.MLPSpec, got {type(spec).__name__}.")


def check_inputs(spec: MLPSpec, x, name: str = "x"):
    if not hasattr(x, "shape") or getattr(x, "ndim", 0) != 2:
        raise ValueError(
            f"{name} must be an array of shape [n, d_in] = [n, {spec.widths[0]}], got "
            f"{getattr(x, 'shape', type(x).__name__)}."
        )
    if x.shape[1] != spec.widths[0]:
        raise ValueError(
            f"{name} must have widths[0] = {spec.widths[0]} columns (shape [n, {spec.widths[0]}]), got shape {x.shape}."
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must be a floating-point array, got dtype {x.dtype}.")
    return x


def check_data(spec: MLPSpec, x, y):
    """Check ``x[n, d_in]`` and ``y`` (``[n, d_out]`` floats, or ``[n]`` 0/1 labels for probit).

    Returns ``(x, y)`` with ``y`` as ``[n, d_out]`` floats.
    """
    check_spec(spec)
    x = check_inputs(spec, x)
    n = x.shape[0]
    if not hasattr(y, "shape"):
        raise TypeError(f"y must be an array, got {type(y).__name__}.")
    if spec.likelihood == "gaussian":
        if y.shape != (n, spec.widths[-1]):
            raise ValueError(
                f"y must have shape [n, d_out] = [{n}, {spec.widths[-1]}] to match x's {n} rows and "
                f"widths[-1] = {spec.widths[-1]}, got {y.shape}."
            )
        if not jnp.issubdtype(y.dtype, jnp.floating):
            raise TypeError(f"y must be a floating-point array for likelihood='gaussian', got dtype {y.dtype}.")
        return x, y
    if y.shape not in ((n,), (n, 1)):
        raise ValueError(f"y must hold binary labels of shape [n] = [{n}] (one per row of x), got {y.shape}.")
    if is_concrete(y) and n > 0 and not np.all(np.isin(np.asarray(y), (0, 1))):
        raise ValueError("y must hold binary labels in {0, 1} for likelihood='probit'.")
    return x, jnp.reshape(y, (n, 1)).astype(x.dtype)
