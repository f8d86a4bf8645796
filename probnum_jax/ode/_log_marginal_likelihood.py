"""The log marginal likelihood of noisy observations of an ODE solution, for parameter inference."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .. import randvars
from . import _checks
from ._factorisations import BlockDiagFactorisation, DenseFactorisation, IsotropicFactorisation
from ._solvers import EK1, AbstractSolver
from ._step import StepContext, attempt_step, linearise_and_predict
from ._taylor import taylor_coefficients


def log_marginal_likelihood(
    vector_field,
    y0: Float[ArrayLike, " d"],
    t_data: Float[ArrayLike, " K"],
    y_data: Float[ArrayLike, "K d"],
    obs_std: Float[ArrayLike, ""],
    *,
    solver: AbstractSolver | None = None,
    args=None,
    t0: Float[ArrayLike, ""] | None = None,
    num_steps_between: int = 4,
) -> Float[Array, ""]:
    """Log marginal likelihood ``log p(y_data | theta)`` of noisy data under the ODE filter.

    The model is ``y_data[k] ~ N(y(t_data[k]), obs_std^2 I)`` with ``y`` the
    solution of ``y' = f(t, y, args)``, ``y(t0) = y0``. The unknown solution is
    replaced by the probabilistic solver's Gaussian belief: a fixed-grid ODE
    filter runs from ``t0`` through every data time, taking
    ``num_steps_between`` equal steps between consecutive data times. At each
    data time the predicted state is conditioned on ``y_data[k]`` (observation
    noise ``obs_std^2``) before the usual ODE update, and the log-density of the
    data under the predicted Gaussian is accumulated: the filter's
    prediction-error decomposition ``sum_k log p(y_data[k] | y_data[:k], ODE)``
    (Kersting, Krämer, Schiegg, Daniel, Tiemann & Hennig 2020, "Differentiable
    likelihoods for fast inversion of 'likelihood-free' dynamical systems";
    Tronarp, Bosch & Hennig 2022, "Fenrir: physics-enhanced regression for
    initial value problems"). The solver's own uncertainty widens the predictive
    distribution of the data, which smooths the likelihood in the parameters;
    as the steps shrink it tends to the Gaussian log-density of the data around
    the exact solution.

    All updates are in square-root form. The function is a ``lax.scan`` and is
    differentiable (reverse mode) in ``args``, ``y0`` and ``obs_std``, and
    ``jit``-compatible.

    Arguments:
        vector_field: ``f(t, y, args) -> dy/dt``.
        y0: initial value ``[d]`` at ``t0``.
        t_data: strictly increasing observation times ``[K]``, ``t_data[0] >= t0``.
        y_data: observations ``[K, d]`` of the solution at ``t_data``; finite.
        obs_std: the scalar standard deviation of the observation noise, ``> 0``.
        solver: an :class:`EK0` or :class:`EK1` (default ``EK1()``). Its
            calibration decides the prior's output scale: ``"dynamic"`` (local,
            per step), ``"mle"`` (a first pass without data estimates the global
            scale, then it is held fixed) or ``"none"`` (``solver.output_scale``).
            The strategy is ignored: the likelihood is a filtering quantity.
        args: passed to the vector field; the parameters ``theta`` to infer.
        t0: the initial time; defaults to ``t_data[0]`` (the first observation
            is then of ``y0`` itself).
        num_steps_between: solver steps between consecutive data times (and
            between ``t0`` and ``t_data[0]`` when ``t0 < t_data[0]``).

    Returns:
        The log marginal likelihood, a scalar.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import probnum_jax as pnx
        >>> f = lambda t, y, k: -k * y
        >>> t = jnp.linspace(0.0, 2.0, 5)
        >>> y = jnp.exp(-t)[:, None]
        >>> lml = lambda k: pnx.ode.log_marginal_likelihood(f, jnp.ones(1), t, y, 0.1, args=k)
        >>> bool(lml(1.0) > lml(1.3)), bool(jnp.abs(jax.grad(lml)(1.0)) < 1.0)
        (True, True)
    """
    solver = EK1() if solver is None else solver
    if not isinstance(solver, AbstractSolver):
        raise TypeError(f"solver must be an EK0 or EK1 instance, got {type(solver).__name__}.")
    if not isinstance(num_steps_between, int) or num_steps_between < 1:
        raise ValueError(f"num_steps_between must be an int >= 1, got {num_steps_between!r}.")
    y0 = _checks.as_initial_value(y0)
    dtype = y0.dtype
    t_data = jnp.asarray(t_data, dtype)
    y_data = jnp.asarray(y_data, dtype)
    obs_std = jnp.asarray(obs_std, dtype)
    if t_data.ndim != 1 or t_data.shape[0] < 1:
        raise ValueError(f"t_data must be a non-empty 1-D array of times, got shape {t_data.shape}.")
    if y_data.shape != (t_data.shape[0], y0.shape[0]):
        raise ValueError(
            f"y_data must have shape (len(t_data), d) = {(t_data.shape[0], y0.shape[0])}, "
            f"got {y_data.shape}."
        )
    if obs_std.ndim != 0:
        raise ValueError(f"obs_std must be a scalar, got shape {obs_std.shape}.")
    if _checks.is_concrete(obs_std) and not (np.isfinite(obs_std) and obs_std > 0):
        raise ValueError(f"obs_std must be finite and > 0, got {float(obs_std)}.")
    if _checks.is_concrete(t_data) and not np.all(np.diff(np.asarray(t_data)) > 0):
        raise ValueError("t_data must be strictly increasing.")
    if _checks.is_concrete(y_data) and not np.all(np.isfinite(np.asarray(y_data))):
        raise ValueError("y_data must be finite (it contains NaN or inf).")
    # Whether the first observation is of y0 itself decides the loop's structure,
    # so it must be known at trace time; a traced t0 is taken to precede t_data[0].
    if t0 is None:
        first_at_t0 = True
        t0 = t_data[0]
    else:
        t0 = jnp.asarray(t0, dtype)
        if t0.ndim != 0:
            raise ValueError(f"t0 must be a scalar, got shape {t0.shape}.")
        first_at_t0 = False
        if _checks.is_concrete((t0, t_data)):
            if float(t_data[0]) < float(t0):
                raise ValueError(
                    f"t_data must start at or after t0, got t_data[0]={float(t_data[0])} < t0={float(t0)}."
                )
            first_at_t0 = float(t_data[0]) == float(t0)
    _checks.check_vector_field(vector_field, t0, y0, args)
    lml = _log_marginal_likelihood(
        vector_field, y0, t0, t_data, y_data, obs_std, solver, args, num_steps_between, first_at_t0
    )
    # A traced obs_std <= 0 cannot raise: return NaN rather than a meaningless number.
    return jnp.where(obs_std > 0, lml, jnp.nan)


@eqx.filter_jit
def _log_marginal_likelihood(vector_field, y0, t0, t_data, y_data, obs_std, solver, args, num_steps, first_at_t0):
    dtype = y0.dtype
    if solver.calibration == "mle":
        ones = jnp.ones(solver.make_factorisation(y0.shape[0]).output_scale_shape(), dtype)
        _, mahalanobis, count = _filter(
            vector_field, y0, t0, t_data, y_data, None, solver, args, num_steps, first_at_t0, ones
        )
        dof = solver.make_factorisation(y0.shape[0]).num_residual_dof()
        output_scale = jnp.sqrt(mahalanobis / (count * dof))
    else:
        output_scale = jnp.asarray(solver.output_scale, dtype)
    lml, _, _ = _filter(
        vector_field, y0, t0, t_data, y_data, obs_std, solver, args, num_steps, first_at_t0, output_scale
    )
    return lml


def _filter(vector_field, y0, t0, t_data, y_data, obs_std, solver, args, num_steps, first_at_t0, output_scale):
    """Run the filter through all data times; ``obs_std=None`` runs it without the data.

    One ``lax.scan`` over the refined grid; a step observes its datum only if it
    ends at a data time (a mask, so that the loop has a single body, which
    halves compile time compared with nested loops). Returns the data
    log-likelihood, the summed ODE-residual Mahalanobis distances (for the
    global output-scale MLE) and the number of steps.
    """
    dim, dtype = y0.shape[0], y0.dtype
    q = solver.num_derivatives
    ctx = StepContext.build(solver, dim, dtype)
    fact = ctx.factorisation
    fixed_scale = jnp.ones(fact.output_scale_shape(), dtype) * output_scale
    rv0 = fact.from_taylor(taylor_coefficients(vector_field, t0, y0, args, q))

    if first_at_t0:  # y(t0) = y0 exactly: the first datum is N(y0, obs_std^2 I)
        starts, ends, ys = t_data[:-1], t_data[1:], y_data[1:]
        lml0 = 0.0 if obs_std is None else _isotropic_logpdf(y_data[0] - y0, obs_std)
    else:
        starts, ends, ys = jnp.concatenate([t0[None], t_data[:-1]]), t_data, y_data
        lml0 = 0.0
    # Refine each interval into `num_steps` equal steps; the last one ends exactly at the datum.
    fractions = jnp.arange(1, num_steps + 1, dtype=dtype) / num_steps
    grid = starts[:, None] + (ends - starts)[:, None] * fractions[None, :]
    grid = grid.at[:, -1].set(ends).reshape(-1)
    grid = jnp.concatenate([starts[:1], grid])
    observed = jnp.tile(jnp.arange(num_steps) == num_steps - 1, starts.shape[0])
    data = jnp.repeat(ys, num_steps, axis=0)

    def step(rv, inputs):
        t, dt, is_observed, y = inputs
        rv, loglik, mahalanobis = _data_step(
            ctx, solver, vector_field, t, rv, dt, args, fixed_scale, y, obs_std, is_observed
        )
        return rv, (loglik, mahalanobis)

    _, (logliks, mahalanobis) = jax.lax.scan(step, rv0, (grid[:-1], jnp.diff(grid), observed, data))
    count = starts.shape[0] * num_steps
    return lml0 + jnp.sum(logliks), jnp.sum(mahalanobis, axis=0), count


def _data_step(ctx, solver, vector_field, t, rv, dt, args, fixed_output_scale, y, obs_std, is_observed):
    """One filter step to ``t + dt`` that also observes ``y = y(t + dt) + noise`` if ``is_observed``.

    Order: predict, condition on the datum (noisy, so the factor stays full
    rank and its QR differentiable), then condition on the ODE residual
    linearised at the predicted mean. Calibration as in :func:`attempt_step`.
    Without ``obs_std`` it is a plain step.
    """
    if obs_std is None:
        outcome = attempt_step(ctx, solver, vector_field, t, rv, dt, args, fixed_output_scale)
        return outcome.posterior, jnp.zeros((), rv.mean.dtype), outcome.mahalanobis
    fact = ctx.factorisation
    obs, residual, _, _, _, predicted = linearise_and_predict(
        ctx, solver, vector_field, t, rv, dt, args, fixed_output_scale
    )

    # The linearised residual r + H (x - m) = 0 is the observation H x = H m - r.
    target = predicted.lift(lambda m, L, h: h @ m, obs) - residual

    data_obs, data_noise, data = _data_observation(fact, obs_std, y)
    data_marginal, data_cond = randvars.condition(predicted, data_obs, data_noise)
    loglik = jnp.where(is_observed, data_marginal.logpdf(data), 0.0)
    updated = data_cond(data)
    predicted = jax.tree.map(lambda a, b: jnp.where(is_observed, a, b), updated, predicted)

    ode_marginal, ode_cond = randvars.condition(predicted, obs)
    posterior = ode_cond(target)
    return posterior, loglik, randvars.mahalanobis(ode_marginal, target)


def _data_observation(fact, obs_std, y):
    """``(H0, cholesky(R), data)`` for observing the zeroth derivative in ``fact``'s layout."""
    n, dim, dtype = fact.num_derivatives + 1, fact.dim, y.dtype
    e0 = jnp.zeros((1, n), dtype).at[0, 0].set(1.0)
    if isinstance(fact, DenseFactorisation):
        eye = jnp.eye(dim, dtype=dtype)
        return jnp.kron(e0, eye), obs_std * eye, y
    if isinstance(fact, IsotropicFactorisation):
        return e0, obs_std * jnp.ones((1, 1), dtype), y[None, :]
    if isinstance(fact, BlockDiagFactorisation):
        return (
            jnp.broadcast_to(e0, (dim, 1, n)),
            obs_std * jnp.ones((dim, 1, 1), dtype),
            y[:, None],
        )
    raise TypeError(f"Unsupported factorisation {type(fact).__name__}.")


def _isotropic_logpdf(residual, std):
    n = residual.shape[0]
    return -0.5 * jnp.sum((residual / std) ** 2) - n * jnp.log(std) - 0.5 * n * jnp.log(2 * jnp.pi)
