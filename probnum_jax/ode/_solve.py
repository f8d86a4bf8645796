"""The adaptive-step driver ``solve``: one bounded while loop over filter steps."""

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp

from .. import randvars
from . import _checks
from ._factorisations import identity_conditional
from ._information import (
    check_problem,
    initial_coefficients,
    num_initial_f_evals,
    prepare,
)
from ._results import RESULTS
from ._solution import BackwardChain, Solution
from ._solvers import EK1, AbstractSolver
from ._step import StepContext, attempt_step, predict, predict_backward


def solve(
    vector_field,
    y0,
    *,
    t0,
    t1,
    solver: AbstractSolver | None = None,
    save_at=None,
    args=None,
    atol=1e-6,
    rtol=1e-6,
    dt0=None,
    max_steps: int = 100_000,
    checkpoints: int | None = None,
    throw: bool = True,
    mass_matrix=None,
    parallel: bool = False,
) -> Solution:
    """Solve ``y' = f(t, y, args)``, ``y(t0) = y0`` with adaptive steps; return a Gaussian posterior.

    The solver is a Gaussian filter (and optionally smoother) on an integrated
    Wiener process prior; the step size is controlled by the filter's local
    error estimate (Schober et al. 2019; Bosch et al. 2021). Posterior values at
    ``save_at`` are interpolated between steps (dense output), so the save points
    do not change the steps taken.

    Arguments:
        vector_field: ``f(t, y, args) -> dy/dt`` (the diffrax convention); for a
            ``ν``-th order ODE ``f(t, y, y', ..., y^(ν-1), args) -> y^(ν)``, and
            for a DAE the right-hand side of ``M y' = f(t, y, args)``.
        y0: initial value ``[d]``; or a tuple ``(y0, y0', ..., y0^(ν-1))`` of
            ``ν >= 2`` arrays of shape ``[d]`` to solve the ``ν``-th order ODE
            directly (needs ``solver.num_derivatives >= ν``; see below).
        t0: the initial time.
        t1: the final time, ``t1 > t0``.
        solver: an :class:`EK0` or :class:`EK1` (default ``EK1()``).
        save_at: strictly increasing times in ``[t0, t1]``; default ``[t0, t1]``.
        args: passed to the vector field; differentiable.
        atol: absolute tolerance of the local error (RMS norm, as in diffrax).
        rtol: relative tolerance of the local error.
        dt0: the initial step; chosen automatically from the Taylor
            coefficients when ``None`` (Hairer, Nørsett & Wanner 1993, II.4).
        max_steps: the maximum number of attempted steps. With
            ``strategy="smoother"`` it also sizes the buffer of stored steps
            (memory ``O(max_steps · state size)``); ``"fixedpoint"`` needs none.
        checkpoints: the number of checkpoints kept for reverse-mode
            differentiation (see below); default ``O(sqrt(max_steps))``.
        throw: raise if the solve fails (see ``sol.result``) instead of returning.
        parallel: not available with adaptive steps (which are chosen one after
            the other); raises. Use ``solve_fixed_grid(..., parallel=True)``.
        mass_matrix: a constant ``[d, d]`` mass matrix ``M``: solve ``M y' = f(t, y, args)``,
            a differential-algebraic equation (DAE) when ``M`` is singular (see below).

    Returns:
        A :class:`Solution` with ``t``, ``mean``, ``std`` (``[T]``, ``[T, d]``,
        ``[T, d]``), step counters, ``result`` and ``output_scale``.

    Higher-order ODEs and DAEs:
        Both replace the residual ``y' - f`` the filter conditions on by
        ``M y^(ν) - f(t, y, ..., y^(ν-1))`` (Bosch, Tronarp & Hennig 2022,
        "Pick-and-mix information operators for probabilistic ODE solvers"),
        linearised by the EK1 as ``H = M E_ν - sum_k J_k E_k``. A higher-order
        ODE (tuple ``y0``) works with every solver and factorisation; its
        initial derivatives beyond the given ones come from Taylor-mode
        differentiation of ``f``, and the local error is
        ``dt^ν · σ̂ · std(residual)``, in units of ``y``. A singular mass matrix
        needs ``EK1`` with ``factorisation="dense"`` (``"blockdiag"`` takes a
        diagonal ``M``); ``y0`` must be consistent (satisfy the algebraic
        equations) and the DAE of index 1: the initial derivatives solve the
        differentiated DAE exactly (:func:`probnum_jax.ode._information.dae_taylor`).
        ``sol.mean`` and ``sol.std`` are always those of ``y``. Examples are in
        :func:`solve_fixed_grid` and the ODE guide.

    Gradients:
        ``jax.grad`` (reverse mode) works through the adaptive loop with respect
        to ``y0``, ``args`` and the vector field's parameters, with or without
        ``jax.jit``. The step loop and the nested loop over save points are
        bounded, recursively checkpointed while loops (Stumm & Walther 2010; the
        loop behind diffrax's ``RecursiveCheckpointAdjoint``): the forward pass
        keeps the loop state at ``checkpoints`` steps only and the backward pass
        recomputes the steps in between. Memory is ``O(checkpoints · state
        size)`` plus the save buffers, which are written in place and never
        copied into checkpoints; fewer checkpoints mean more recomputation
        (``k`` checkpoints cover ``(k + 1)(k + 2) / 2`` steps with one
        recomputation each). The forward pass without a gradient costs about
        the same as a plain ``lax.while_loop``. The step sizes are not
        differentiated (as in diffrax): the gradient is that of the solution on
        the grid the solve chose, accurate where that grid also resolves the
        sensitivities. Forward mode (``jax.jvp``, ``jax.jacfwd``) is not
        supported through the adaptive loop; use ``jax.jacrev`` or
        :func:`solve_fixed_grid`.

    Example:
        >>> import jax.numpy as jnp
        >>> import probnum_jax as pnx
        >>> ivp = pnx.problems.logistic()
        >>> sol = pnx.ode.solve(ivp.vector_field, ivp.y0, t0=ivp.t0, t1=ivp.t1, args=ivp.args,
        ...                     solver=pnx.ode.EK1(num_derivatives=3), atol=1e-8, rtol=1e-8)
        >>> err = jnp.abs(sol.mean[-1] - ivp.solution(ivp.t1))
        >>> bool(err[0] < 1e-6)
        True
    """
    if parallel:
        raise ValueError(
            "parallel=True needs a fixed grid: adaptive steps are chosen one after the other. "
            "Use ode.solve_fixed_grid(..., parallel=True)."
        )
    solver = EK1() if solver is None else solver
    if not isinstance(solver, AbstractSolver):
        raise TypeError(f"solver must be an EK0 or EK1 instance, got {type(solver).__name__}.")
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}.")
    if checkpoints is not None and (not isinstance(checkpoints, int) or checkpoints < 1):
        raise ValueError(f"checkpoints must be a positive int or None, got {checkpoints!r}.")
    vector_field, y0 = prepare(vector_field, y0, solver=solver, mass_matrix=mass_matrix)
    dtype = y0.dtype
    t0, t1 = jnp.asarray(t0, dtype), jnp.asarray(t1, dtype)
    _checks.check_interval(t0, t1)
    for name, value in (("atol", atol), ("rtol", rtol)):
        _checks.check_positive(name, value)
    if dt0 is not None:
        _checks.check_positive("dt0", dt0)
        dt0 = jnp.asarray(dt0, dtype)
    # Without save_at only the end points are saved: the dense-output loop is not compiled.
    dense_output = save_at is not None
    save_at = jnp.stack([t0, t1]) if save_at is None else jnp.asarray(save_at, dtype)
    _checks.check_save_at(save_at, t0, t1)
    check_problem(vector_field, t0, y0, args)
    atol, rtol = jnp.asarray(atol, dtype), jnp.asarray(rtol, dtype)
    return _solve(
        vector_field, y0, t0, t1, solver, save_at, args, atol, rtol, dt0, max_steps, checkpoints,
        throw, dense_output,
    )


def initial_step(coefficients, atol, rtol, order):
    """Hairer's starting step from ``y0, y0', y0''`` (no extra evaluations)."""
    y0, dy0 = coefficients[0], coefficients[1]
    scale = atol + rtol * jnp.abs(y0)
    norm = lambda x: jnp.sqrt(jnp.mean((x / scale) ** 2))  # noqa: E731
    d0, d1 = norm(y0), norm(dy0)
    h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
    d2 = norm(coefficients[2]) if coefficients.shape[0] > 2 else d1
    h1 = jnp.where(
        jnp.maximum(d1, d2) <= 1e-15,
        jnp.maximum(1e-6, h0 * 1e-3),
        (0.01 / jnp.maximum(d1, d2)) ** (1.0 / (order + 1)),
    )
    return jnp.minimum(100 * h0, h1)


def num_f_evals_per_step(solver, dim):
    return 1 + dim if isinstance(solver, EK1) else 1


class _Strategy(eqx.Module):
    """What a strategy keeps while stepping: saved filter marginals or backward conditionals."""

    saved: randvars.Normal | None  # filter: marginals at save points
    accumulated: randvars.Conditional | None  # fixedpoint: p(x_last_save | x_now)
    conditionals: randvars.Conditional | None  # fixedpoint: [K]; smoother: [max_steps + K]
    count: jax.Array  # smoother: number of stored conditionals
    save_node: jax.Array  # smoother: node index of each save point
    save_index: jax.Array  # next save point to process


def _stack(tree, size):
    return jax.tree.map(lambda x: jnp.zeros((size,) + x.shape, x.dtype), tree)


def _tree_where(pred, a, b):
    return jax.tree.map(lambda x, y: jnp.where(pred, x, y), a, b)


def _init_strategy(kind, rv0, num_save, buffer_size):
    ident = identity_conditional(rv0)
    zero = jnp.zeros((), jnp.int32)
    return _Strategy(
        saved=_stack(rv0, num_save) if kind == "filter" else None,
        accumulated=ident if kind == "fixedpoint" else None,
        conditionals=(
            _stack(ident, num_save if kind == "fixedpoint" else buffer_size)
            if kind != "filter"
            else None
        ),
        count=zero,
        save_node=jnp.zeros((num_save,), jnp.int32),
        save_index=zero,
    )


def _set_if(pred, buffer, index, value):
    """``buffer[index] = value`` where ``pred``, else unchanged; in place, never read back.

    Inside the loops the save buffers are write-only (each entry written at most
    once), so the checkpointed loop neither copies nor checkpoints them.
    """
    return jax.tree.map(
        lambda v, b: eqxi.buffer_at_set(b, index, v, pred=pred), value, buffer
    )


def _strategy_buffers(strat: "_Strategy"):
    """The fixed-size arrays of ``strat`` that the loops write into."""
    return (strat.saved, strat.conditionals, strat.save_node)


def _emit(kind, strat: _Strategy, rv, cond, is_save):
    """Record one node (a step end or a save point) with its backward conditional."""
    idx = jnp.minimum(strat.save_index, strat.save_node.shape[0] - 1)
    if kind == "filter":
        saved = _set_if(is_save, strat.saved, idx, rv)
        return eqx.tree_at(lambda s: (s.saved, s.save_index), strat, (saved, strat.save_index + is_save))
    if kind == "fixedpoint":
        acc = strat.accumulated if cond is None else strat.accumulated.compose(cond)
        conds = _set_if(is_save, strat.conditionals, idx, acc)
        acc = _tree_where(is_save, identity_conditional(rv), acc)
        return eqx.tree_at(
            lambda s: (s.accumulated, s.conditionals, s.save_index),
            strat,
            (acc, conds, strat.save_index + is_save),
        )
    count, conds = strat.count, strat.conditionals
    if cond is not None:
        conds = _set_if(True, conds, count, cond)
        count = count + 1
    save_node = _set_if(is_save, strat.save_node, idx, count)
    return eqx.tree_at(
        lambda s: (s.conditionals, s.count, s.save_node, s.save_index),
        strat,
        (conds, count, save_node, strat.save_index + is_save),
    )


class _Carry(eqx.Module):
    t: jax.Array
    dt: jax.Array
    rv: randvars.Normal
    previous_error: jax.Array
    num_steps: jax.Array
    num_rejected: jax.Array
    step_too_small: jax.Array
    mahalanobis_sum: jax.Array
    local_scale_sum: jax.Array
    log_likelihood: jax.Array
    strategy: _Strategy


@eqx.filter_jit
def _solve(
    vector_field, y0, t0, t1, solver, save_at, args, atol, rtol, dt0, max_steps, checkpoints, throw,
    dense_output,
):
    dim, dtype = y0.shape[0], y0.dtype
    q = solver.num_derivatives
    kind = solver.strategy
    ctx = StepContext.build(solver, dim, dtype)
    fact = ctx.factorisation
    eps = jnp.finfo(dtype).eps
    num_save = save_at.shape[0]
    fixed_scale = jnp.ones(fact.output_scale_shape(), dtype) * jnp.asarray(solver.output_scale, dtype)

    invalid = _checks.invalid_input_flag(y0, t0, t1, save_at)
    coefficients = initial_coefficients(vector_field, t0, y0, args, q)
    rv0 = fact.from_taylor(coefficients)
    dt_init = initial_step(coefficients, atol, rtol, q) if dt0 is None else dt0
    dt_init = jnp.where(jnp.isfinite(dt_init) & (dt_init > 0), dt_init, 1e-6 * (t1 - t0))
    # The step sizes are not differentiated (as in diffrax and torchdiffeq): the
    # gradient is that of the solution on the grid the solve chose. The accept/reject
    # decisions are discrete, so through the controller the gradient would only pick
    # up the controller's (large, non-smooth) reaction to the error estimate.
    dt_init = jax.lax.stop_gradient(dt_init)

    strat = _init_strategy(kind, rv0, num_save, max_steps + num_save)
    strat = _emit(kind, strat, rv0, None, save_at[0] == t0)

    zero_scale = jnp.zeros(fact.output_scale_shape(), dtype)
    carry = _Carry(
        t=t0,
        dt=jnp.minimum(dt_init, t1 - t0),
        rv=rv0,
        previous_error=jnp.ones((), dtype),
        num_steps=jnp.zeros((), jnp.int32),
        num_rejected=jnp.zeros((), jnp.int32),
        step_too_small=jnp.zeros((), bool),
        mahalanobis_sum=zero_scale,
        local_scale_sum=zero_scale,
        log_likelihood=jnp.zeros((), dtype),
        strategy=strat,
    )

    def keep_going(c):
        attempts = c.num_steps + c.num_rejected
        return (c.t < t1) & (attempts < max_steps) & ~c.step_too_small & ~invalid

    def accept(c, outcome, t_new):
        """Visit the save points inside the step, then the step's end."""
        sigma = outcome.output_scale

        def more_inside(inner):
            _, _, s, _ = inner
            return (s.save_index < num_save) & (save_at[jnp.minimum(s.save_index, num_save - 1)] < t_new)

        def visit(inner):
            t_cur, rv_cur, s, n = inner
            t_save = save_at[s.save_index]
            if kind == "filter":
                rv_save, cond = predict(ctx, rv_cur, t_save - t_cur, sigma), None
            else:
                rv_save, cond = predict_backward(ctx, rv_cur, t_save - t_cur, sigma)
            return t_save, rv_save, _emit(kind, s, rv_save, cond, True), n + 1

        t_cur, rv_cur, strat, n_inside = c.t, c.rv, c.strategy, jnp.zeros((), jnp.int32)
        if dense_output:
            t_cur, rv_cur, strat, n_inside = eqxi.while_loop(
                more_inside,
                visit,
                (t_cur, rv_cur, strat, n_inside),
                max_steps=num_save,
                buffers=lambda inner: _strategy_buffers(inner[2]),
                kind="checkpointed",
            )
        cond = None
        if kind != "filter" and not dense_output:
            cond = predict_backward(ctx, c.rv, t_new - c.t, sigma)[1]
        elif kind != "filter":
            cond = jax.lax.cond(
                n_inside > 0,
                lambda: predict_backward(ctx, rv_cur, t_new - t_cur, sigma)[1],
                lambda: predict_backward(ctx, c.rv, t_new - c.t, sigma)[1],
            )
        idx = jnp.minimum(strat.save_index, num_save - 1)
        is_save = (strat.save_index < num_save) & (save_at[idx] == t_new)
        return _emit(kind, strat, outcome.posterior, cond, is_save)

    def step(c):
        dt = jnp.minimum(c.dt, t1 - c.t)
        t_new = jnp.where(t1 - (c.t + dt) <= 10 * eps * jnp.abs(t1), t1, c.t + dt)
        outcome = attempt_step(ctx, solver, vector_field, c.t, c.rv, t_new - c.t, args, fixed_scale)
        y_old = fact.derivative(c.rv.mean, 0)
        y_new = fact.derivative(outcome.posterior.mean, 0)
        tol = atol + rtol * jnp.maximum(jnp.abs(y_old), jnp.abs(y_new))
        error = jnp.sqrt(jnp.mean((outcome.error / tol) ** 2))
        finite = (
            jnp.isfinite(error)
            & jnp.all(jnp.isfinite(outcome.posterior.mean))
            & jnp.all(jnp.isfinite(outcome.posterior.cholesky))
        )
        accepted = finite & (error <= 1.0)
        error = jnp.where(finite, error, jnp.inf)
        strat = jax.lax.cond(accepted, lambda: accept(c, outcome, t_new), lambda: c.strategy)
        dt_next = solver.control.propose(dt, error, c.previous_error, q + 1)
        dt_next = jax.lax.stop_gradient(dt_next)
        too_small = dt_next < 10 * eps * jnp.maximum(1.0, jnp.abs(c.t))
        return _Carry(
            t=jnp.where(accepted, t_new, c.t),
            dt=dt_next,
            rv=_tree_where(accepted, outcome.posterior, c.rv),
            previous_error=jnp.where(accepted, error, c.previous_error),
            num_steps=c.num_steps + accepted,
            num_rejected=c.num_rejected + ~accepted,
            step_too_small=too_small & (c.t < t1),
            mahalanobis_sum=c.mahalanobis_sum + jnp.where(accepted, outcome.mahalanobis, 0.0),
            local_scale_sum=c.local_scale_sum + jnp.where(accepted, outcome.local_scale**2, 0.0),
            log_likelihood=c.log_likelihood + jnp.where(accepted, outcome.log_likelihood, 0.0),
            strategy=strat,
        )

    c = eqxi.while_loop(
        keep_going,
        step,
        carry,
        max_steps=max_steps,
        buffers=lambda c: _strategy_buffers(c.strategy),
        kind="checkpointed",
        checkpoints=checkpoints,
    )

    result = RESULTS.where(c.t < t1, RESULTS.max_steps_reached, RESULTS.successful)
    result = RESULTS.where(c.step_too_small, RESULTS.step_size_too_small, result)
    result = RESULTS.where(
        (c.t < t1) & ~jnp.all(jnp.isfinite(c.rv.mean)), RESULTS.nonfinite, result
    )
    result = RESULTS.where(invalid, RESULTS.invalid_input, result)

    num_accepted = jnp.maximum(c.num_steps, 1)
    mle_scale = jnp.sqrt(c.mahalanobis_sum / (num_accepted * fact.num_residual_dof()))
    if solver.calibration == "mle":
        output_scale = mle_scale
    elif solver.calibration == "dynamic":
        output_scale = jnp.sqrt(c.local_scale_sum / num_accepted)
    else:
        output_scale = fixed_scale

    posterior, save_index = None, None
    if kind == "filter":
        marginals = c.strategy.saved
    elif kind == "fixedpoint":
        conds = jax.tree.map(
            lambda buf, last: jnp.concatenate([buf[1:], last[None]]),
            c.strategy.conditionals,
            c.strategy.accumulated,
        )
        posterior = BackwardChain(c.rv, conds, jnp.asarray(num_save, jnp.int32))
        save_index = jnp.arange(num_save)
    else:
        posterior = BackwardChain(c.rv, c.strategy.conditionals, c.strategy.count)
        save_index = c.strategy.save_node
    if solver.calibration == "mle":
        if posterior is not None:
            posterior = posterior.scale(mle_scale)
        else:
            marginals = jax.vmap(lambda rv: rv.scale(mle_scale))(marginals)
    if posterior is not None:
        marginals = jax.tree.map(lambda x: x[save_index], posterior.marginals())

    # save points the solve did not reach (it failed; see `result`) are NaN, never stale zeros
    reached = (save_at <= c.t)[:, None]
    sol = Solution(
        t=save_at,
        mean=jnp.where(reached, jax.vmap(lambda m: fact.derivative(m, 0))(marginals.mean), jnp.nan),
        std=jnp.where(reached, jax.vmap(lambda rv: fact.derivative_std(rv, 0))(marginals), jnp.nan),
        marginals=marginals,
        num_steps=c.num_steps,
        num_rejected=c.num_rejected,
        num_f_evals=num_initial_f_evals(vector_field, t0, y0, args, q)
        + num_f_evals_per_step(solver, dim) * (c.num_steps + c.num_rejected),
        result=result,
        output_scale=output_scale,
        log_marginal_likelihood=c.log_likelihood,
        posterior=posterior,
        save_index=save_index,
        factorisation=fact,
    )
    if throw:
        sol = result.error_if(sol, result != RESULTS.successful)
    return sol
