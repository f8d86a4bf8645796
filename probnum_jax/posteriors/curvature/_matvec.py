"""Matrix-free GGN and Hessian products, and the dense GGN for small models."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PyTree

from .. import _checks
from .._chunks import default_chunk_size, sum_over_chunks
from .._likelihoods import check_likelihood, hessian_sqrt, hessian_vector, sum_loss


def _check(model_fn, params, x, y, likelihood):
    check_likelihood(likelihood)
    _checks.check_params(params)
    return _checks.check_model_data(model_fn, params, x, y, likelihood)


def ggn_matvec(
    model_fn, params: PyTree, x: Float[Array, "n ..."], y: Array, *, likelihood: str = "classification"
) -> Callable[[PyTree], PyTree]:
    """The GGN of the summed loss as a matrix-free operator ``v -> J^T Lambda J v``.

    The model is linearised once (:func:`jax.linearize`); each product is then
    one Jacobian-vector and one vector-Jacobian product over the batch. No
    Jacobian is formed (Schraudolph, 2002).

    Args:
        model_fn: ``model_fn(params, x[n, ...]) -> outputs[n, C]``.
        params: parameter pytree (the linearisation point).
        x: inputs ``[n, ...]``.
        y: labels or targets (checked for shape; the GGN does not depend on them).
        likelihood: ``"classification"`` or ``"regression"`` (unit noise).

    Returns:
        ``matvec(v)``, mapping a pytree like ``params`` to one like ``params``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import curvature
        >>> model_fn = lambda p, x: x @ p["w"]
        >>> params = {"w": jnp.zeros((3, 1))}
        >>> mv = curvature.ggn_matvec(model_fn, params, jnp.eye(3), jnp.zeros((3, 1)), likelihood="regression")
        >>> mv({"w": jnp.ones((3, 1))})["w"].ravel().tolist()
        [1.0, 1.0, 1.0]
    """
    _check(model_fn, params, x, y, likelihood)
    out, jvp_fn = jax.linearize(lambda p: model_fn(p, x), params)
    vjp_fn = jax.linear_transpose(jvp_fn, params)

    def matvec(v):
        jv = jvp_fn(v)
        return vjp_fn(jax.vmap(lambda f, u: hessian_vector(likelihood, f, u))(out, jv))[0]

    return matvec


def hessian_matvec(
    model_fn, params: PyTree, x: Float[Array, "n ..."], y: Array, *, likelihood: str = "classification"
) -> Callable[[PyTree], PyTree]:
    """The Hessian of the summed loss as a matrix-free operator (forward-over-reverse).

    Args:
        model_fn, params, x, y, likelihood: as in :func:`ggn_matvec`.

    Returns:
        ``matvec(v)``, mapping a pytree like ``params`` to one like ``params``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import curvature
        >>> model_fn = lambda p, x: x @ p["w"]
        >>> params = {"w": jnp.zeros((3, 1))}
        >>> mv = curvature.hessian_matvec(model_fn, params, jnp.eye(3), jnp.zeros((3, 1)), likelihood="regression")
        >>> mv({"w": jnp.ones((3, 1))})["w"].ravel().tolist()
        [1.0, 1.0, 1.0]
    """
    _check(model_fn, params, x, y, likelihood)
    grad = jax.grad(lambda p: sum_loss(likelihood, model_fn(p, x), y))
    _, matvec = jax.linearize(grad, params)
    return matvec


def ggn_dense(
    model_fn,
    params: PyTree,
    x: Float[Array, "n ..."],
    y: Array,
    *,
    likelihood: str = "classification",
    chunk_size: int | None = None,
) -> Float[Array, "p p"]:
    """The GGN of the summed loss as a dense ``[p, p]`` matrix (small models only).

    Parameters are ordered as :func:`jax.flatten_util.ravel_pytree` orders
    them. Per-sample Jacobians are formed ``chunk_size`` samples at a time, so
    memory is ``chunk_size * C * p + p**2``.

    Args:
        model_fn, params, x, y, likelihood: as in :func:`ggn_matvec`.
        chunk_size: samples per chunk (default: memory-bounded).

    Returns:
        ``sum_i J_i^T Lambda_i J_i`` as a ``[p, p]`` array.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.posteriors import curvature
        >>> model_fn = lambda p, x: x @ p["w"]
        >>> params = {"w": jnp.zeros((2, 1))}
        >>> curvature.ggn_dense(model_fn, params, jnp.eye(2), jnp.zeros((2, 1)), likelihood="regression").tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    n, num_outputs = _check(model_fn, params, x, y, likelihood)
    if chunk_size is None:
        chunk_size = default_chunk_size(n, num_outputs * sum(jnp.size(leaf) for leaf in jax.tree.leaves(params)))
    return _ggn_dense(model_fn, params, x, likelihood, chunk_size)


@eqx.filter_jit
def _ggn_dense(model_fn, params, x, likelihood, chunk_size):
    flat, unravel = ravel_pytree(params)

    def chunk_sum(chunk, weight):
        def rows(x_i):
            f = lambda w: model_fn(unravel(w), x_i[None])[0]  # noqa: E731
            out, vjp_fn = jax.vjp(f, flat)
            (jac_t,) = jax.vmap(vjp_fn)(hessian_sqrt(likelihood, out))  # [C, p]
            return jac_t

        r = jax.vmap(rows)(chunk) * weight[:, None, None]
        return jnp.einsum("ncp,ncq->pq", r, r)

    return sum_over_chunks(chunk_sum, x, chunk_size)
