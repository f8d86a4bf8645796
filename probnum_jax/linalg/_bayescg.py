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


def cg_step(matvec, state: CGState, precond=None) -> tuple[CGState, Array]:
    """One CG step; returns the new state and the step ``alpha p``.

    A direction with ``p^T A p <= 0`` (or a non-finite value) takes no step
    (``alpha = 0``): the iterate stays, the failure goes into ``status`` and
    the caller's loop stops. Only scalars are masked, so a step costs what a
    plain CG step costs.
    """
    Ap = matvec(state.p)
    pAp = jnp.dot(state.p, Ap)
    healthy = (state.status == OK) & (state.rz > 0)
    good = healthy & (pAp > 0) & jnp.isfinite(pAp)
    alpha = jnp.where(good, state.rz / jnp.where(good, pAp, 1.0), 0.0)
    step = alpha * state.p
    r = state.r - alpha * Ap
    z = _apply(precond, r)
    rz = jnp.dot(r, z)
    rr = rz if precond is None else jnp.dot(r, r)
    p = z + (rz / jnp.where(good, state.rz, 1.0)) * state.p
    status = state.status
    status = jnp.where(healthy & ~jnp.isfinite(pAp), NONFINITE, status)
    status = jnp.where(healthy & jnp.isfinite(pAp) & (pAp <= 0), INDEFINITE, status)
    finite = jnp.isfinite(rz) & jnp.isfinite(rr)
    status = jnp.where(good & ~finite, NONFINITE, status)
    status = jnp.where(good & finite & (rz <= 0) & (rr > 0), INDEFINITE, status)
    new = CGState(
        state.x + step,
        r,
        p,
        jnp.where(good, rz, state.rz),
        jnp.where(good, rr, state.rr),
        state.num_iterations + good.astype(state.num_iterations.dtype),
        status,
    )
    return new, step


class BayesCGState(eqx.Module):
    """CG state plus the post-iteration buffer.

    ``post`` is ``-1`` during the main iterations and counts post-iterations
    afterwards; ``steps[j]`` holds the step ``alpha p`` of post-iteration ``j``
    (the extra last row takes the main-phase steps, so every step is one
    unconditional row write).
    """

    cg: CGState
    steps: Float[Array, "d n"]
    post: Int[Array, ""]
    stopped_at: Int[Array, ""]
    converged: Array


def bayescg_solve(matvec, b, x0, precond, atol, rtol, maxiter, num_post_iterations):
    """Mean (the CG iterate) and auxiliary outputs of BayesCG; the inner solve of ``bayescg``.

    One ``while_loop`` runs the main iterations until the tolerance or
    ``maxiter``, then ``num_post_iterations`` more whose steps form the
    posterior factor. The iterate then sits ``sum(steps)`` past ``x_m``, so
    ``x_m`` is recovered without storing it during the loop.
    """
    tol2 = jnp.maximum(atol, rtol * jnp.linalg.norm(b)) ** 2
    d = num_post_iterations
    cg = cg_init(matvec, b, x0, precond)
    steps = jnp.zeros((d + 1, b.shape[0]), b.dtype)
    init = BayesCGState(cg, steps, jnp.asarray(-1), jnp.asarray(0), jnp.asarray(False))

    def cond(s):
        return (s.cg.status == OK) & (s.cg.rz > 0) & (s.post < d)

    def body(s):
        done = (s.cg.rr <= tol2) | (s.cg.num_iterations >= maxiter)
        enter = (s.post < 0) & done
        post = jnp.where(enter, 0, s.post)
        stopped_at = jnp.where(enter, s.cg.num_iterations, s.stopped_at)
        converged = jnp.where(enter, s.cg.rr <= tol2, s.converged)
        cg, step = cg_step(matvec, s.cg, precond)
        index = jnp.where(post >= 0, post, d)
        steps = jax.lax.dynamic_update_slice_in_dim(s.steps, step[None], index, 0)
        post = jnp.where(post >= 0, post + 1, post)
        return BayesCGState(cg, steps, post, stopped_at, converged)

    final = jax.lax.while_loop(cond, body, init)
    in_main = final.post < 0  # stopped before the post-iterations: exact convergence or failure
    num_iterations = jnp.where(in_main, final.cg.num_iterations, final.stopped_at)
    converged = jnp.where(in_main, final.cg.rr <= tol2, final.converged)
    steps = final.steps[:d]
    mean = final.cg.x - jnp.sum(steps, axis=0)
    aux = (steps.T, num_iterations, converged, final.cg.status)
    return mean, aux


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
        maxiter: the maximum number of CG iterations (default ``10 n``); an
            int or an integer scalar array (it may be traced, e.g. ``vmap``-ed
            over iteration budgets).
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
    maxiter = _checks.check_iteration_limit(maxiter, 10 * n)
    num_post_iterations = _checks.check_maxiter(num_post_iterations, 5, "num_post_iterations")
    atol = _checks.check_tolerance("atol", atol, b.dtype)
    rtol = _checks.check_tolerance("rtol", rtol, b.dtype)
    precond = _checks.as_prior_operator(preconditioner, b, "preconditioner")
    # maxiter only enters the loop condition: traced, so changing it does not recompile.
    return _bayescg(A, b, x0, precond, atol, rtol, maxiter, num_post_iterations, throw)


@eqx.filter_jit
def _bayescg(A, b, x0, precond, atol, rtol, maxiter, num_post_iterations, throw):
    matvec = _checks.as_matvec(A, b)
    precond_mv = None if precond is None else precond.mv

    def solve(mv, rhs):
        return bayescg_solve(mv, rhs, x0, precond_mv, atol, rtol, maxiter, num_post_iterations)

    mean, (factor, num_iterations, converged, status) = jax.lax.custom_linear_solve(
        matvec, b, solve, symmetric=True, has_aux=True
    )
    cov = PriorPlusLowRank(None, jnp.zeros((), b.dtype), factor, jnp.ones(factor.shape[1], b.dtype))
    solution = finalize(mean, cov, matvec, b, num_iterations, converged, status)
    return raise_if_failed(solution) if throw else solution
