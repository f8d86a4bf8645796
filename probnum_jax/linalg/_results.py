"""What a probabilistic linear solve returns: a Gaussian belief plus diagnostics."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from .. import randvars
from ._operators import PriorPlusLowRank

# Status codes used inside the loops; mapped to RESULTS at the end.
OK, INDEFINITE, NONFINITE = 0, 1, 2


class RESULTS(eqx.Enumeration):
    """Why a linear solve stopped. Only ``indefinite`` and ``nonfinite`` are errors.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import linalg
        >>> res = linalg.bayescg(jnp.diag(jnp.array([1.0, -1.0])), jnp.ones(2), throw=False)
        >>> bool(res.result == linalg.RESULTS.indefinite), bool(res.converged)
        (True, False)
    """

    successful = ""
    max_iterations_reached = (
        "The maximum number of iterations was reached before the tolerance. This is not an "
        "error for a probabilistic solver: the posterior covariance describes the remaining "
        "error. Increase `maxiter` to solve further."
    )
    indefinite = (
        "A direction p with p^T A p <= 0 (or r^T M r <= 0 for the preconditioner / prior) was "
        "found: the matrix is not symmetric positive definite. The returned mean is the last "
        "iterate before the breakdown."
    )
    nonfinite = (
        "The iteration produced NaN or inf: check that A (or its matvec), b and x0 are finite."
    )


def status_to_result(status, converged) -> RESULTS:
    result = RESULTS.where(converged, RESULTS.successful, RESULTS.max_iterations_reached)
    result = RESULTS.where(status == INDEFINITE, RESULTS.indefinite, result)
    return RESULTS.where(status == NONFINITE, RESULTS.nonfinite, result)


def raise_if_failed(solution: "LinearSolveResult") -> "LinearSolveResult":
    failed = (solution.result == RESULTS.indefinite) | (solution.result == RESULTS.nonfinite)
    mean = solution.result.error_if(solution.mean, failed)
    return eqx.tree_at(lambda s: s.mean, solution, mean)


class LinearSolveResult(eqx.Module):
    """The Gaussian belief ``x ~ N(mean, cov)`` about the solution of ``A x = b``.

    Attributes:
        mean: the posterior mean ``[n]``.
        cov: the posterior covariance as a :class:`PriorPlusLowRank` operator
            (matvec, diagonal, trace; dense only via ``cov.as_matrix()``).
        num_iterations: iterations (matrix-vector products with ``A``, apart
            from set-up and post-iterations) taken.
        residual_norm: ``||b - A mean||_2``.
        converged: whether the stopping tolerance was met (``False`` when
            ``maxiter`` ran out, or after a failure).
        result: a :class:`RESULTS` code.
        matrix_posterior: what the matrix-based solver learned
            (``problinsolve(belief="matrix")`` only; else ``None``), from which
            :attr:`matrix_belief` and :attr:`inverse_belief` are assembled.

    A result returned by a ``vmap``-ed solve holds batched arrays; evaluate
    the derived quantities inside the ``vmap`` too, e.g.
    ``jax.vmap(lambda r: r.std)(batched)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import linalg
        >>> A = jnp.diag(jnp.arange(1.0, 7.0))
        >>> res = linalg.bayescg(A, jnp.ones(6), maxiter=2, throw=False)
        >>> int(res.num_iterations), bool(res.converged), res.cov.factor.shape
        (2, False, (6, 5))
        >>> bool(jnp.all(res.std > 0))
        True
    """

    mean: Float[Array, " n"]
    cov: PriorPlusLowRank
    num_iterations: Int[Array, ""]
    residual_norm: Float[Array, ""]
    converged: Bool[Array, ""]
    result: RESULTS
    matrix_posterior: eqx.Module | None = None

    @property
    def matrix_belief(self):
        """The :class:`SymmetricKroneckerNormal` belief about ``A`` (matrix-based solves only)."""
        return None if self.matrix_posterior is None else self.matrix_posterior.matrix_belief

    @property
    def inverse_belief(self):
        """The :class:`SymmetricKroneckerNormal` belief about ``A^{-1}`` (matrix-based solves only)."""
        return None if self.matrix_posterior is None else self.matrix_posterior.inverse_belief

    @property
    def std(self) -> Float[Array, " n"]:
        """Marginal posterior standard deviations (``sqrt`` of the clipped diagonal)."""
        return jnp.sqrt(jnp.maximum(self.cov.diagonal(), 0.0))

    def to_normal(self) -> randvars.DenseNormal:
        """The belief as a dense :class:`probnum_jax.randvars.DenseNormal` (``O(n^3)``).

        Its factor is a lower-triangular square root of ``cov`` (from a
        symmetric eigendecomposition, clipping round-off negative eigenvalues),
        so ``sample`` works for the low-rank covariances too; ``logpdf`` needs
        a full-rank covariance.
        """
        if self.cov.prior is None and self.cov.middle.ndim == 1:
            root = self.cov.factor * jnp.sqrt(jnp.maximum(self.cov.middle, 0.0))
        else:
            evals, evecs = jnp.linalg.eigh(self.cov.as_matrix())
            root = evecs * jnp.sqrt(jnp.maximum(evals, 0.0))
        return randvars.DenseNormal(self.mean, randvars.triangularize(root))

    def sample(self, key, shape: tuple = ()) -> Array:
        """Draw samples from the belief (dense, via :meth:`to_normal`)."""
        return self.to_normal().sample(key, shape)


def finalize(mean, cov, matvec, b, num_iterations, converged, status, **beliefs) -> LinearSolveResult:
    residual_norm = jnp.linalg.norm(b - matvec(mean))
    nonfinite = ~jnp.isfinite(residual_norm) | ~jnp.all(jnp.isfinite(mean))
    status = jnp.where((status == OK) & nonfinite, NONFINITE, status)
    converged = converged & (status == OK)
    return LinearSolveResult(
        mean=mean,
        cov=cov,
        num_iterations=jnp.asarray(num_iterations),
        residual_norm=residual_norm,
        converged=converged,
        result=status_to_result(status, converged),
        **beliefs,
    )


def tree_where(pred, on_true, on_false):
    return jax.tree.map(lambda a, c: jnp.where(pred, a, c), on_true, on_false)
