"""The fixed-grid driver ``solve_fixed_grid``: one ``lax.scan`` over the grid."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _checks
from ._results import RESULTS
from ._solution import BackwardChain, Solution
from ._solve import num_f_evals_per_step
from ._solvers import EK1, AbstractSolver
from ._step import StepContext, attempt_step, predict_backward
from ._taylor import num_taylor_f_evals, taylor_coefficients


def solve_fixed_grid(vector_field, y0, grid, *, solver: AbstractSolver | None = None, args=None) -> Solution:
    """Solve ``y' = f(t, y, args)`` on a given time grid; the posterior is returned at the grid.

    A ``lax.scan`` over the grid, so ``jax.grad`` flows through it by plain
    reverse-mode differentiation (memory ``O(len(grid))``). With
    ``strategy="smoother"`` or ``"fixedpoint"`` the posterior is the smoother's
    (both are the same on a fixed grid) and ``sol.sample`` draws joint samples.

    Arguments:
        vector_field: ``f(t, y, args) -> dy/dt``.
        y0: initial value ``[d]`` at ``grid[0]``.
        grid: strictly increasing times ``[N]``, ``N >= 2``.
        solver: an :class:`EK0` or :class:`EK1` (default ``EK1()``).
        args: passed to the vector field.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import probnum_jax as pnx
        >>> grid = jnp.linspace(0.0, 1.0, 21)
        >>> f = lambda t, y, k: -k * y
        >>> final = lambda k: pnx.ode.solve_fixed_grid(f, jnp.ones(1), grid, args=k).mean[-1, 0]
        >>> bool(jnp.abs(jax.grad(final)(1.0) + jnp.exp(-1.0)) < 1e-3)
        True
    """
    solver = EK1() if solver is None else solver
    if not isinstance(solver, AbstractSolver):
        raise TypeError(f"solver must be an EK0 or EK1 instance, got {type(solver).__name__}.")
    y0 = _checks.as_initial_value(y0)
    grid = jnp.asarray(grid, y0.dtype)
    if grid.ndim != 1 or grid.shape[0] < 2:
        raise ValueError(f"grid must be a 1-D array with at least 2 times, got shape {grid.shape}.")
    if _checks.is_concrete(grid) and not np.all(np.diff(np.asarray(grid)) > 0):
        raise ValueError("grid must be strictly increasing.")
    _checks.check_vector_field(vector_field, grid[0], y0, args)
    return _solve_fixed_grid(vector_field, y0, grid, solver, args)


@eqx.filter_jit
def _solve_fixed_grid(vector_field, y0, grid, solver, args):
    dim, dtype = y0.shape[0], y0.dtype
    q = solver.num_derivatives
    ctx = StepContext.build(solver, dim, dtype)
    fact = ctx.factorisation
    fixed_scale = jnp.ones(fact.output_scale_shape(), dtype) * jnp.asarray(solver.output_scale, dtype)
    smoothing = solver.strategy != "filter"
    rv0 = fact.from_taylor(taylor_coefficients(vector_field, grid[0], y0, args, q))

    def step(rv, t_and_dt):
        t, dt = t_and_dt
        outcome = attempt_step(ctx, solver, vector_field, t, rv, dt, args, fixed_scale)
        cond = None
        if smoothing:
            cond = predict_backward(ctx, rv, dt, outcome.output_scale)[1]
        scalars = (outcome.mahalanobis, outcome.local_scale**2, outcome.log_likelihood)
        return outcome.posterior, (outcome.posterior, cond, scalars)

    last, (filtered, conds, (mahal, local2, loglik)) = jax.lax.scan(
        step, rv0, (grid[:-1], jnp.diff(grid))
    )
    num_steps = grid.shape[0] - 1
    mle_scale = jnp.sqrt(jnp.sum(mahal, axis=0) / (num_steps * fact.num_residual_dof()))
    output_scale = {
        "mle": mle_scale,
        "dynamic": jnp.sqrt(jnp.mean(local2, axis=0)),
        "none": fixed_scale,
    }[solver.calibration]
    marginals = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), rv0, filtered)
    posterior = None
    if smoothing:
        posterior = BackwardChain(last, conds, jnp.asarray(num_steps, jnp.int32))
    if solver.calibration == "mle":
        if smoothing:
            posterior = posterior.scale(mle_scale)
        else:
            marginals = jax.vmap(lambda rv: rv.scale(mle_scale))(marginals)
    if smoothing:
        marginals = posterior.marginals()
    finite = jnp.all(jnp.isfinite(marginals.mean))
    return Solution(
        t=grid,
        mean=jax.vmap(lambda m: fact.derivative(m, 0))(marginals.mean),
        std=jax.vmap(lambda rv: fact.derivative_std(rv, 0))(marginals),
        marginals=marginals,
        num_steps=jnp.asarray(num_steps, jnp.int32),
        num_rejected=jnp.zeros((), jnp.int32),
        num_f_evals=jnp.asarray(
            num_taylor_f_evals(vector_field, grid[0], y0, args, q)
            + num_f_evals_per_step(solver, dim) * num_steps,
            jnp.int32,
        ),
        result=RESULTS.where(finite, RESULTS.successful, RESULTS.nonfinite),
        output_scale=output_scale,
        log_marginal_likelihood=jnp.sum(loglik),
        posterior=posterior,
        save_index=jnp.arange(grid.shape[0]) if smoothing else None,
        factorisation=fact,
    )
