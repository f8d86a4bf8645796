"""Leading eigenpairs of a symmetric positive semi-definite operator by Lanczos."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def lanczos_eigenpairs(
    matvec, start: Float[Array, " p"], *, num_iterations: int, rank: int
) -> tuple[Float[Array, " k"], Float[Array, "p k"]]:
    """Top-``rank`` Ritz pairs after ``num_iterations`` Lanczos steps.

    Uses full reorthogonalisation (twice, "twice is enough"), so the Krylov
    basis stays orthonormal in floating point (Golub & Van Loan, 2013,
    Sec. 10.1). On breakdown (an invariant subspace found) the remaining basis
    vectors are zero and contribute zero Ritz values. Eigenvalues are clipped
    at zero, as the operator is positive semi-definite.

    Args:
        matvec: ``v[p] -> A v``.
        start: the start vector (any non-zero vector).
        num_iterations: Krylov dimension ``m`` (``rank <= m <= p``).
        rank: number of eigenpairs returned.

    Returns:
        ``(eigvals[rank], eigvecs[p, rank])`` in decreasing order of eigenvalue.
    """
    p = start.shape[0]
    dtype = start.dtype
    basis = jnp.zeros((num_iterations + 1, p), dtype).at[0].set(start / jnp.linalg.norm(start))
    tiny = jnp.finfo(dtype).eps * 10

    def step(j, carry):
        basis, alphas, betas, scale = carry
        q = basis[j]
        w = matvec(q)
        alpha = jnp.dot(w, q)
        for _ in range(2):
            w = w - basis.T @ (basis @ w)
        beta = jnp.linalg.norm(w)
        scale = jnp.maximum(scale, jnp.abs(alpha))
        ok = beta > tiny * jnp.maximum(scale, 1.0)
        q_next = jnp.where(ok, w / jnp.where(ok, beta, 1.0), 0.0)
        beta = jnp.where(ok, beta, 0.0)
        return basis.at[j + 1].set(q_next), alphas.at[j].set(alpha), betas.at[j].set(beta), scale

    init = (basis, jnp.zeros(num_iterations, dtype), jnp.zeros(num_iterations, dtype), jnp.zeros((), dtype))
    basis, alphas, betas, _ = jax.lax.fori_loop(0, num_iterations, step, init)
    tridiagonal = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
    ritz_values, ritz_coeffs = jnp.linalg.eigh(tridiagonal)
    order = jnp.argsort(ritz_values)[::-1][:rank]
    vectors = basis[:num_iterations].T @ ritz_coeffs[:, order]
    return jnp.maximum(ritz_values[order], 0.0), vectors
