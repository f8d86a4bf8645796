"""Symmetric positive-definite test matrices for linear solvers.

* :func:`random_spd_matrix`: ``Q diag(eigenvalues) Q^T`` with a Haar-random
  orthogonal ``Q`` (Mezzadri 2007) and a chosen spectrum.
* :func:`random_sparse_spd_matrix`: a random symmetric sparse matrix made
  strictly diagonally dominant with a positive diagonal, hence SPD by
  Gershgorin's theorem; returned as a ``jax.experimental.sparse.BCOO`` matrix.
* :func:`poisson_2d_matvec`: the 5-point finite-difference Laplacian ``-Δ`` on
  the unit square with homogeneous Dirichlet conditions, matrix-free.
* :func:`rbf_gram_matrix`: a squared-exponential kernel Gram matrix plus a
  nugget ``σ² I`` (the GP-regression system ``(K + σ² I) α = y``; Rasmussen &
  Williams 2006, ch. 2).

References:
    F. Mezzadri. How to generate random matrices from the classical compact
    groups. Notices of the AMS 54(5), 2007.
    R. J. LeVeque. Finite Difference Methods for Ordinary and Partial
    Differential Equations. SIAM, 2007, Sec. 3.2 (the 5-point Laplacian).
    C. E. Rasmussen, C. K. I. Williams. Gaussian Processes for Machine
    Learning. MIT Press, 2006.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.experimental import sparse as jsparse
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["poisson_2d_eigenvalues", "poisson_2d_matvec", "random_sparse_spd_matrix", "random_spd_matrix", "rbf_gram_matrix"]


def random_spd_matrix(key: PRNGKeyArray, eigenvalues: Float[Array, " n"]) -> Float[Array, "n n"]:
    """A random symmetric positive-definite matrix with the given eigenvalues.

    Arguments:
        key: PRNG key for the Haar-random eigenvectors.
        eigenvalues: the spectrum ``[n]``, all positive.

    Returns:
        The dense matrix ``Q diag(eigenvalues) Q^T``, ``[n, n]``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.problems import random_spd_matrix
        >>> A = random_spd_matrix(jax.random.key(0), jnp.array([1.0, 10.0, 100.0]))
        >>> jnp.round(jnp.linalg.eigvalsh(A), 3).tolist()
        [1.0, 10.0, 100.0]
    """
    eigenvalues = jnp.asarray(eigenvalues)
    if eigenvalues.ndim != 1:
        raise ValueError(f"eigenvalues must be a 1-D array, got shape {eigenvalues.shape}.")
    if not jnp.issubdtype(eigenvalues.dtype, jnp.floating):
        eigenvalues = eigenvalues.astype(jnp.result_type(float))
    return _random_spd(key, eigenvalues)


@jax.jit
def _random_spd(key, eigenvalues):
    n = eigenvalues.shape[0]
    gaussian = jax.random.normal(key, (n, n), eigenvalues.dtype)
    q, r = jnp.linalg.qr(gaussian)
    q = q * jnp.sign(jnp.diag(r))  # Haar measure (Mezzadri 2007)
    A = (q * eigenvalues) @ q.T
    return (A + A.T) / 2


def random_sparse_spd_matrix(
    key: PRNGKeyArray, n: int, *, nnz_per_row: int = 4, diagonal_margin: float = 1.0, dtype=None
) -> jsparse.BCOO:
    """A random sparse symmetric positive-definite matrix in BCOO format.

    Off-diagonal entries: ``nnz_per_row`` random positions per row with
    standard-normal values, symmetrised. The diagonal is the absolute row sum
    of the off-diagonal part plus ``diagonal_margin``, so the matrix is
    strictly diagonally dominant and its eigenvalues lie in
    ``[diagonal_margin, ∞)`` (Gershgorin).

    Arguments:
        key: PRNG key.
        n: the size.
        nnz_per_row: random off-diagonal entries drawn per row (before symmetrising).
        diagonal_margin: the lower bound on the eigenvalues, ``> 0``.
        dtype: floating dtype (default: JAX's default float).

    Returns:
        A ``jax.experimental.sparse.BCOO`` ``[n, n]`` matrix (``A @ v`` is a matvec).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax.problems import random_sparse_spd_matrix
        >>> A = random_sparse_spd_matrix(jax.random.key(0), 50)
        >>> bool(jnp.linalg.eigvalsh(A.todense()).min() >= 1.0 - 1e-5)
        True
    """
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}.")
    if nnz_per_row < 1:
        raise ValueError(f"nnz_per_row must be >= 1, got {nnz_per_row}.")
    if not diagonal_margin > 0:
        raise ValueError(f"diagonal_margin must be > 0, got {diagonal_margin}.")
    dtype = jnp.result_type(float) if dtype is None else dtype
    return _random_sparse_spd(key, n, nnz_per_row, diagonal_margin, dtype)


@functools.partial(jax.jit, static_argnums=(1, 2, 4))
def _random_sparse_spd(key, n, nnz_per_row, diagonal_margin, dtype):
    key_cols, key_vals = jax.random.split(key)
    rows = jnp.repeat(jnp.arange(n), nnz_per_row)
    shift = jax.random.randint(key_cols, (n * nnz_per_row,), 1, n)
    cols = (rows + shift) % n  # never on the diagonal
    vals = jax.random.normal(key_vals, (n * nnz_per_row,), dtype)
    off_rows = jnp.concatenate([rows, cols])
    off_cols = jnp.concatenate([cols, rows])
    off_vals = jnp.concatenate([vals, vals]) / 2
    row_sums = jax.ops.segment_sum(jnp.abs(off_vals), off_rows, num_segments=n)
    diag = jnp.arange(n)
    indices = jnp.stack([jnp.concatenate([off_rows, diag]), jnp.concatenate([off_cols, diag])], axis=1)
    data = jnp.concatenate([off_vals, row_sums + diagonal_margin])
    return jsparse.BCOO((data, indices), shape=(n, n))


def poisson_2d_matvec(grid_size: int) -> Callable[[Array], Array]:
    """The matrix-free 2-D Poisson operator ``-Δ_h`` on an ``m × m`` interior grid.

    The 5-point stencil ``(4 u_ij - u_{i±1,j} - u_{i,j±1}) / h^2`` with
    ``h = 1 / (m + 1)`` and zero Dirichlet boundary values; vectors have
    length ``n = m^2`` (row-major grid). The operator is SPD with eigenvalues
    :func:`poisson_2d_eigenvalues`.

    Arguments:
        grid_size: ``m``, interior points per dimension.

    Returns:
        A matvec ``v -> A v`` for vectors ``[m * m]`` (any float dtype).

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.problems import poisson_2d_matvec
        >>> A = poisson_2d_matvec(3)
        >>> float(A(jnp.ones(9))[4])  # the centre: 4 - 4 neighbours = 0
        0.0
    """
    if grid_size < 1:
        raise ValueError(f"grid_size must be >= 1, got {grid_size}.")
    m = grid_size
    inv_h2 = float((m + 1) ** 2)

    def matvec(v):
        if v.shape != (m * m,):
            raise ValueError(f"The Poisson matvec expects vectors of shape ({m * m},), got {v.shape}.")
        u = v.reshape(m, m)
        padded = jnp.pad(u, 1)
        out = 4 * u - padded[:-2, 1:-1] - padded[2:, 1:-1] - padded[1:-1, :-2] - padded[1:-1, 2:]
        return (inv_h2 * out).reshape(-1).astype(v.dtype)

    return matvec


def poisson_2d_eigenvalues(grid_size: int) -> Float[Array, " n"]:
    """Eigenvalues of :func:`poisson_2d_matvec`, ``4/h^2 (sin^2(iπh/2) + sin^2(jπh/2))``, sorted."""
    m = grid_size
    h = 1.0 / (m + 1)
    s = jnp.sin(jnp.arange(1, m + 1) * jnp.pi * h / 2) ** 2
    return jnp.sort((4 / h**2) * (s[:, None] + s[None, :]).reshape(-1))


def rbf_gram_matrix(
    x: Float[Array, "n d"], *, lengthscale: float = 1.0, output_scale: float = 1.0, nugget: float = 1e-3
) -> Float[Array, "n n"]:
    """The Gram matrix ``K_ij = s^2 exp(-||x_i - x_j||^2 / (2 l^2)) + nugget δ_ij``.

    Arguments:
        x: the points ``[n, d]`` (or ``[n]`` for 1-D inputs).
        lengthscale: ``l > 0``.
        output_scale: ``s > 0``.
        nugget: ``σ² > 0``, the noise variance on the diagonal; the smallest
            eigenvalue is ``>= nugget``.

    Returns:
        The dense SPD matrix ``[n, n]``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax.problems import rbf_gram_matrix
        >>> K = rbf_gram_matrix(jnp.linspace(0, 1, 4)[:, None], nugget=0.5)
        >>> float(K[0, 0])
        1.5
    """
    x = jnp.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"x must have shape [n, d] or [n], got {x.shape}.")
    for name, value in (("lengthscale", lengthscale), ("output_scale", output_scale), ("nugget", nugget)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}.")
    sq = jnp.sum(x**2, axis=1)
    dist2 = jnp.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    K = output_scale**2 * jnp.exp(-dist2 / (2 * lengthscale**2))
    return K + nugget * jnp.eye(x.shape[0], dtype=K.dtype)
