"""Trace-time validation of linear-solver arguments: clear errors that name the argument.

Shape, dtype and structure mistakes raise here, before any iteration runs. Value
checks (NaN/inf, negative tolerances) run only on concrete inputs; inside
``jit`` the solvers report non-finite iterates through ``result`` instead.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jax.experimental import sparse as jsparse


def is_concrete(x) -> bool:
    """True if ``x`` holds values now (no tracer inside ``jit``/``vmap``/``grad``)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def _check_finite(name: str, x) -> None:
    if is_concrete(x) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} must be finite, but it contains NaN or inf.")


def as_rhs(b) -> jax.Array:
    """``b`` as a floating 1-D array ``[n]``."""
    if isinstance(b, jsparse.JAXSparse) or callable(b):
        raise TypeError(f"b must be a 1-D array, got {type(b).__name__}.")
    b = jnp.asarray(b)
    if b.ndim != 1:
        raise ValueError(
            f"b must be a 1-D array of shape [n], got shape {b.shape}. "
            "For several right-hand sides, use jax.vmap over b."
        )
    if b.shape[0] < 1:
        raise ValueError("b must have at least one entry.")
    if not jnp.issubdtype(b.dtype, jnp.floating):
        b = b.astype(jnp.result_type(float))
    _check_finite("b", b)
    return b


def as_initial_guess(x0, b) -> jax.Array:
    if x0 is None:
        return jnp.zeros_like(b)
    x0 = jnp.asarray(x0, b.dtype)
    if x0.shape != b.shape:
        raise ValueError(f"x0 must have the shape of b {b.shape}, got {x0.shape}.")
    _check_finite("x0", x0)
    return x0


def as_matvec(A, b: jax.Array, name: str = "A") -> Callable[[jax.Array], jax.Array]:
    """Normalise a dense matrix, a sparse matrix, a matvec or a lineax operator to a matvec.

    Raises ``ValueError``/``TypeError`` naming ``name`` when the operator is not
    square of size ``n = b.shape[0]``, returns the wrong shape or dtype, or a
    concrete matrix holds NaN/inf.
    """
    n = b.shape[0]
    if isinstance(A, lx.AbstractLinearOperator):
        in_shape = A.in_structure().shape
        out_shape = A.out_structure().shape
        if in_shape != out_shape:
            raise ValueError(
                f"{name} must be a square operator, got a lineax operator mapping {in_shape} "
                f"to {out_shape}."
            )
        if in_shape != (n,):
            raise ValueError(
                f"{name} acts on vectors of shape {in_shape}, but b has shape {b.shape}."
            )
        if isinstance(A, lx.MatrixLinearOperator):
            _check_finite(name, A.matrix)
        return A.mv
    if isinstance(A, jsparse.JAXSparse):
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"{name} must be a square matrix, got a sparse matrix of shape {A.shape}.")
        if A.shape[0] != n:
            raise ValueError(f"{name} has shape {A.shape}, but b has shape {b.shape}; expected ({n}, {n}).")
        _check_finite(name, A.data)
        return lambda v: A @ v
    if callable(A):
        try:
            out = jax.eval_shape(A, b)
        except Exception as e:  # noqa: BLE001 - re-raised with context
            raise TypeError(
                f"Calling the matvec {name}(v) on a vector shaped like b {b.shape} failed "
                f"({type(e).__name__}: {e})."
            ) from e
        if not hasattr(out, "shape") or out.shape != b.shape:
            raise ValueError(
                f"The matvec {name}(v) must return a vector of b's shape {b.shape}, got "
                f"{getattr(out, 'shape', type(out).__name__)}: {name} must be square."
            )
        if out.dtype != b.dtype:
            raise TypeError(f"The matvec {name}(v) must return b's dtype {b.dtype}, got {out.dtype}.")
        return A
    A = jnp.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {A.shape}.")
    if A.shape[0] != n:
        raise ValueError(f"{name} has shape {A.shape}, but b has shape {b.shape}; expected ({n}, {n}).")
    if not jnp.issubdtype(A.dtype, jnp.floating):
        raise TypeError(f"{name} must be a floating-point matrix, got dtype {A.dtype}.")
    _check_finite(name, A)
    A = A.astype(b.dtype)
    return lambda v: A @ v


def as_prior_operator(prior, b: jax.Array, name: str) -> lx.AbstractLinearOperator | None:
    """A symmetric positive-definite prior covariance / preconditioner as a lineax operator.

    ``None`` stays ``None`` (the identity); a 1-D array is a diagonal, a 2-D array
    a dense matrix, a callable a matvec.
    """
    if prior is None:
        return None
    n = b.shape[0]
    structure = jax.ShapeDtypeStruct((n,), b.dtype)
    tags = (lx.symmetric_tag, lx.positive_semidefinite_tag)
    if isinstance(prior, lx.AbstractLinearOperator):
        as_matvec(prior, b, name)
        return prior
    if callable(prior) and not hasattr(prior, "shape"):
        as_matvec(prior, b, name)
        return lx.FunctionLinearOperator(prior, structure, tags=tags)
    prior = jnp.asarray(prior, b.dtype)
    _check_finite(name, prior)
    if prior.ndim == 1:
        if prior.shape != (n,):
            raise ValueError(f"{name} given as a diagonal must have shape ({n},), got {prior.shape}.")
        if is_concrete(prior) and not np.all(np.asarray(prior) > 0):
            raise ValueError(f"{name} given as a diagonal must be positive.")
        return lx.DiagonalLinearOperator(prior)
    as_matvec(prior, b, name)
    return lx.MatrixLinearOperator(prior, tags)


def check_maxiter(maxiter, default: int, name: str = "maxiter") -> int:
    if maxiter is None:
        return default
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)):
        raise TypeError(f"{name} must be a Python int (it sizes buffers), got {type(maxiter).__name__}.")
    if maxiter < 1:
        raise ValueError(f"{name} must be >= 1, got {maxiter}.")
    return int(maxiter)


def check_iteration_limit(maxiter, default: int) -> jax.Array:
    """``maxiter`` for loops it does not size: a Python int or an integer scalar array, >= 1.

    Traced values are allowed (e.g. ``vmap`` over iteration budgets); concrete
    ones are checked.
    """
    if maxiter is None:
        return jnp.asarray(default)
    if isinstance(maxiter, bool) or not (
        isinstance(maxiter, (int, np.integer))
        or (hasattr(maxiter, "dtype") and jnp.issubdtype(maxiter.dtype, jnp.integer) and jnp.ndim(maxiter) == 0)
    ):
        raise TypeError(f"maxiter must be an int or an integer scalar array, got {maxiter!r}.")
    if is_concrete(maxiter) and int(maxiter) < 1:
        raise ValueError(f"maxiter must be >= 1, got {int(maxiter)}.")
    return jnp.asarray(maxiter)


def check_tolerance(name: str, value, dtype) -> jax.Array:
    if is_concrete(value):
        v = np.asarray(value)
        if v.shape != ():
            raise ValueError(f"{name} must be a scalar, got shape {v.shape}.")
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value}.")
    return jnp.asarray(value, dtype)


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}.")
    return value
