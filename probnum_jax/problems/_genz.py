"""The six Genz families of integrands on the unit cube, with closed-form integrals.

Each family has difficulty parameters ``a > 0`` (larger is harder) and shift
parameters ``u`` in ``[0, 1]^d``:

==================  ===========================================================
``oscillatory``     ``cos(2 pi u_1 + sum_i a_i x_i)``
``product_peak``    ``prod_i 1 / (a_i^-2 + (x_i - u_i)^2)``
``corner_peak``     ``(1 + sum_i a_i x_i)^-(d + 1)``
``gaussian_peak``   ``exp(-sum_i a_i^2 (x_i - u_i)^2)``
``continuous``      ``exp(-sum_i a_i |x_i - u_i|)``
``discontinuous``   ``exp(sum_i a_i x_i)`` if ``x_1 <= u_1`` and ``x_2 <= u_2``, else 0
==================  ===========================================================

References: A. Genz, "Testing multidimensional integration routines", in *Tools,
Methods and Languages for Scientific and Engineering Computation*, North-Holland
1984, pp. 81–94; A. Genz, "A package for testing multiple integration
subroutines", in *Numerical Integration*, Reidel 1987, pp. 337–340. The default
difficulties (``sum_i a_i``) 9.0, 7.25, 1.85, 7.03, 20.4, 4.3 are those of the
1987 package as used by Gerstner & Griebel, "Numerical integration using sparse
grids", Numer. Algorithms 18, 1998.
"""

from __future__ import annotations

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy as jsp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

GENZ_FAMILIES = (
    "oscillatory",
    "product_peak",
    "corner_peak",
    "gaussian_peak",
    "continuous",
    "discontinuous",
)
_DEFAULT_DIFFICULTY = {
    "oscillatory": 9.0,
    "product_peak": 7.25,
    "corner_peak": 1.85,
    "gaussian_peak": 7.03,
    "continuous": 20.4,
    "discontinuous": 4.3,
}


class GenzProblem(eqx.Module):
    """One Genz integrand on ``[0, 1]^d`` with its exact integral.

    The parameters are array leaves, so a batch of instances (stacked ``a``, ``u``)
    can be ``jax.vmap``-ed over.

    Attributes:
        family: One of ``GENZ_FAMILIES``.
        a: Difficulty parameters ``[d]`` (positive).
        u: Shift parameters ``[d]`` in ``[0, 1]``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.problems import genz_gaussian_peak
        >>> p = genz_gaussian_peak(a=jnp.array([2.0]), u=jnp.array([0.5]))
        >>> round(float(p.integrand(jnp.array([0.5]))), 6), round(float(p.solution), 6)
        (1.0, 0.746824)
    """

    family: str = eqx.field(static=True)
    a: Float[Array, " d"]
    u: Float[Array, " d"]

    @property
    def dim(self) -> int:
        return self.a.shape[-1]

    @property
    def lower(self) -> Float[Array, " d"]:
        return jnp.zeros_like(self.a)

    @property
    def upper(self) -> Float[Array, " d"]:
        return jnp.ones_like(self.a)

    def integrand(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """Evaluate the integrand at one point ``x`` of shape ``[d]``."""
        a, u = self.a, self.u
        if self.family == "oscillatory":
            return jnp.cos(2 * jnp.pi * u[0] + a @ x)
        if self.family == "product_peak":
            return jnp.prod(1.0 / (a**-2 + (x - u) ** 2))
        if self.family == "corner_peak":
            return (1.0 + a @ x) ** (-(self.dim + 1))
        if self.family == "gaussian_peak":
            return jnp.exp(-jnp.sum(a**2 * (x - u) ** 2))
        if self.family == "continuous":
            return jnp.exp(-jnp.sum(a * jnp.abs(x - u)))
        inside = jnp.all(x[:2] <= u[:2])
        return jnp.where(inside, jnp.exp(a @ x), 0.0)

    def __call__(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        return self.integrand(x)

    @property
    def solution(self) -> Float[Array, ""]:
        """The exact integral over ``[0, 1]^d``."""
        a, u, d = self.a, self.u, self.dim
        if self.family == "oscillatory":
            return jnp.cos(2 * jnp.pi * u[0] + 0.5 * jnp.sum(a)) * jnp.prod(
                2.0 * jnp.sin(0.5 * a) / a
            )
        if self.family == "product_peak":
            return jnp.prod(a * (jnp.arctan(a * (1.0 - u)) + jnp.arctan(a * u)))
        if self.family == "corner_peak":
            total = jnp.zeros((), a.dtype)
            for subset in itertools.product((0, 1), repeat=d):
                sel = jnp.asarray(subset, a.dtype)
                total = total + (-1.0) ** sum(subset) / (1.0 + sel @ a)
            return total / (math.factorial(d) * jnp.prod(a))
        if self.family == "gaussian_peak":
            per_dim = jsp.special.erf(a * (1.0 - u)) + jsp.special.erf(a * u)
            return jnp.prod(jnp.sqrt(jnp.pi) / (2.0 * a) * per_dim)
        if self.family == "continuous":
            return jnp.prod(-(jnp.expm1(-a * u) + jnp.expm1(-a * (1.0 - u))) / a)
        upper = jnp.where(jnp.arange(d) < 2, u, 1.0)
        return jnp.prod(jnp.expm1(a * upper) / a)


def _as_parameters(name: str, a: ArrayLike, u: ArrayLike | None) -> tuple[Array, Array]:
    a = jnp.asarray(a)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(jnp.result_type(float))
    if a.ndim != 1 or a.shape[0] < 1:
        raise ValueError(f"{name}: a must be a 1-D array [d] with d >= 1, got shape {a.shape}.")
    u = jnp.full_like(a, 0.5) if u is None else jnp.asarray(u, a.dtype)
    if u.shape != a.shape:
        raise ValueError(f"{name}: u must have the shape of a {a.shape}, got {u.shape}.")
    if not isinstance(a, jax.core.Tracer) and not bool(jnp.all(a > 0)):
        raise ValueError(f"{name}: a must be > 0, got {a}.")
    if not isinstance(u, jax.core.Tracer) and not bool(jnp.all((u >= 0) & (u <= 1))):
        raise ValueError(f"{name}: u must lie in [0, 1], got {u}.")
    return a, u


def _factory(family: str):
    def make(*, a: ArrayLike, u: ArrayLike | None = None) -> GenzProblem:
        a, u = _as_parameters(f"genz_{family}", a, u)
        return GenzProblem(family=family, a=a, u=u)

    make.__name__ = f"genz_{family}"
    make.__qualname__ = make.__name__
    make.__doc__ = f"""The Genz ``{family}`` integrand on ``[0, 1]^d`` (see the module table).

    Args:
        a: Difficulty parameters ``[d]``, positive.
        u: Shift parameters ``[d]`` in ``[0, 1]``; default ``0.5``.

    Returns:
        A :class:`GenzProblem` with ``integrand(x)`` and the exact ``solution``.

    Reference: Genz (1984, 1987).

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.problems import genz_{family}
        >>> p = genz_{family}(a=jnp.array([1.0, 2.0]), u=jnp.array([0.3, 0.6]))
        >>> p.dim, p.solution.shape
        (2, ())
    """
    return make


genz_oscillatory = _factory("oscillatory")
genz_product_peak = _factory("product_peak")
genz_corner_peak = _factory("corner_peak")
genz_gaussian_peak = _factory("gaussian_peak")
genz_continuous = _factory("continuous")
genz_discontinuous = _factory("discontinuous")


def genz_random(
    family: str, *, key: PRNGKeyArray, dim: int, difficulty: float | None = None, dtype=None
) -> GenzProblem:
    """A random instance of a Genz family: ``u ~ U[0, 1]^d``, ``a ~ U[0, 1]^d`` rescaled to ``sum(a) = difficulty``.

    Args:
        family: One of ``GENZ_FAMILIES``.
        key: A JAX PRNG key.
        dim: The dimension ``d``.
        difficulty: ``sum_i a_i``; default the family's value from Genz (1987):
            oscillatory 9.0, product_peak 7.25, corner_peak 1.85, gaussian_peak 7.03,
            continuous 20.4, discontinuous 4.3.
        dtype: The floating dtype (default: JAX's default float).

    Returns:
        A :class:`GenzProblem`. ``jax.vmap(lambda k: genz_random(..., key=k))`` over
        keys gives a batch of instances.

    Example:
        >>> import jax
        >>> from probnum_jax.problems import genz_random
        >>> p = genz_random("product_peak", key=jax.random.key(0), dim=3)
        >>> round(float(p.a.sum()), 2)
        7.25
    """
    if family not in GENZ_FAMILIES:
        raise ValueError(f"family must be one of {GENZ_FAMILIES}, got {family!r}.")
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an int >= 1, got {dim!r}.")
    dtype = jnp.result_type(float) if dtype is None else dtype
    difficulty = _DEFAULT_DIFFICULTY[family] if difficulty is None else difficulty
    key_a, key_u = jax.random.split(key)
    a = jax.random.uniform(key_a, (dim,), dtype, 0.05, 1.0)
    a = a / jnp.sum(a) * difficulty
    u = jax.random.uniform(key_u, (dim,), dtype)
    return GenzProblem(family=family, a=a, u=u)
