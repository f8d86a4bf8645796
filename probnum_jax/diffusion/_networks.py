"""Small noise-predicting networks for score-based diffusion (equinox modules).

Both networks map ``(x, t) -> x.shape`` and are meant as noise predictors:
``sde.score_model(net_fn)`` turns them into score models (``-net / sigma`` for
VP/VE, EDM's preconditioned denoiser for :class:`EDM`).

References:
    J. Ho, A. Jain, P. Abbeel. *Denoising diffusion probabilistic models.*
    NeurIPS 2020. (Noise prediction; a U-Net with a sinusoidal time embedding
    added to the feature maps.)

    A. Vaswani et al. *Attention is all you need.* NeurIPS 2017. (Sinusoidal
    embeddings.)

    O. Ronneberger, P. Fischer, T. Brox. *U-Net: convolutional networks for
    biomedical image segmentation.* MICCAI 2015.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class SinusoidalEmbedding(eqx.Module):
    """Sinusoidal features ``[sin(f_k t), cos(f_k t)]`` of a scalar time, ``f_k`` geometric in ``[1, max_frequency]``.

    Works for any real ``t`` (VP/VE times in ``[0, 1]``, or EDM's
    ``c_noise = ln(sigma) / 4``, which is negative for small noise). It has no
    trainable parameters.

    Attributes:
        embed_dim: the number of features (even).
        max_frequency: the largest angular frequency.

    Example:
        >>> from probnum_jax.diffusion._networks import SinusoidalEmbedding
        >>> emb = SinusoidalEmbedding(8)
        >>> emb(0.5).shape, emb(-1.3).shape
        ((8,), (8,))
    """

    embed_dim: int = eqx.field(static=True)
    max_frequency: float = eqx.field(static=True, default=100.0)

    def __check_init__(self):
        if self.embed_dim < 2 or self.embed_dim % 2:
            raise ValueError(f"embed_dim must be an even integer >= 2, got {self.embed_dim}.")
        if not self.max_frequency >= 1:
            raise ValueError(f"max_frequency must be >= 1, got {self.max_frequency}.")

    def __call__(self, t, *, dtype=None) -> Float[Array, " embed_dim"]:
        t = jnp.asarray(t, jnp.result_type(float) if dtype is None else dtype)
        if t.shape != ():
            raise ValueError(f"t must be a scalar, got shape {t.shape}.")
        half = self.embed_dim // 2
        freqs = jnp.exp(jnp.linspace(0.0, math.log(self.max_frequency), half, dtype=t.dtype))
        arg = freqs * t
        return jnp.concatenate([jnp.sin(arg), jnp.cos(arg)])


class ScoreMLP(eqx.Module):
    """An MLP ``(x[dim], t) -> [dim]`` on ``concat(x, embedding(t))`` with SiLU activations.

    Args (of the constructor):
        dim: the data dimension.
        key: the initialisation key.
        width: the hidden width.
        depth: the number of hidden layers.
        embed_dim: the size of the sinusoidal time embedding.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax import diffusion
        >>> net = diffusion.ScoreMLP(2, key=jax.random.key(0), width=32, depth=2)
        >>> net(jnp.ones(2), 0.5).shape
        (2,)
    """

    embedding: SinusoidalEmbedding
    mlp: eqx.nn.MLP
    dim: int = eqx.field(static=True)

    def __init__(self, dim: int, *, key, width: int = 128, depth: int = 3, embed_dim: int = 32):
        for name, value in (("dim", dim), ("width", width), ("depth", depth)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}.")
        self.dim = dim
        self.embedding = SinusoidalEmbedding(embed_dim)
        self.mlp = eqx.nn.MLP(dim + embed_dim, dim, width, depth, activation=jax.nn.silu, key=key)

    def __call__(self, x: Float[Array, " dim"], t) -> Float[Array, " dim"]:
        if x.shape != (self.dim,):
            raise ValueError(f"x must have shape ({self.dim},), got {x.shape}.")
        return self.mlp(jnp.concatenate([x, self.embedding(t, dtype=x.dtype)]))


def _groups(channels):
    return math.gcd(channels, 4)


class _ResBlock(eqx.Module):
    """conv -> (+ time bias) -> [GroupNorm] -> SiLU -> conv, plus a (1x1-projected) skip."""

    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    time_proj: eqx.nn.Linear
    norm: eqx.nn.GroupNorm | None
    skip: eqx.nn.Conv2d | None

    def __init__(self, c_in, c_out, embed_dim, groupnorm, *, key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.conv1 = eqx.nn.Conv2d(c_in, c_out, 3, padding=1, key=k1)
        self.conv2 = eqx.nn.Conv2d(c_out, c_out, 3, padding=1, key=k2)
        self.time_proj = eqx.nn.Linear(embed_dim, c_out, key=k3)
        self.norm = eqx.nn.GroupNorm(_groups(c_out), c_out) if groupnorm else None
        self.skip = eqx.nn.Conv2d(c_in, c_out, 1, key=k4) if c_in != c_out else None

    def __call__(self, x, emb):
        h = self.conv1(x) + self.time_proj(emb)[:, None, None]
        if self.norm is not None:
            h = self.norm(h)
        h = self.conv2(jax.nn.silu(h))
        return jax.nn.silu(h + (x if self.skip is None else self.skip(x)))


class TinyUNet(eqx.Module):
    """A one-level U-Net ``(x[C, H, W], t) -> [C, H, W]`` for small images (e.g. 8x8 digits).

    Layout (Ronneberger et al. 2015; Ho et al. 2020): a 3x3 input convolution
    to ``base`` channels, a residual block at full resolution, a stride-2
    convolution down to ``2 base`` channels, a residual block at half
    resolution, nearest-neighbour up-sampling with a 3x3 convolution back to
    ``base`` channels, concatenation with the full-resolution skip, a residual
    block and a 3x3 output convolution. A sinusoidal embedding of ``t`` passes
    through a small MLP and is added, per channel, to the feature maps of every
    residual block. ``H`` and ``W`` must be even.

    Args (of the constructor):
        channels: the number of image channels ``C``.
        key: the initialisation key.
        base: the channel width at full resolution.
        embed_dim: the size of the time embedding.
        groupnorm: whether the residual blocks use GroupNorm.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax import diffusion
        >>> net = diffusion.TinyUNet(1, key=jax.random.key(0), base=8)
        >>> net(jnp.zeros((1, 8, 8)), 0.3).shape
        (1, 8, 8)
    """

    embedding: SinusoidalEmbedding
    time_mlp: eqx.nn.MLP
    conv_in: eqx.nn.Conv2d
    block_hi: _ResBlock
    down: eqx.nn.Conv2d
    block_lo: _ResBlock
    up: eqx.nn.Conv2d
    block_out: _ResBlock
    conv_out: eqx.nn.Conv2d
    channels: int = eqx.field(static=True)

    def __init__(self, channels: int = 1, *, key, base: int = 16, embed_dim: int = 32, groupnorm: bool = True):
        for name, value in (("channels", channels), ("base", base)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}.")
        keys = jax.random.split(key, 8)
        self.channels = channels
        self.embedding = SinusoidalEmbedding(embed_dim)
        self.time_mlp = eqx.nn.MLP(embed_dim, embed_dim, embed_dim, 1, activation=jax.nn.silu, key=keys[0])
        self.conv_in = eqx.nn.Conv2d(channels, base, 3, padding=1, key=keys[1])
        self.block_hi = _ResBlock(base, base, embed_dim, groupnorm, key=keys[2])
        self.down = eqx.nn.Conv2d(base, 2 * base, 3, stride=2, padding=1, key=keys[3])
        self.block_lo = _ResBlock(2 * base, 2 * base, embed_dim, groupnorm, key=keys[4])
        self.up = eqx.nn.Conv2d(2 * base, base, 3, padding=1, key=keys[5])
        self.block_out = _ResBlock(2 * base, base, embed_dim, groupnorm, key=keys[6])
        self.conv_out = eqx.nn.Conv2d(base, channels, 3, padding=1, key=keys[7])

    def __call__(self, x: Float[Array, "C H W"], t) -> Float[Array, "C H W"]:
        if x.ndim != 3 or x.shape[0] != self.channels or x.shape[1] % 2 or x.shape[2] % 2:
            raise ValueError(f"x must have shape [C={self.channels}, H, W] with H and W even, got {x.shape}.")
        emb = self.time_mlp(self.embedding(t, dtype=x.dtype))
        h_hi = self.block_hi(self.conv_in(x), emb)
        h_lo = self.block_lo(self.down(h_hi), emb)
        h_up = self.up(jnp.repeat(jnp.repeat(h_lo, 2, axis=1), 2, axis=2))
        h = self.block_out(jnp.concatenate([h_up, h_hi], axis=0), emb)
        return self.conv_out(h)
