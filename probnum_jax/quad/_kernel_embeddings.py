"""Closed-form kernel means ``int k(x, y) dmu(y)`` and initial errors ``int int k dmu dmu``.

Supported pairs: ExpQuad with LebesgueMeasure and with GaussianMeasure (full
covariance), and product Matérn (nu = 1/2, 3/2, 5/2) with LebesgueMeasure. A
product kernel on a box factorises into one-dimensional integrals; each has a
closed form, evaluated through a Taylor series where the closed form would lose
digits to cancellation (lengthscales much longer than the box).

References: Briol et al., "Probabilistic integration: a role in statistical
computation?", Statistical Science 34(1), 2019 (Table 1); Karvonen & Särkkä,
"Fully symmetric kernel quadrature", SIAM J. Sci. Comput. 40(2), 2018.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import jax.scipy as jsp
import numpy as np
from jaxtyping import Array, Float

from ._kernels import AbstractKernel, ExpQuad, Matern
from ._measures import AbstractMeasure, GaussianMeasure, LebesgueMeasure

_SERIES_TERMS = 24
_SERIES_BELOW = 0.5


def _taylor_coefficients(kind: str) -> np.ndarray:
    """Taylor coefficients ``a_j`` of the 1-D correlation ``phi(r) = sum_j a_j r**j``, r >= 0."""
    j = np.arange(_SERIES_TERMS, dtype=float)
    fact = np.array([math.factorial(int(i)) for i in j], dtype=float)
    if kind == "expquad":  # exp(-r^2 / 2): only even powers
        a = np.zeros(_SERIES_TERMS)
        k = np.arange(_SERIES_TERMS // 2)
        a[2 * k] = (-0.5) ** k / np.array([math.factorial(int(i)) for i in k], dtype=float)
        return a
    if kind == 0.5:
        return (-1.0) ** j / fact
    if kind == 1.5:
        return (-np.sqrt(3.0)) ** j * (1.0 - j) / fact
    return (-np.sqrt(5.0)) ** j * (1.0 - j + j * (j - 1.0) / 3.0) / fact


def _series(coefficients: np.ndarray, u: Array) -> Array:
    """``sum_j coefficients[j] * u**(j + 1)`` for ``0 <= u < 1`` (powers by a cumulative product)."""
    powers = jnp.cumprod(jnp.broadcast_to(u[..., None], u.shape + (len(coefficients),)), axis=-1)
    return powers @ jnp.asarray(coefficients, u.dtype)


def _one_sided(kind, u: Array) -> Array:
    """``Phi(u) = int_0^u phi(r) dr`` for ``u >= 0``."""
    if kind == "expquad":  # erf loses no digits: no series needed
        return jnp.sqrt(jnp.pi / 2) * jsp.special.erf(u / jnp.sqrt(2.0))
    small = u < _SERIES_BELOW
    us = jnp.where(small, u, 0.0)
    ul = jnp.where(small, _SERIES_BELOW, u)
    a = _taylor_coefficients(kind)
    series = _series(a / np.arange(1, _SERIES_TERMS + 1), us)
    if kind == 0.5:
        closed = -jnp.expm1(-ul)
    elif kind == 1.5:
        c = jnp.sqrt(3.0)
        closed = (2.0 - jnp.exp(-c * ul) * (2.0 + c * ul)) / c
    else:
        c = jnp.sqrt(5.0)
        closed = (8.0 / 3.0 - jnp.exp(-c * ul) * (8.0 + 5.0 * c * ul + (c * ul) ** 2) / 3.0) / c
    return jnp.where(small, series, closed)


def _odd_one_sided(kind, u: Array) -> Array:
    """``int_0^u phi(|r|) dr`` for any real ``u`` (the odd extension of ``Phi``)."""
    # sign * Phi(|u|) with |u| written as a `where`, so that the derivative at 0 is phi(0).
    positive = u >= 0
    return jnp.where(positive, 1.0, -1.0) * _one_sided(kind, jnp.where(positive, u, -u))


def _two_sided(kind, u: Array) -> Array:
    """``H(u) = int_0^u int_0^u phi(|x - y|) dx dy = 2 int_0^u (u - r) phi(r) dr``."""
    small = u < _SERIES_BELOW
    us = jnp.where(small, u, 0.0)
    ul = jnp.where(small, _SERIES_BELOW, u)
    j = np.arange(_SERIES_TERMS, dtype=float)
    a = _taylor_coefficients(kind) * 2.0 / ((j + 1.0) * (j + 2.0))
    series = _series(a, us) * us  # sum_j a_j u^(j+2)
    if kind == "expquad":
        closed = 2.0 * jnp.expm1(-(ul**2) / 2) + jnp.sqrt(2 * jnp.pi) * ul * jsp.special.erf(
            ul / jnp.sqrt(2.0)
        )
    elif kind == 0.5:
        closed = 2.0 * (ul + jnp.expm1(-ul))
    elif kind == 1.5:
        c = jnp.sqrt(3.0)
        closed = 2.0 / c * (2.0 * ul - (3.0 - jnp.exp(-c * ul) * (3.0 + c * ul)) / c)
    else:
        c = jnp.sqrt(5.0)
        tail = 5.0 - jnp.exp(-c * ul) * (5.0 + 7.0 * c * ul / 3.0 + (c * ul) ** 2 / 3.0)
        closed = 2.0 / c * (8.0 * ul / 3.0 - tail / c)
    return jnp.where(small, series, closed)


def _kind(kernel: AbstractKernel):
    return "expquad" if isinstance(kernel, ExpQuad) else kernel.nu


def _check_pair(kernel: AbstractKernel, measure: AbstractMeasure) -> None:
    if not isinstance(kernel, AbstractKernel):
        raise TypeError(f"kernel must be a quad kernel (ExpQuad, Matern), got {type(kernel).__name__}.")
    if not isinstance(measure, AbstractMeasure):
        raise TypeError(
            f"measure must be a quad measure (LebesgueMeasure, GaussianMeasure), got "
            f"{type(measure).__name__}."
        )
    supported = isinstance(measure, LebesgueMeasure) and isinstance(kernel, (ExpQuad, Matern))
    supported |= isinstance(measure, GaussianMeasure) and isinstance(kernel, ExpQuad)
    if not supported:
        raise TypeError(
            f"No closed-form kernel mean for the pair ({type(kernel).__name__}, "
            f"{type(measure).__name__}). Supported: ExpQuad with LebesgueMeasure or "
            "GaussianMeasure, and Matern with LebesgueMeasure."
        )
    kernel.check_dim(measure.dim)


@eqx.filter_jit
def kernel_mean(
    kernel: AbstractKernel, measure: AbstractMeasure, x: Float[Array, "n d"]
) -> Float[Array, " n"]:
    """The kernel mean (embedding) ``z(x) = int k(x, y) dmu(y)`` at each row of ``x``.

    Args:
        kernel: An :class:`ExpQuad` or :class:`Matern` kernel.
        measure: A :class:`LebesgueMeasure` or :class:`GaussianMeasure`.
        x: Points of shape ``[n, d]``.

    Returns:
        An array ``[n]``; the integral of the GP posterior mean is ``z(X) @ K^{-1} f(X)``.

    Raises:
        TypeError: for a pair without a closed form (Matérn with a Gaussian measure).

    Reference: Briol et al. (2019), Table 1.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import quad
        >>> m = quad.GaussianMeasure(0.0, 1.0)
        >>> z = quad.kernel_mean(quad.ExpQuad(1.0), m, jnp.zeros((1, 1)))
        >>> round(float(z[0]), 6)  # 1 / sqrt(2)
        0.707107
    """
    _check_pair(kernel, measure)
    ls = kernel.full_lengthscales(measure.dim)
    s2 = kernel.variance()
    if isinstance(measure, GaussianMeasure):
        chol = jnp.linalg.cholesky(jnp.diag(ls**2) + measure.cov)
        r = jsp.linalg.solve_triangular(chol, (x - measure.mean).T, lower=True)
        log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol))) - 2.0 * jnp.sum(jnp.log(ls))
        return s2 * jnp.exp(-0.5 * jnp.sum(r**2, axis=0) - 0.5 * log_det)
    kind = _kind(kernel)
    upper, lower = (measure.upper - x) / ls, (measure.lower - x) / ls
    per_dim = ls * (_odd_one_sided(kind, upper) - _odd_one_sided(kind, lower))
    return s2 * jnp.prod(per_dim, axis=-1) / (measure.volume if measure.normalized else 1.0)


@eqx.filter_jit
def initial_error(kernel: AbstractKernel, measure: AbstractMeasure) -> Float[Array, ""]:
    """The prior variance of the integral, ``int int k(x, y) dmu(x) dmu(y)``.

    Args:
        kernel: An :class:`ExpQuad` or :class:`Matern` kernel.
        measure: A :class:`LebesgueMeasure` or :class:`GaussianMeasure`.

    Returns:
        A scalar: the variance of ``int f dmu`` under the GP prior ``f ~ GP(0, k)``.

    Raises:
        TypeError: for a pair without a closed form (Matérn with a Gaussian measure).

    Reference: Briol et al. (2019), Table 1.

    Example:
        >>> from probnum_jax import quad
        >>> v = quad.initial_error(quad.ExpQuad(1.0), quad.GaussianMeasure(0.0, 1.0))
        >>> round(float(v), 6)  # 1 / sqrt(3)
        0.57735
    """
    _check_pair(kernel, measure)
    ls = kernel.full_lengthscales(measure.dim)
    s2 = kernel.variance()
    if isinstance(measure, GaussianMeasure):
        chol = jnp.linalg.cholesky(jnp.diag(ls**2) + 2.0 * measure.cov)
        log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol))) - 2.0 * jnp.sum(jnp.log(ls))
        return s2 * jnp.exp(-0.5 * log_det)
    per_dim = ls**2 * _two_sided(_kind(kernel), (measure.upper - measure.lower) / ls)
    return s2 * jnp.prod(per_dim) / (measure.volume**2 if measure.normalized else 1.0)
