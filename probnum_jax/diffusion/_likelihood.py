"""Log-likelihoods of a score model by the instantaneous change of variables along the probability-flow ODE."""

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .. import ode
from ..ode import RESULTS
from . import _checks
from ._sample import diffrax_nfe
from ._sde import AbstractSDE


class LikelihoodInfo(eqx.Module):
    """Diagnostics of :func:`log_likelihood`, one entry per data point.

    Attributes:
        std: the numerical standard deviation of ``log p`` from the
            probabilistic ODE solver; ``None`` for a diffrax solver.
        mc_std: the Monte-Carlo standard error of the Hutchinson trace
            estimate (the spread over probes over ``sqrt(num_probes)``);
            zero for ``trace="exact"``, ``None`` with a single probe.
        nfe: vector-field evaluations per data point (all probes; each costs
            one score evaluation plus one Jacobian-vector product, or ``d`` of
            them for the exact trace).
        result: per-point :class:`probnum_jax.ode.RESULTS` (worst over probes).
    """

    std: Float[Array, " n"] | None
    mc_std: Float[Array, " n"] | None
    nfe: Int[Array, " n"]
    result: RESULTS


def log_likelihood(
    score_fn,
    sde: AbstractSDE,
    x,
    *,
    key,
    solver=None,
    trace: str = "hutchinson",
    num_probes: int = 4,
    atol=1e-5,
    rtol=1e-5,
    max_steps: int = 4096,
    throw: bool = True,
):
    """The log-density ``log p_{t_min}(x)`` of the probability-flow ODE's model at data points ``x``.

    Along the probability-flow ODE ``dx/dt = F(t, x)`` the log-density obeys
    ``d log p_t(x_t) / dt = -div F(t, x_t)`` (Chen et al. 2018; Song et al.
    2021, App. D.2), so

        ``log p_{t_min}(x) = log p_prior(x(t_max)) + int_{t_min}^{t_max} div F(t, x(t)) dt``,

    solved forwards from ``x(t_min) = x`` as one augmented ODE. The divergence
    is the exact trace of the Jacobian (``trace="exact"``, ``d`` Jacobian-vector
    products, for low dimension) or Hutchinson's estimate ``v^T (dF/dx) v``
    with a Rademacher probe ``v`` held fixed along the path (Grathwohl et al.
    2019), averaged over ``num_probes`` probes.

    With a probabilistic ODE solver the numerical uncertainty is reported
    separately from the Monte-Carlo spread: ``info.std`` propagates the
    filter's posterior std at ``t_max`` of the end point (through the gradient
    of the prior log-density) and of the accumulated divergence, treating the
    coordinates as independent (exact for the isotropic and block-diagonal
    factorisations, which model no cross-covariances). The probes share the
    path, so their numerical errors are correlated; ``info.std`` is the mean
    of the per-probe stds, not reduced by averaging.

    Arguments:
        score_fn: ``score_fn(x, t)`` for one sample, as for :func:`sample`.
        sde: the forward SDE.
        x: data points ``[n, *shape]``.
        key: a JAX random key (the probes).
        solver: an ``ode.EK0``/``ode.EK1`` (default ``ode.EK0(num_derivatives=2,
            factorisation="blockdiag")``) or a diffrax explicit Runge-Kutta solver.
        trace: ``"hutchinson"`` or ``"exact"``.
        num_probes: Rademacher probes per point (Hutchinson only).
        atol, rtol: the ODE solver's tolerances.
        max_steps: the ODE solver's step budget.
        throw: raise if a solve failed instead of reporting it in ``info.result``.

    Returns:
        ``(logp, info)``: log-densities ``[n]`` and a :class:`LikelihoodInfo`.
        See :func:`bits_per_dim` for image data.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax import diffusion, problems
        >>> gmm, sde = problems.gmm_ring(4), diffusion.VPSDE()
        >>> x = gmm.sample(jax.random.key(0), 3)
        >>> logp, info = diffusion.log_likelihood(gmm.score_fn(sde), sde, x, key=jax.random.key(1),
        ...                                       trace="exact", atol=1e-6, rtol=1e-6)
        >>> exact = jax.vmap(gmm.diffuse(sde, sde.t_min).log_prob)(x)
        >>> bool(jnp.all(jnp.abs(logp - exact) < 1e-2))
        True
    """
    _checks.check_sde(sde)
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must be a batch of data points [n, *shape], got shape {x.shape}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    _checks.check_score_fn(score_fn, x.shape[1:], x.dtype)
    if trace not in ("hutchinson", "exact"):
        raise ValueError(f"trace must be 'hutchinson' or 'exact', got {trace!r}.")
    _checks.check_count("num_probes", num_probes)
    _checks.check_positive("atol", atol)
    _checks.check_positive("rtol", rtol)
    _checks.check_count("max_steps", max_steps)
    solver = ode.EK0(num_derivatives=2, factorisation="blockdiag") if solver is None else solver
    if not isinstance(solver, (ode.AbstractSolver, diffrax.AbstractERK)):
        raise TypeError(
            "solver must be an ode.EK0/EK1 or a diffrax explicit Runge-Kutta solver, "
            f"got {type(solver).__name__}."
        )
    if trace == "exact":
        num_probes = 1
    probes = jax.random.rademacher(key, (x.shape[0], num_probes, math.prod(x.shape[1:])), x.dtype)
    logp, std, nfe, result = _log_likelihood(
        score_fn, sde, solver, trace, x, probes, jnp.asarray(atol, x.dtype),
        jnp.asarray(rtol, x.dtype), max_steps,
    )
    if trace == "exact":
        mc_std = jnp.zeros(x.shape[0], x.dtype)
    elif num_probes == 1:
        mc_std = None
    else:
        mc_std = jnp.std(logp, axis=1, ddof=1) / math.sqrt(num_probes)
    info = LikelihoodInfo(
        std=None if std is None else jnp.mean(std, axis=1), mc_std=mc_std,
        nfe=jnp.sum(nfe, axis=1), result=result,
    )
    logp = jnp.mean(logp, axis=1)
    if throw:
        logp = result.error_if(logp, result != RESULTS.successful)
    return logp, info


@eqx.filter_jit
def _log_likelihood(score_fn, sde, solver, trace, x, probes, atol, rtol, max_steps):
    shape = x.shape[1:]
    flow = sde.probability_flow(score_fn)

    def augmented(t, z, probe):
        y = z[:-1]
        f = lambda y: flow(t, y.reshape(shape), None).reshape(-1)  # noqa: E731
        if trace == "exact":
            fy, jac = jax.linearize(f, y)
            div = jnp.trace(jax.vmap(jac, out_axes=1)(jnp.eye(y.shape[0], dtype=y.dtype)))
        else:
            fy, jv = jax.jvp(f, (y,), (probe,))
            div = jnp.dot(probe, jv)
        return jnp.concatenate([fy, div[None]])

    def one(x_point, probe):
        z0 = jnp.concatenate([x_point.reshape(-1), jnp.zeros(1, x_point.dtype)])
        if isinstance(solver, ode.AbstractSolver):
            sol = ode.solve(augmented, z0, t0=sde.t_min, t1=sde.t_max, solver=solver, args=probe,
                            atol=atol, rtol=rtol, max_steps=max_steps, throw=False)
            z_end, z_std = sol.mean[-1], sol.std[-1]
            nfe, result = sol.num_f_evals, sol.result
        else:
            sol = diffrax.diffeqsolve(
                diffrax.ODETerm(augmented), solver, t0=sde.t_min, t1=sde.t_max, dt0=None, y0=z0,
                args=probe, stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
                max_steps=max_steps, throw=False,
            )
            z_end, z_std = sol.ys[-1], None
            steps = sol.stats["num_steps"]
            nfe = jnp.asarray(diffrax_nfe(solver, steps), jnp.int32)
            result = RESULTS.where(
                sol.result == diffrax.RESULTS.successful, RESULTS.successful,
                RESULTS.where(steps >= max_steps, RESULTS.max_steps_reached, RESULTS.nonfinite),
            )
        x_end = z_end[:-1]
        prior_logp, prior_grad = jax.value_and_grad(
            lambda y: sde.prior_log_prob(y.reshape(shape))
        )(x_end)
        logp = prior_logp + z_end[-1]
        result = RESULTS.where(jnp.isfinite(logp), result, RESULTS.nonfinite)
        std = None if z_std is None else jnp.sqrt(jnp.sum((prior_grad * z_std[:-1]) ** 2) + z_std[-1] ** 2)
        return logp, std, nfe, result

    def point(x_point, probes):
        logp, std, nfe, result = jax.vmap(one, in_axes=(None, 0))(x_point, probes)
        first_failure = jnp.argmax(result._value != RESULTS.successful._value)
        return logp, std, nfe, jax.tree.map(lambda v: v[first_failure], result)

    return jax.vmap(point)(x, probes)


def bits_per_dim(log_likelihood, num_dims: int, *, bin_width: float | None = None):
    """Negative log-likelihood in bits per dimension, ``-log p / (d ln 2)``.

    For discrete data (images with ``L`` intensity levels) scaled to an interval
    of width ``W``, pass ``bin_width = W / L``: a density ``p`` on the
    dequantised data gives each bin the probability ``~ p * bin_width^d``, so the
    bits per dimension of the discrete data are ``-(log p + d ln(bin_width)) / (d ln 2)``
    (Theis, van den Oord & Bethge 2016). For 8-bit images in ``[-1, 1]``,
    ``bin_width = 2 / 256`` adds 7 bits.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import diffusion
        >>> float(diffusion.bits_per_dim(jnp.asarray(-64 * jnp.log(2.0)), 64))
        1.0
    """
    _checks.check_count("num_dims", num_dims)
    if bin_width is not None:
        _checks.check_positive("bin_width", bin_width)
    log_bin = 0.0 if bin_width is None else num_dims * math.log(bin_width)
    return -(jnp.asarray(log_likelihood) + log_bin) / (num_dims * math.log(2.0))
