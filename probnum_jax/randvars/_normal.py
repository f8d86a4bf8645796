"""Gaussian random variables in square-root form, with three covariance structures.

A Gaussian is stored as a mean and a Cholesky-like factor ``L`` (covariance
``L @ L.T``), never as a covariance. The structure decides what ``L`` and the
linear maps acting on the variable look like:

=====================  ===============  ==================  =====================
class                  mean             cholesky            linear map
=====================  ===============  ==================  =====================
``DenseNormal``        ``[n]``          ``[n, n]``          ``[n_out, n]``
``IsotropicNormal``    ``[m, d]``       ``[m, m]``          ``[m_out, m]``
``BlockDiagNormal``    ``[d, m]``       ``[d, m, m]``       ``[d, m_out, m]``
=====================  ===============  ==================  =====================

``IsotropicNormal`` is the Kronecker structure ``S ⊗ I_d``: the ``d`` columns of
the mean are independent and share the covariance ``S = L L^T``; a linear map
``A`` acts as ``A ⊗ I_d``. ``BlockDiagNormal`` holds ``d`` independent blocks
with their own factors and maps.

The operations (:func:`predict`, :func:`condition`, :func:`update`,
:func:`backward_conditional`, :func:`marginalise`, sampling and log-density)
are written once: each class only says how to lift a dense kernel from
:mod:`._sqrt_linalg` onto its structure.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from . import _sqrt_linalg as sqrt


class Normal(eqx.Module):
    """Abstract Gaussian ``N(mean, cholesky @ cholesky.T)`` in square-root form."""

    mean: eqx.AbstractVar[Array]
    cholesky: eqx.AbstractVar[Array]

    @abc.abstractmethod
    def lift(self, kernel, *args):
        """Apply a dense kernel ``kernel(mean, cholesky, *args)`` to this structure."""

    def replace(self, mean, cholesky) -> "Normal":
        """A Gaussian of the same structure with another mean and factor."""
        return type(self)(mean, cholesky)

    @property
    @abc.abstractmethod
    def std(self) -> Array:
        """Marginal standard deviations, shaped like ``mean``."""

    def sample(self, key: PRNGKeyArray, shape: tuple = ()) -> Array:
        """Draw samples; the result has shape ``shape + mean.shape``."""
        eps = jax.random.normal(key, shape + self.mean.shape, self.mean.dtype)
        flat = eps.reshape((-1,) + self.mean.shape)
        draws = jax.vmap(self.transform_standard)(flat)
        return draws.reshape(shape + self.mean.shape)

    def transform_standard(self, eps: Array) -> Array:
        """Map a standard-normal draw shaped like ``mean`` to a draw of this Gaussian."""

        def kernel(m, L, e):
            return m + L @ e

        return self.lift(kernel, eps)

    def logpdf(self, x: Array) -> Array:
        """Log-density at ``x`` (shaped like ``mean``)."""
        return jnp.sum(self.lift(lambda m, L, v: sqrt.logpdf(v, m, L), x))

    def scale(self, factor) -> "Normal":
        """The same Gaussian with its covariance multiplied by ``factor**2``."""
        return self.replace(self.mean, self.cholesky * factor)


class DenseNormal(Normal):
    """Gaussian with a dense ``[n, n]`` Cholesky factor.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax import randvars
        >>> x = randvars.DenseNormal(jnp.zeros(2), jnp.eye(2))
        >>> float(x.logpdf(jnp.zeros(2)))  # doctest: +ELLIPSIS
        -1.837...
    """

    mean: Float[Array, " n"]
    cholesky: Float[Array, "n n"]

    def lift(self, kernel, *args):
        return kernel(self.mean, self.cholesky, *args)

    @property
    def std(self):
        return jnp.sqrt(jnp.sum(self.cholesky**2, axis=-1))

    @property
    def cov(self) -> Float[Array, "n n"]:
        """The dense covariance (formed on request only)."""
        return self.cholesky @ self.cholesky.T


class IsotropicNormal(Normal):
    """Gaussian over an ``[m, d]`` matrix with covariance ``(L L^T) ⊗ I_d``.

    All ``d`` columns share one ``[m, m]`` factor, so every operation costs
    ``O(m^3 + m^2 d)`` instead of ``O(m^3 d^3)``.
    """

    mean: Float[Array, "m d"]
    cholesky: Float[Array, "m m"]

    def lift(self, kernel, *args):
        return kernel(self.mean, self.cholesky, *args)

    @property
    def std(self):
        s = jnp.sqrt(jnp.sum(self.cholesky**2, axis=-1))
        return jnp.broadcast_to(s[:, None], self.mean.shape)


class BlockDiagNormal(Normal):
    """``d`` independent Gaussian blocks: mean ``[d, m]``, factors ``[d, m, m]``.

    Linear maps carry the leading block axis too: ``[d, m_out, m]``.
    """

    mean: Float[Array, "d m"]
    cholesky: Float[Array, "d m m"]

    def lift(self, kernel, *args):
        return jax.vmap(kernel)(self.mean, self.cholesky, *args)

    @property
    def std(self):
        return jnp.sqrt(jnp.sum(self.cholesky**2, axis=-1))

    def scale(self, factor):
        factor = jnp.asarray(factor)
        if factor.ndim == 1:  # one output scale per block
            factor = factor[:, None, None]
        return self.replace(self.mean, self.cholesky * factor)


class Conditional(eqx.Module):
    """A Gaussian conditional ``p(x | y) = N(gain @ y + noise.mean, noise.cov)``.

    Produced by :func:`condition` and :func:`backward_conditional`; consumed by
    :func:`marginalise` (and called on a value ``y`` to evaluate it).
    """

    gain: Array
    noise: Normal

    def __call__(self, y: Array) -> Normal:
        def kernel(m, L, G, v):
            return m + G @ v

        return self.noise.replace(self.noise.lift(kernel, self.gain, y), self.noise.cholesky)

    def compose(self, other: "Conditional") -> "Conditional":
        """``p(x | z) = ∫ p(x | y) p(y | z) dy`` with ``self = p(x | y)`` and ``other = p(y | z)``."""

        def kernel(m, L, G1, G2, m2, L2):
            new_mean, new_chol = sqrt.predict(m2, L2, G1, L, offset=m)
            return G1 @ G2, new_mean, new_chol

        gain, mean, chol = self.noise.lift(
            kernel, self.gain, other.gain, other.noise.mean, other.noise.cholesky
        )
        return Conditional(gain, self.noise.replace(mean, chol))

    def scale(self, factor) -> "Conditional":
        """Multiply the conditional covariance by ``factor**2``."""
        return Conditional(self.gain, self.noise.scale(factor))


def predict(rv: Normal, transition, noise_cholesky=None, offset=None) -> Normal:
    """Distribution of ``transition @ x + offset + noise`` (QR-based square root).

    ``noise_cholesky=None`` means no noise: the marginal of a linear observation.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import randvars
        >>> x = randvars.DenseNormal(jnp.ones(2), jnp.eye(2))
        >>> y = randvars.predict(x, 2 * jnp.eye(2), jnp.eye(2))
        >>> jnp.round(y.std**2, 4).tolist()
        [5.0, 5.0]
    """

    def kernel(m, L, A, *rest):
        q = rest[0] if noise_cholesky is not None else None
        b = rest[-1] if offset is not None else None
        return sqrt.predict(m, L, A, q, b)

    args = [a for a in (noise_cholesky, offset) if a is not None]
    return rv.replace(*rv.lift(kernel, transition, *args))


def marginalise(rv: Normal, conditional: Conditional) -> Normal:
    """``p(x) = ∫ p(x | y) p(y) dy`` for ``y ~ rv`` and ``conditional = p(x | y)``."""
    return predict(rv, conditional.gain, conditional.noise.cholesky, conditional.noise.mean)


def condition(rv: Normal, observation, noise_cholesky=None) -> tuple[Normal, Conditional]:
    """Joint-to-conditional for ``z = observation @ x + noise``.

    Returns the marginal of ``z`` and the conditional ``p(x | z)``. Without
    ``noise_cholesky`` the observation is exact.
    """

    def kernel(m, L, H, R=None):
        z_mean, z_chol, gain, post = sqrt.condition(m, L, H, R)
        return z_mean, z_chol, gain, m - gain @ z_mean, post

    args = (observation,) if noise_cholesky is None else (observation, noise_cholesky)
    z_mean, z_chol, gain, c, post = rv.lift(kernel, *args)
    return rv.replace(z_mean, z_chol), Conditional(gain, rv.replace(c, post))


def update(rv: Normal, observation, data, noise_cholesky=None) -> tuple[Normal, Normal]:
    """Posterior of ``x`` after observing ``data = observation @ x + noise``.

    Returns ``(posterior, marginal_of_observation)``; the latter gives the
    log-likelihood of the data via ``marginal.logpdf(data)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import randvars
        >>> x = randvars.DenseNormal(jnp.zeros(1), jnp.eye(1))
        >>> post, _ = randvars.update(x, jnp.eye(1), jnp.ones(1), jnp.eye(1))
        >>> round(float(post.mean[0]), 6), round(float(post.std[0] ** 2), 6)
        (0.5, 0.5)
    """
    marginal, cond = condition(rv, observation, noise_cholesky)
    return cond(data), marginal


def mahalanobis(rv: Normal, x: Array) -> Array:
    """``(x - mean)^T cov^{-1} (x - mean)``; one value per block for block-diagonal Gaussians."""
    return rv.lift(lambda m, L, v: sqrt.mahalanobis_squared(v - m, L), x)


def backward_conditional(rv: Normal, transition, noise_cholesky, offset=None):
    """Predict ``x' = A x + b + noise`` and return ``(p(x'), p(x | x'))``.

    The backward conditional is what a Rauch–Tung–Striebel smoother needs
    (Särkkä 2013, *Bayesian Filtering and Smoothing*, ch. 8).
    """
    predicted, cond = condition(rv, transition, noise_cholesky)
    if offset is None:
        return predicted, cond

    def shift(m, L, G, b):  # z = A x + b: the conditional's offset moves by -G b
        return m - G @ b

    new_noise_mean = cond.noise.lift(shift, cond.gain, offset)
    cond = Conditional(cond.gain, cond.noise.replace(new_noise_mean, cond.noise.cholesky))
    predicted = predicted.replace(predicted.mean + offset, predicted.cholesky)
    return predicted, cond
