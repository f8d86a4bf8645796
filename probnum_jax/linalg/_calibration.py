"""Uncertainty calibration (Rayleigh quotients, empirical Bayes) and calibration statistics.

Rayleigh calibration follows Wenger & Hennig (2020, Sec. 3.3): the prior
covariance of ``A^{-1}`` on the unexplored space is ``psi * I`` with ``psi``
set from the (inverse) Rayleigh quotients observed along the search
directions, extrapolated with the model ``log q_i = theta_0 + theta_1 log i``
(the power-law spectral decay of kernel matrices that motivates their GP mean
function, fitted here by least squares) to the ``n - k`` unexplored
dimensions, and clipped to the range observed so far.

The Z- and S-statistics test calibration against a known solution ``x_*``
(Cockayne et al. 2022; Reid et al. 2023): for a calibrated Gaussian belief
``N(mu, Sigma)``, ``Z = (x_* - mu)^T Sigma^+ (x_* - mu)`` is chi-squared with
``rank(Sigma)`` degrees of freedom and ``S = ||x_* - mu||_A^2`` is distributed
like ``||X - mu||_A^2`` for ``X ~ N(mu, Sigma)`` (mean ``trace(A Sigma)``).

References:
    J. Wenger, P. Hennig. Probabilistic linear solvers for machine learning.
    NeurIPS 2020.
    J. Cockayne, M. M. Graham, C. J. Oates, T. J. Sullivan, O. Teymur. Testing
    whether a learning procedure is calibrated. JMLR 23, 2022.
    T. W. Reid, I. C. F. Ipsen, J. Cockayne, C. J. Oates. Statistical properties
    of BayesCG under the Krylov prior. Numer. Math. 155, 2023.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from . import _checks
from ._results import LinearSolveResult


def extrapolated_rayleigh_scale(log_q: Float[Array, " K"], count, n: int) -> Float[Array, ""]:
    """``exp`` of the mean predicted log-quotient over the unexplored dimensions ``count..n-1``.

    ``log_q[:count]`` are the observed log (inverse) Rayleigh quotients. With
    fewer than three observations the most recent one is used; the prediction
    is clipped to the observed range.
    """
    size = log_q.shape[0]
    index = jnp.arange(size)
    mask = index < count
    w = mask.astype(log_q.dtype)
    num = jnp.maximum(jnp.sum(w), 1.0)
    t = jnp.log(index + 1.0).astype(log_q.dtype)
    y = jnp.where(mask, log_q, 0.0)
    t_mean = jnp.sum(w * t) / num
    y_mean = jnp.sum(w * y) / num
    var = jnp.sum(w * (t - t_mean) ** 2)
    slope = jnp.where((count >= 3) & (var > 0), jnp.sum(w * (t - t_mean) * (y - y_mean)) / jnp.where(var > 0, var, 1.0), 0.0)
    c = jnp.asarray(count, log_q.dtype)
    remaining = jnp.maximum(n - c, 1.0)
    # mean of log(j + 1) over the unexplored j = count, ..., n - 1
    t_future = jnp.where(
        c < n, (jax.scipy.special.gammaln(n + 1.0) - jax.scipy.special.gammaln(c + 1.0)) / remaining, jnp.log(n * 1.0)
    )
    last = log_q[jnp.clip(count - 1, 0, size - 1)]
    pred = jnp.where(count >= 3, y_mean + slope * (t_future - t_mean), last)
    lo = jnp.min(jnp.where(mask, log_q, jnp.inf))
    hi = jnp.max(jnp.where(mask, log_q, -jnp.inf))
    pred = jnp.clip(pred, lo, hi)
    return jnp.where(count > 0, jnp.exp(pred), 1.0)


class CalibrationStatistics(eqx.Module):
    """Z- and S-statistics of a belief ``N(mu, Sigma)`` against the true solution.

    Attributes:
        z: ``(x_* - mu)^T Sigma^+ (x_* - mu)``.
        z_mean, z_std: its mean (``rank(Sigma)``) and standard deviation
            (``sqrt(2 rank)``) under calibration (chi-squared).
        s: ``||x_* - mu||_A^2``.
        s_mean, s_std: mean (``trace(A Sigma)``) and standard deviation of
            ``||X - mu||_A^2`` for ``X ~ N(mu, Sigma)``.
        rms_error_over_std: ``RMS(x_* - mu) / RMS(std)``; 1 when the marginal
            scales match.
    """

    z: Float[Array, ""]
    z_mean: Float[Array, ""]
    z_std: Float[Array, ""]
    s: Float[Array, ""]
    s_mean: Float[Array, ""]
    s_std: Float[Array, ""]
    rms_error_over_std: Float[Array, ""]


def _square_root(cov):
    if cov.prior is None and cov.middle.ndim == 1:
        return cov.factor * jnp.sqrt(jnp.maximum(cov.middle, 0.0))
    evals, evecs = jnp.linalg.eigh(cov.as_matrix())
    return evecs * jnp.sqrt(jnp.maximum(evals, 0.0))


def calibration_statistics(result: LinearSolveResult, A, x_true) -> CalibrationStatistics:
    """Z- and S-statistics of a solver's belief against the true solution ``x_true``.

    For a low-rank covariance without prior term (``bayescg``) the cost is
    ``O(n d^2)`` plus ``d`` matvecs; otherwise the covariance is formed and
    factorised densely (``O(n^3)``), which suits test-sized problems.

    Arguments:
        result: a :class:`LinearSolveResult`.
        A: the system matrix (array, matvec or lineax operator).
        x_true: the true solution ``[n]``.

    Returns:
        A :class:`CalibrationStatistics`.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import linalg
        >>> A = jnp.diag(jnp.arange(1.0, 11.0))
        >>> x = jnp.ones(10)
        >>> res = linalg.bayescg(A, A @ x, maxiter=3, num_post_iterations=2)
        >>> stats = linalg.calibration_statistics(res, A, x)
        >>> float(stats.z_mean)
        2.0
    """
    x_true = _checks.as_rhs(x_true)
    if x_true.shape != result.mean.shape:
        raise ValueError(f"x_true must have the shape of the solution {result.mean.shape}, got {x_true.shape}.")
    matvec = _checks.as_matvec(A, x_true)
    root = _square_root(result.cov)
    error = x_true - result.mean
    u, sv, _ = jnp.linalg.svd(root, full_matrices=False)
    eps = jnp.finfo(root.dtype).eps
    keep = sv**2 > jnp.max(sv) ** 2 * max(root.shape) * eps * 10
    coeff = jnp.where(keep, (u.T @ error) / jnp.where(keep, sv, 1.0), 0.0)
    rank = jnp.sum(keep).astype(root.dtype)
    a_root = jax.vmap(matvec, in_axes=1, out_axes=1)(root)
    gram = root.T @ a_root
    std = result.std
    return CalibrationStatistics(
        z=jnp.sum(coeff**2),
        z_mean=rank,
        z_std=jnp.sqrt(2 * rank),
        s=jnp.dot(error, matvec(error)),
        s_mean=jnp.trace(gram),
        s_std=jnp.sqrt(2 * jnp.sum(gram**2)),
        rms_error_over_std=jnp.sqrt(jnp.mean(error**2)) / jnp.sqrt(jnp.mean(std**2)),
    )
