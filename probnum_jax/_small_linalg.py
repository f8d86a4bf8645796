"""Dense linear algebra for small matrices, written with ``jnp`` loops instead of LAPACK calls.

The parallel-in-time ODE smoother and the block-coordinate weight posteriors
apply Cholesky factorisations and linear solves to many small matrices inside
iteration loops. On CPU, XLA lowers ``jnp.linalg`` to batched LAPACK custom
calls; inside those loops they hung the XLA CPU runtime (every thread asleep,
reproducibly with jax 0.10.2: the ODE smoother at ``N >= 1000`` grid points,
block-coordinate Laplace on a 64-50-8 MLP). These routines use only element-wise
operations and ``lax.fori_loop`` over the (static) matrix size, so they lower
to plain fused loops on every backend, vectorise under ``vmap``, and are
differentiable. Their cost is ``O(n^3)`` per matrix, like LAPACK's; they are
meant for ``n`` up to about a hundred.
"""

import jax
import jax.numpy as jnp


def solve(a, b):
    """``a⁻¹ b`` by Gauss–Jordan elimination with partial pivoting; ``b`` is ``[n]`` or ``[n, k]``."""
    dtype = jnp.result_type(a, b)
    a, b = jnp.asarray(a, dtype), jnp.asarray(b, dtype)
    n = a.shape[-1]
    vector = b.ndim == 1
    augmented = jnp.concatenate([a, b[:, None] if vector else b], axis=1)
    rows = jnp.arange(n)

    def eliminate(k, m):
        pivot = jnp.argmax(jnp.where(rows >= k, jnp.abs(m[:, k]), -1.0))
        row_k, row_p = m[k], m[pivot]
        m = m.at[pivot].set(row_k).at[k].set(row_p)
        normalised = m[k] / m[k, k]
        factors = jnp.where(rows == k, 0.0, m[:, k])
        return (m - factors[:, None] * normalised[None, :]).at[k].set(normalised)

    x = jax.lax.fori_loop(0, n, eliminate, augmented)[:, n:]
    return x[:, 0] if vector else x


def cholesky(a):
    """The lower Cholesky factor of a symmetric positive-definite ``a`` (column by column)."""
    a = jnp.asarray(a)
    n = a.shape[-1]
    idx = jnp.arange(n)

    def column(j, factor):
        row_j = jnp.where(idx < j, factor[j], 0.0)
        diag = jnp.sqrt(a[j, j] - row_j @ row_j)
        below = (a[:, j] - factor @ row_j) / diag
        return factor.at[:, j].set(jnp.where(idx > j, below, jnp.where(idx == j, diag, 0.0)))

    return jax.lax.fori_loop(0, n, column, jnp.zeros_like(a))


def solve_lower(factor, b):
    """``L⁻¹ b`` for lower-triangular ``L`` (forward substitution); ``b`` is ``[n]`` or ``[n, k]``."""
    dtype = jnp.result_type(factor, b)
    factor, b = jnp.asarray(factor, dtype), jnp.asarray(b, dtype)
    n = factor.shape[-1]

    def substitute(i, x):
        return x.at[i].set((b[i] - factor[i] @ x) / factor[i, i])  # x[i:] is still zero

    return jax.lax.fori_loop(0, n, substitute, jnp.zeros_like(b))


def solve_lower_transpose(factor, b):
    """``L⁻ᵀ b`` for lower-triangular ``L`` (back substitution); ``b`` is ``[n]`` or ``[n, k]``."""
    factor, b = jnp.asarray(factor), jnp.asarray(b)
    flipped = factor[::-1, ::-1].T  # Lᵀ with rows and columns reversed is lower triangular
    return solve_lower(flipped, b[::-1])[::-1]


def cho_solve(factor, b):
    """``(L Lᵀ)⁻¹ b`` from the lower Cholesky factor ``L``."""
    return solve_lower_transpose(factor, solve_lower(factor, b))
