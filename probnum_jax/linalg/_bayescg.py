"""BayesCG under the Krylov prior, with post-iterations for a low-rank posterior covariance.

With the inverse prior ``x ~ N(x0, A^{-1})`` the BayesCG posterior mean is the
conjugate-gradient iterate (Cockayne et al. 2019, Sec. 4.1). Its covariance
``A^{-1} - S (S^T A S)^{-1} S^T`` needs ``A^{-1}``; the *Krylov prior* of Reid
et al. (2023) replaces it by a prior on the Krylov space of the problem, under
which the posterior after ``m`` iterations is ``sum_{i>m} phi_i v_i v_i^T``
with the ``A``-orthonormal directions ``v_i = p_i / ||p_i||_A`` and
``phi_i = alpha_i r_i^T z_i``. Truncating after ``d`` post-iterations gives the
rank-``d`` approximate Krylov posterior, and since ``phi_i v_i v_i^T =
(alpha_i p_i)(alpha_i p_i)^T`` its square-root factor is simply the next ``d``
CG steps ``U = [alpha_{m+1} p_{m+1}, ..., alpha_{m+d} p_{m+d}]``:
``x_* - x_m = sum_{i>m} alpha_i p_i`` exactly, and the posterior keeps its
leading ``d`` terms. ``trace(A U U^T) = sum phi_i`` is the Hestenes–Stiefel
estimate of ``||x_* - x_m||_A^2`` with delay ``d`` (Strakoš & Tichý 2002).

References:
    J. Cockayne, C. J. Oates, I. C. F. Ipsen, M. Girolami. A Bayesian conjugate
    gradient method. Bayesian Analysis 14(3), 2019.
    T. W. Reid, I. C. F. Ipsen, J. Cockayne, C. J. Oates. BayesCG as an
    uncertainty aware version of CG. arXiv:2008.03225, 2023; and Statistical
    properties of BayesCG under the Krylov prior. Numer. Math. 155, 2023.
    Z. Strakoš, P. Tichý. On error estimation in the conjugate gradient method
    and why it works in finite precision computations. ETNA 13, 2002.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from . import _checks
from ._operators import PriorPlusLowRank
from ._results import INDEFINITE, NONFINITE, OK, LinearSolveResult, finalize, raise_if_failed


class CGState(eqx.Module):
    """State of a (preconditioned) conjugate-gradient iteration.

    ``z = M r`` is the preconditioned residual and ``rz = r^T z``; ``status``
    is 0 while healthy, 1 after an indefinite direction, 2 after NaN/inf.
    """

    x: Float[Array, " n"]
    r: Float[Array, " n"]
    p: Float[Array, " n"]
    rz: Float[Array, ""]
    rr: Float[Array, ""]
    num_iterations: Int[Array, ""]
    status: Int[Array, ""]


def _apply(precond, r):
    return r if precond is None else precond(r)


def cg_init(matvec, b, x0, precond=None) -> CGState:
    """Start CG from ``x0``: ``r0 = b - A x0``, ``p0 = M r0``."""
    r = b - matvec(x0)
    z = _apply(precond, r)
    rz = jnp.dot(r, z)
    rr = rz if precond is None else jnp.dot(r, r)
    status = jnp.where(jnp.isfinite(rz) & jnp.isfinite(rr), OK, NONFINITE)
    status = jnp.where((status == OK) & (rz <= 0) & (rr > 0), INDEFINITE, status)
    return CGState(x0, r, z, rz, rr, jnp.asarray(0), status)


def cg_step(matvec, state: CGState, precond=None) -> tuple[CGState, Array, Array]:
    """One CG step. Returns the new state, the step ``alpha p`` and ``phi = alpha r^T z``.

    A direction with ``p^T A p <= 0`` (or a non-finite value) takes no step:
    the state keeps its iterate and records the failure in ``status``.
    """
    Ap = matvec(state.p)
    pAp = jnp.dot(state.p, Ap)
    healthy = (state.status == OK) & (state.rz > 0)
    good = healthy & (pAp > 0) & jnp.isfinite(pAp)
    alpha = jnp.where(good, state.rz / jnp.where(good, pAp, 1.0), 0.0)
    step = alpha * state.p
    x = state.x + step
    r = jnp.where(good, state.r - alpha * Ap, state.r)
    z = _apply(precond, r)
    rz = jnp.dot(r, z)
    rr = rz if precond is None else jnp.dot(r, r)
    beta = rz / jnp.where(good, state.rz, 1.0)
    p = jnp.where(good, z + beta * state.p, state.p)
    status = state.status
    status = jnp.where(healthy & ~jnp.isfinite(pAp), NONFINITE, status)
    status = jnp.where(healthy & jnp.isfinite(pAp) & (pAp <= 0), INDEFINITE, status)
    finite = jnp.isfinite(rz) & jnp.isfinite(rr)
    status = jnp.where(good & ~finite, NONFINITE, status)
    status = jnp.where(good & finite & (rz <= 0) & (rr > 0), INDEFINITE, status)
    new = CGState(
        x,
        r,
        p,
        jnp.where(good, rz, state.rz),
        jnp.where(good, rr, state.rr),
        state.num_iterations + good.astype(state.num_iterations.dtype),
        status,
    )
    return new, step, alpha * jnp.where(good, state.rz, 0.0)


def cg_loop(matvec, state: CGState, tol2, maxiter: int, precond=None) -> CGState:
    """Run CG until ``||r||^2 <= tol2``, ``maxiter`` iterations, exact convergence or a failure."""

    def cond(s):
        return (s.rr > tol2) & (s.num_iterations < maxiter) & (s.status == OK) & (s.rz > 0)

    return jax.lax.while_loop(cond, lambda s: cg_step(matvec, s, precond)[0], state)


def krylov_posterior_factor(matvec, state: CGState, num_post_iterations: int, precond=None):
    """Run ``d`` post-iterations from ``state``; return ``U`` ``[n, d]``, ``phi`` ``[d]``, status.

    Once the residual vanishes (exact convergence) further columns are zero.
    """

    def body(s, _):
        new, step, phi = cg_step(matvec, s, precond)
        return new, (step, phi)

    final, (steps, phis) = jax.lax.scan(body, state, None, length=num_post_iterations)
    return steps.T, phis, final.status


def bayescg_solve(matvec, b, x0, precond, atol, rtol, maxiter, num_post_iterations):
    """Mean (CG iterate) and auxiliary outputs of BayesCG; the inner solve of ``bayescg``."""
    tol2 = jnp.maximum(atol, rtol * jnp.linalg.norm(b)) ** 2
    state = cg_loop(matvec, cg_init(matvec, b, x0, precond), tol2, maxiter, precond)
    converged = state.rr <= tol2
    factor, phi, post_status = krylov_posterior_factor(matvec, state, num_post_iterations, precond)
    status = jnp.where(state.status == OK, post_status, state.status)
    aux = (factor, phi, state.num_iterations, converged, status)
    return state.x, aux


def bayescg(
    A,
    b,
    *,
    x0=None,
    maxiter: int | None = None,
    atol=1e-6,
    rtol=1e-6,
    num_post_iterations: int = 5,
    preconditioner=None,
    throw: bool = True,
) -> LinearSolveResult:
    """Solve ``A x = b`` for symmetric positive-definite ``A`` with the Bayesian CG method.

    Returns a Gaussian belief ``N(x_m, U U^T)``: the mean is the (preconditioned)
    CG iterate ``x_m`` after ``m`` iterations — BayesCG with the inverse prior
    ``Σ0 = A^{-1}`` (Cockayne et al. 2019) — and the covariance is the rank-``d``
    approximate Krylov posterior of Reid et al. (2023), built from ``d``
    post-iterations: its factor ``U`` holds the next ``d`` CG steps
    ``alpha_i p_i``, whose sum is the error ``x_* - x_m`` up to the truncated
    tail. It describes the error well in the ``A``-norm (the S-statistic of
    :func:`calibration_statistics` is near its mean) and is overconfident in
    directions outside its ``d``-dimensional range.

    The mean is differentiable in ``b`` and in ``A``'s parameters by implicit
    differentiation (``jax.lax.custom_linear_solve``: one more BayesCG solve of
    the adjoint system), never by backpropagating through the iterations.

    Arguments:
        A: a symmetric positive-definite ``[n, n]`` array, a matvec
            ``v -> A v``, a ``jax.experimental.sparse`` matrix or a ``lineax``
            operator.
        b: the right-hand side ``[n]``; ``jax.vmap`` for several.
        x0: the initial guess (default zeros).
        maxiter: the maximum number of CG iterations (default ``10 n``).
        atol, rtol: stop when ``||b - A x_m|| <= max(atol, rtol ||b||)``
            (the recursively updated residual, as in SciPy and JAX).
        num_post_iterations: ``d``, the rank of the posterior covariance;
            costs ``d`` extra matvecs.
        preconditioner: an approximation of ``A^{-1}`` (array, matvec or
            lineax operator), symmetric positive definite.
        throw: raise if ``A`` (or the preconditioner) turns out indefinite or
            an iterate is non-finite, instead of reporting it in ``result``.

    Returns:
        A :class:`LinearSolveResult`. ``converged`` is ``False`` when
        ``maxiter`` ran out (not an error: ``cov`` describes the remaining
        error).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax import linalg
        >>> A = jnp.array([[4.0, 1.0], [1.0, 3.0]])
        >>> res = linalg.bayescg(A, jnp.array([1.0, 2.0]), rtol=1e-8)
        >>> bool(jnp.allclose(A @ res.mean, jnp.array([1.0, 2.0]), atol=1e-6))
        True
    """
    b = _checks.as_rhs(b)
    _checks.as_matvec(A, b)
    x0 = _checks.as_initial_guess(x0, b)
    n = b.shape[0]
    maxiter = _checks.check_maxiter(maxiter, 10 * n)
    num_post_iterations = _checks.check_maxiter(num_post_iterations, 5, "num_post_iterations")
    atol = _checks.check_tolerance("atol", atol, b.dtype)
    rtol = _checks.check_tolerance("rtol", rtol, b.dtype)
    precond = _checks.as_prior_operator(preconditioner, b, "preconditioner")
    return _bayescg(A, b, x0, precond, atol, rtol, maxiter, num_post_iterations, throw)


@eqx.filter_jit
def _bayescg(A, b, x0, precond, atol, rtol, maxiter, num_post_iterations, throw):
    matvec = _checks.as_matvec(A, b)
    precond_mv = None if precond is None else precond.mv

    def solve(mv, rhs):
        return bayescg_solve(mv, rhs, x0, precond_mv, atol, rtol, maxiter, num_post_iterations)

    mean, (factor, _, num_iterations, converged, status) = jax.lax.custom_linear_solve(
        matvec, b, solve, symmetric=True, has_aux=True
    )
    cov = PriorPlusLowRank(None, jnp.zeros((), b.dtype), factor, jnp.ones(factor.shape[1], b.dtype))
    solution = finalize(mean, cov, matvec, b, num_iterations, converged, status)
    return raise_if_failed(solution) if throw else solution
