"""Stationary covariance kernels for Bayesian quadrature: ExpQuad (RBF) and product Matérn.

Both are parametrised by per-dimension (ARD) lengthscales ``l`` and an output
scale ``s`` (the prior standard deviation of the integrand), ``k(x, x) = s**2``.
References: Rasmussen & Williams, *Gaussian Processes for Machine Learning*,
MIT Press 2006, ch. 4.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._validation import is_concrete

_MATERN_NUS = (0.5, 1.5, 2.5)


def _as_float_array(name: str, value: ArrayLike, max_ndim: int) -> Array:
    arr = jnp.asarray(value)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if arr.ndim > max_ndim:
        raise ValueError(
            f"{name} must be a scalar{' or a 1-D array [d]' if max_ndim else ''}, "
            f"got shape {arr.shape}."
        )
    return arr


def _check_parameters(lengthscales: Array, output_scale: Array) -> None:
    if is_concrete((lengthscales, output_scale)):
        ls = np.asarray(lengthscales)
        if not (np.all(np.isfinite(ls)) and np.all(ls > 0)):
            raise ValueError(f"lengthscales must be finite and > 0, got {ls}.")
        os_ = np.asarray(output_scale)
        if not (np.isfinite(os_) and os_ > 0):
            raise ValueError(f"output_scale must be finite and > 0, got {os_}.")


class AbstractKernel(eqx.Module):
    """A stationary product-structured kernel ``k(x, y) = s**2 * prod_i phi((x_i - y_i) / l_i)``.

    Attributes:
        lengthscales: A scalar (isotropic) or an array ``[d]`` (ARD) of positive lengthscales.
        output_scale: The positive amplitude ``s``; ``k(x, x) = s**2``.
    """

    lengthscales: eqx.AbstractVar[Float[Array, "*d"]]
    output_scale: eqx.AbstractVar[Float[Array, ""]]

    @abc.abstractmethod
    def unit_correlation(self, scaled_diff: Float[Array, "... d"]) -> Float[Array, "..."]:
        """The correlation ``k / s**2`` as a function of ``(x - y) / l``."""

    def __call__(self, x: Float[Array, " d"], y: Float[Array, " d"]) -> Float[Array, ""]:
        """Evaluate ``k(x, y)`` for two points ``x, y`` of shape ``[d]``."""
        return self.output_scale**2 * self.unit_correlation((x - y) / self.lengthscales)

    def matrix(self, x: Float[Array, "n d"], y: Float[Array, "m d"]) -> Float[Array, "n m"]:
        """The cross-covariance matrix ``[k(x_i, y_j)]_{ij}``."""
        diff = (x[:, None, :] - y[None, :, :]) / self.lengthscales
        return self.output_scale**2 * self.unit_correlation(diff)

    def variance(self) -> Float[Array, ""]:
        """The prior variance ``k(x, x) = s**2`` (the same at every ``x``)."""
        return self.output_scale**2

    def with_parameters(self, lengthscales: Array, output_scale: Array) -> AbstractKernel:
        """A copy of this kernel with other lengthscales and output scale (no validation)."""
        return eqx.tree_at(
            lambda k: (k.lengthscales, k.output_scale), self, (lengthscales, output_scale)
        )

    def check_dim(self, dim: int) -> None:
        """Raise a ``ValueError`` unless the lengthscales fit inputs of dimension ``dim``."""
        if self.lengthscales.ndim == 1 and self.lengthscales.shape[0] != dim:
            raise ValueError(
                f"kernel.lengthscales has shape {self.lengthscales.shape}, but the inputs have "
                f"dimension d={dim}: pass a scalar or an array of shape ({dim},)."
            )

    def full_lengthscales(self, dim: int) -> Float[Array, " d"]:
        """The lengthscales broadcast to shape ``[dim]``."""
        return jnp.broadcast_to(self.lengthscales, (dim,))


class ExpQuad(AbstractKernel):
    """The exponentiated-quadratic (squared-exponential, RBF) kernel with ARD lengthscales.

    ``k(x, y) = s**2 * exp(-0.5 * sum_i (x_i - y_i)**2 / l_i**2)``.

    Args:
        lengthscales: A positive scalar or an array ``[d]`` of positive lengthscales.
            An array makes the kernel anisotropic (ARD) and lets type-II maximum
            likelihood learn one lengthscale per dimension.
        output_scale: The positive amplitude ``s`` (prior standard deviation of ``f(x)``).

    Raises:
        ValueError: if a lengthscale or the output scale is not finite and > 0.

    Reference: Rasmussen & Williams (2006), eq. (4.9).

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import quad
        >>> k = quad.ExpQuad(lengthscales=jnp.array([1.0, 2.0]), output_scale=2.0)
        >>> round(float(k(jnp.zeros(2), jnp.array([1.0, 0.0]))), 4)
        2.4261
    """

    lengthscales: Float[Array, "*d"]
    output_scale: Float[Array, ""]

    def __init__(self, lengthscales: ArrayLike = 1.0, output_scale: ArrayLike = 1.0):
        self.lengthscales = _as_float_array("lengthscales", lengthscales, 1)
        self.output_scale = _as_float_array("output_scale", output_scale, 0)
        _check_parameters(self.lengthscales, self.output_scale)

    def unit_correlation(self, scaled_diff):
        return jnp.exp(-0.5 * jnp.sum(scaled_diff**2, axis=-1))


def matern_1d(nu: float, r: Array) -> Array:
    """The one-dimensional Matérn correlation of half-integer order ``nu`` at ``r = |x - y| / l``."""
    if nu == 0.5:
        return jnp.exp(-r)
    if nu == 1.5:
        c = jnp.sqrt(3.0) * r
        return (1.0 + c) * jnp.exp(-c)
    c = jnp.sqrt(5.0) * r
    return (1.0 + c + c**2 / 3.0) * jnp.exp(-c)


class Matern(AbstractKernel):
    """A product of one-dimensional Matérn kernels of half-integer order ``nu``.

    ``k(x, y) = s**2 * prod_i phi_nu(|x_i - y_i| / l_i)`` with
    ``phi_{1/2}(r) = exp(-r)``, ``phi_{3/2}(r) = (1 + sqrt(3) r) exp(-sqrt(3) r)`` and
    ``phi_{5/2}(r) = (1 + sqrt(5) r + 5 r**2 / 3) exp(-sqrt(5) r)``. The product form
    gives closed-form kernel means over boxes (Lebesgue measures).

    Args:
        nu: The smoothness, one of ``0.5``, ``1.5``, ``2.5``.
        lengthscales: A positive scalar or an array ``[d]`` of positive lengthscales.
        output_scale: The positive amplitude ``s``.

    Raises:
        ValueError: if ``nu`` is not one of the supported values or a parameter is not > 0.

    Reference: Rasmussen & Williams (2006), eq. (4.17); the product form follows
    Briol et al., "Probabilistic integration: a role in statistical computation?",
    Statistical Science 34(1), 2019.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import quad
        >>> k = quad.Matern(1.5, lengthscales=0.5)
        >>> round(float(k(jnp.array([0.0]), jnp.array([0.5]))), 4)
        0.4834
    """

    nu: float = eqx.field(static=True)
    lengthscales: Float[Array, "*d"]
    output_scale: Float[Array, ""]

    def __init__(self, nu: float = 1.5, lengthscales: ArrayLike = 1.0, output_scale: ArrayLike = 1.0):
        if nu not in _MATERN_NUS:
            raise ValueError(f"nu must be one of {_MATERN_NUS}, got {nu!r}.")
        self.nu = float(nu)
        self.lengthscales = _as_float_array("lengthscales", lengthscales, 1)
        self.output_scale = _as_float_array("output_scale", output_scale, 0)
        _check_parameters(self.lengthscales, self.output_scale)

    def unit_correlation(self, scaled_diff):
        return jnp.prod(matern_1d(self.nu, jnp.abs(scaled_diff)), axis=-1)


def kernel_parameters_valid(kernel: AbstractKernel) -> Array:
    """A traced boolean: are all kernel parameters finite and > 0?"""
    ls, s = kernel.lengthscales, kernel.output_scale
    return jnp.all(jnp.isfinite(ls) & (ls > 0)) & jnp.isfinite(s) & (s > 0)
