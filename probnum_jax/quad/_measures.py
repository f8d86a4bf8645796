"""Integration measures: the Lebesgue measure on a box and a Gaussian with full covariance."""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy as jsp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray

from ._validation import is_concrete


def _as_vector(name: str, value: ArrayLike) -> Array:
    arr = jnp.asarray(value)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array [d], got shape {arr.shape}.")
    return arr


class AbstractMeasure(eqx.Module):
    """A finite measure ``mu`` on ``R^d``; Bayesian quadrature estimates ``int f dmu``."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """The input dimension ``d``."""

    @abc.abstractmethod
    def from_unit_cube(self, u: Float[Array, "n d"]) -> Float[Array, "n d"]:
        """Transport points of ``(0, 1)^d`` to the support, mapping uniform to ``mu / mu(R^d)``."""

    @abc.abstractmethod
    def density(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """The density of ``mu`` with respect to the Lebesgue measure at ``x``."""

    @abc.abstractmethod
    def contains(self, x: Float[Array, "n d"]) -> Bool[Array, " n"]:
        """Whether each point lies in the support (always true for a Gaussian)."""

    @abc.abstractmethod
    def from_unconstrained(self, v: Float[Array, " d"]) -> Float[Array, " d"]:
        """A smooth bijection from ``R^d`` onto the (interior of the) support."""

    @abc.abstractmethod
    def to_unconstrained(self, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """The inverse of :meth:`from_unconstrained`."""

    @property
    @abc.abstractmethod
    def scale(self) -> Float[Array, " d"]:
        """A characteristic length per dimension (box width, or standard deviation)."""

    @property
    @abc.abstractmethod
    def total_mass(self) -> Float[Array, ""]:
        """``mu(R^d)``."""

    def sample(self, key: PRNGKeyArray, num: int) -> Float[Array, "num d"]:
        """Draw ``num`` independent points from the normalised measure."""
        u = jax.random.uniform(
            key, (num, self.dim), dtype=self.scale.dtype, minval=1e-12, maxval=1.0 - 1e-12
        )
        return self.from_unit_cube(u)

    def valid(self) -> Array:
        """A traced boolean: are the measure's parameters valid?"""
        return jnp.asarray(True)


class LebesgueMeasure(AbstractMeasure):
    """The Lebesgue measure on the box ``[lower, upper]`` (optionally normalised to mass one).

    Args:
        lower: The lower corner, a scalar or an array ``[d]``.
        upper: The upper corner, same shape as ``lower``.
        normalized: If true, the measure is the uniform probability distribution on the
            box, so Bayesian quadrature estimates an expectation instead of an integral.

    Raises:
        ValueError: if the shapes differ or ``lower >= upper`` in some dimension.

    Example:
        >>> from probnum_jax import quad
        >>> m = quad.LebesgueMeasure([0.0, -1.0], [1.0, 1.0])
        >>> m.dim, float(m.total_mass)
        (2, 2.0)
    """

    lower: Float[Array, " d"]
    upper: Float[Array, " d"]
    normalized: bool = eqx.field(static=True)

    def __init__(self, lower: ArrayLike, upper: ArrayLike, *, normalized: bool = False):
        lower, upper = _as_vector("lower", lower), _as_vector("upper", upper)
        if lower.shape != upper.shape:
            raise ValueError(
                f"lower and upper must have the same shape, got {lower.shape} and {upper.shape}."
            )
        dtype = jnp.result_type(lower, upper)
        self.lower, self.upper = lower.astype(dtype), upper.astype(dtype)
        self.normalized = bool(normalized)
        if is_concrete((lower, upper)):
            lo, hi = np.asarray(lower), np.asarray(upper)
            if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
                raise ValueError(f"lower and upper must be finite, got {lo} and {hi}.")
            if np.any(lo >= hi):
                raise ValueError(
                    f"lower must be < upper in every dimension, got lower={lo}, upper={hi}."
                )

    @property
    def dim(self) -> int:
        return self.lower.shape[0]

    @property
    def scale(self):
        return self.upper - self.lower

    @property
    def volume(self) -> Float[Array, ""]:
        """The Lebesgue volume of the box."""
        return jnp.prod(self.upper - self.lower)

    @property
    def total_mass(self):
        return jnp.ones((), self.lower.dtype) if self.normalized else self.volume

    def from_unit_cube(self, u):
        return self.lower + (self.upper - self.lower) * u

    def density(self, x):
        inside = jnp.all((x >= self.lower) & (x <= self.upper))
        return jnp.where(inside, self.total_mass / self.volume, 0.0)

    def contains(self, x):
        return jnp.all((x >= self.lower) & (x <= self.upper), axis=-1)

    def from_unconstrained(self, v):
        return self.lower + (self.upper - self.lower) * jax.nn.sigmoid(v)

    def to_unconstrained(self, x):
        p = jnp.clip((x - self.lower) / (self.upper - self.lower), 1e-6, 1 - 1e-6)
        return jnp.log(p) - jnp.log1p(-p)

    def valid(self):
        return jnp.all(self.lower < self.upper) & jnp.all(jnp.isfinite(self.lower - self.upper))


class GaussianMeasure(AbstractMeasure):
    """The Gaussian probability measure ``N(mean, cov)`` with a full covariance matrix.

    Args:
        mean: The mean, a scalar or an array ``[d]``.
        cov: The covariance, a positive scalar (times the identity), an array ``[d]``
            (a diagonal) or a symmetric positive-definite matrix ``[d, d]``.

    Raises:
        ValueError: if the shapes do not fit or ``cov`` is not symmetric positive definite.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import quad
        >>> m = quad.GaussianMeasure(jnp.zeros(2), jnp.array([[1.0, 0.5], [0.5, 2.0]]))
        >>> m.dim, float(m.total_mass)
        (2, 1.0)
    """

    mean: Float[Array, " d"]
    cov: Float[Array, "d d"]
    cholesky: Float[Array, "d d"]

    def __init__(self, mean: ArrayLike, cov: ArrayLike):
        mean = _as_vector("mean", mean)
        d = mean.shape[0]
        cov = jnp.asarray(cov)
        if not jnp.issubdtype(cov.dtype, jnp.floating):
            cov = cov.astype(jnp.result_type(float))
        if cov.ndim == 0 or cov.shape == (d,):
            cov = jnp.diag(jnp.broadcast_to(cov, (d,)))
        if cov.shape != (d, d):
            raise ValueError(
                f"cov must be a scalar, an array [d] or a matrix [d, d] with d={d} (the mean's "
                f"length), got shape {cov.shape}."
            )
        dtype = jnp.result_type(mean, cov)
        self.mean, self.cov = mean.astype(dtype), cov.astype(dtype)
        self.cholesky = jnp.linalg.cholesky(0.5 * (self.cov + self.cov.T))
        if is_concrete((mean, cov)):
            c = np.asarray(cov)
            if not np.all(np.isfinite(np.asarray(mean))):
                raise ValueError(f"mean must be finite, got {np.asarray(mean)}.")
            sym = np.allclose(c, c.T, rtol=1e-6, atol=1e-12 * max(1.0, float(np.abs(c).max())))
            if not sym or not np.all(np.isfinite(np.asarray(self.cholesky))):
                raise ValueError(
                    f"cov must be symmetric positive definite, got eigenvalues "
                    f"{np.linalg.eigvalsh(0.5 * (c + c.T)) if np.all(np.isfinite(c)) else c}."
                )

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    @property
    def scale(self):
        return jnp.sqrt(jnp.diagonal(self.cov))

    @property
    def total_mass(self):
        return jnp.ones((), self.mean.dtype)

    def from_unit_cube(self, u):
        return self.mean + jsp.special.ndtri(u) @ self.cholesky.T

    def density(self, x):
        r = jsp.linalg.solve_triangular(self.cholesky, x - self.mean, lower=True)
        logdet = jnp.sum(jnp.log(jnp.diagonal(self.cholesky)))
        return jnp.exp(-0.5 * r @ r - logdet - 0.5 * self.dim * jnp.log(2 * jnp.pi))

    def contains(self, x):
        return jnp.ones(x.shape[:-1], bool)

    def from_unconstrained(self, v):
        return self.mean + self.cholesky @ v

    def to_unconstrained(self, x):
        return jsp.linalg.solve_triangular(self.cholesky, x - self.mean, lower=True)

    def valid(self):
        return jnp.all(jnp.isfinite(self.cholesky)) & jnp.all(jnp.isfinite(self.mean))
