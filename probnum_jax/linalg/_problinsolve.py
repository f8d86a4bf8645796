"""``problinsolve``: probabilistic linear solvers with solution- or matrix-based beliefs."""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx

from . import _checks
from ._matrix_based import matrix_based_solve, matrix_posterior
from ._operators import PriorPlusLowRank
from ._results import LinearSolveResult, finalize, raise_if_failed
from ._solution_based import solution_based_solve

_STOPPING = ("residual", "contraction")


def _as_stopping(stopping) -> tuple[str, ...]:
    names = (stopping,) if isinstance(stopping, str) else tuple(stopping)
    if not names:
        raise ValueError(f"stopping must name at least one of {list(_STOPPING)}.")
    for name in names:
        _checks.check_choice("stopping", name, _STOPPING)
    return names


def _as_calibration(calibration, belief):
    allowed = {"matrix": ("rayleigh", "none"), "solution": ("empirical_bayes", "none")}[belief]
    if calibration == "auto":
        return allowed[0]
    if isinstance(calibration, str):
        if calibration not in allowed:
            raise ValueError(
                f"calibration for belief={belief!r} must be one of {list(allowed) + ['auto']} "
                f"or a positive number, got {calibration!r}."
            )
        return calibration
    if _checks.is_concrete(calibration) and not float(calibration) > 0:
        raise ValueError(f"calibration given as a number must be > 0, got {calibration}.")
    return calibration


def problinsolve(
    A,
    b,
    *,
    belief: str = "matrix",
    policy: str = "cg",
    x0=None,
    prior_inverse=None,
    maxiter: int | None = None,
    atol=1e-6,
    rtol=1e-6,
    stopping="residual",
    calibration="auto",
    noise_std: float | None = None,
    key=None,
    throw: bool = True,
) -> LinearSolveResult:
    """Solve ``A x = b`` (symmetric positive definite) by probabilistic inference.

    ``belief="matrix"`` is the matrix-based solver of Hennig (2015) and Wenger &
    Hennig (2020): symmetric matrix-variate Gaussian beliefs about ``A`` and
    ``H = A^{-1}`` with symmetric Kronecker covariances, updated by rank-2
    steps; the solution's belief is induced by ``x = H b`` and its mean is the
    line-search iterate. ``belief="solution"`` is solution-based inference
    (Cockayne et al. 2019): a Gaussian prior ``x ~ N(x0, sigma^2 Sigma0)``
    conditioned on ``s_i^T A x = s_i^T b``. Both keep the directions in
    fixed-size buffers (memory ``~4 maxiter n`` numbers for ``"matrix"``,
    ``~maxiter n`` for ``"solution"``), so the solve jit-compiles; iteration ``k``
    costs one or two matvecs plus ``O(n k)``.

    The mean is differentiable in ``b`` and in ``A``'s parameters by implicit
    differentiation (``jax.lax.custom_linear_solve``), not through the loop.

    Arguments:
        A: a symmetric positive-definite ``[n, n]`` array, a matvec, a
            ``jax.experimental.sparse`` matrix or a ``lineax`` operator. With
            ``noise_std``, the matvec of the observed noisy matrix ``A + E``.
        b: the right-hand side ``[n]``.
        belief: ``"matrix"`` or ``"solution"``.
        policy: ``"cg"`` (conjugate directions: ``-H_{k-1} r`` for the matrix
            belief, Cockayne et al.'s directions for the solution belief) or
            ``"random"`` (random unit coordinate vectors, without
            replacement; needs ``key``).
        x0: initial guess; default ``H0 b`` (matrix belief) or zeros (solution).
        prior_inverse: ``H0``, the prior mean and covariance factor of
            ``A^{-1}`` (matrix belief) or the prior covariance ``Sigma0`` of
            ``x`` (solution belief): a preconditioner, given as a positive
            diagonal ``[n]``, an ``[n, n]`` array, a matvec or a lineax
            operator. Default: the identity.
        maxiter: maximum iterations and buffer size (default ``min(n, 500)``).
        atol, rtol: stop when the criterion in ``stopping`` drops below
            ``max(atol, rtol ||b||)``.
        stopping: ``"residual"`` (``||b - A x_k||``), ``"contraction"``
            (``sqrt(trace Cov(x))``) or both as a tuple (stop at the first).
        calibration: ``"auto"``; for the matrix belief ``"rayleigh"`` (scale of
            the unexplored space from Rayleigh quotients, Wenger & Hennig
            2020) or ``"none"``; for the solution belief ``"empirical_bayes"``
            (Cockayne et al. 2019) or ``"none"``; or a fixed positive scale.
        noise_std: ``eps`` of noisy matrix-vector products ``(A + E) s`` with
            ``E ~ N(0, eps^2 W ⊗_s W)`` (matrix belief only); ``None`` for exact
            products.
        key: PRNG key for ``policy="random"``.
        throw: raise on an indefinite matrix or non-finite iterates.

    Returns:
        A :class:`LinearSolveResult`; with ``belief="matrix"`` also
        ``matrix_belief`` and ``inverse_belief`` (:class:`SymmetricKroneckerNormal`).

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import linalg
        >>> A = jnp.array([[4.0, 1.0], [1.0, 3.0]])
        >>> res = linalg.problinsolve(A, jnp.array([1.0, 2.0]))
        >>> bool(jnp.allclose(A @ res.mean, jnp.array([1.0, 2.0]), atol=1e-5))
        True
        >>> Hb, _ = res.inverse_belief.vector_belief(jnp.array([1.0, 2.0]))
        >>> bool(jnp.allclose(Hb, res.mean, atol=1e-5))
        True
    """
    _checks.check_choice("belief", belief, ("matrix", "solution"))
    _checks.check_choice("policy", policy, ("cg", "random"))
    b = _checks.as_rhs(b)
    matvec = _checks.as_matvec(A, b)
    n = b.shape[0]
    dtype = b.dtype
    maxiter = _checks.check_maxiter(maxiter, min(n, 500))
    atol = _checks.check_tolerance("atol", atol, dtype)
    rtol = _checks.check_tolerance("rtol", rtol, dtype)
    stopping = _as_stopping(stopping)
    calibration = _as_calibration(calibration, belief)
    prior = _checks.as_prior_operator(prior_inverse, b, "prior_inverse")
    if noise_std is not None:
        if belief != "matrix":
            raise ValueError("noise_std is supported for belief='matrix' only.")
        noise_std = _checks.check_tolerance("noise_std", noise_std, dtype)
    noise_var = None if noise_std is None else noise_std**2
    if policy == "random" and key is None:
        raise ValueError("policy='random' needs an explicit PRNG key: pass key=jax.random.key(...).")
    x0 = _checks.as_initial_guess(x0, b)
    return _problinsolve(
        A, b, belief, policy, x0, prior, maxiter, atol, rtol, stopping, calibration, noise_var, key, throw
    )


@eqx.filter_jit
def _problinsolve(A, b, belief, policy, x0, prior, maxiter, atol, rtol, stopping, calibration, noise_var, key, throw):
    matvec = _checks.as_matvec(A, b)
    n = b.shape[0]
    dtype = b.dtype
    permutation = jax.random.permutation(key, n) if policy == "random" else None

    def solve(mv, rhs):
        tol2 = jnp.maximum(atol, rtol * jnp.linalg.norm(rhs)) ** 2
        args = (mv, rhs, x0, prior, policy, permutation, tol2, maxiter, stopping, calibration)
        if belief == "matrix":
            return matrix_based_solve(*args, noise_var)
        return solution_based_solve(*args)

    mean, aux = jax.lax.custom_linear_solve(matvec, b, solve, symmetric=True, has_aux=True)
    if belief == "matrix":
        posterior = matrix_posterior(aux, prior, noise_var)
        solution = finalize(
            mean, posterior.solution_cov(), matvec, b, aux["count"], aux["converged"], aux["status"],
            matrix_posterior=posterior,
        )
    else:
        columns, mask, scale, count, converged, status = aux
        identity = lx.IdentityLinearOperator(jax.ShapeDtypeStruct((n,), dtype))
        cov = PriorPlusLowRank(identity if prior is None else prior, scale, columns, -scale * mask)
        solution = finalize(mean, cov, matvec, b, count, converged, status)
    return raise_if_failed(solution) if throw else solution
