"""The fixed-grid driver ``solve_fixed_grid``: one ``lax.scan`` over the grid."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _checks
from ._information import (
    ODEInformation,
    check_problem,
    initial_coefficients,
    num_initial_f_evals,
    prepare,
)
from ._parallel import parallel_smoother
from ._results import RESULTS
from ._solution import BackwardChain, Solution
from ._solve import num_f_evals_per_step
from ._solvers import EK1, AbstractSolver
from ._step import StepContext, attempt_step, predict_backward
from ._taylor import num_taylor_f_evals, taylor_coefficients


def solve_fixed_grid(
    vector_field,
    y0,
    grid,
    *,
    solver: AbstractSolver | None = None,
    args=None,
    mass_matrix=None,
    parallel: bool = False,
    max_iterations: int = 100,
    iteration_tol=None,
    initial_guess=None,
) -> Solution:
    """Solve ``y' = f(t, y, args)`` on a given time grid; the posterior is returned at the grid.

    A ``lax.scan`` over the grid, so ``jax.grad`` flows through it by plain
    reverse-mode differentiation (memory ``O(len(grid))``). With
    ``strategy="smoother"`` or ``"fixedpoint"`` the posterior is the smoother's
    (both are the same on a fixed grid) and ``sol.sample`` draws joint samples.

    Arguments:
        vector_field: ``f(t, y, args) -> dy/dt``; ``f(t, y, y', ..., y^(ν-1), args) -> y^(ν)``
            for a ``ν``-th order ODE (see :func:`solve`).
        y0: initial value ``[d]`` at ``grid[0]``, or a tuple ``(y0, y0', ..., y0^(ν-1))``
            for a ``ν``-th order ODE.
        grid: strictly increasing times ``[N]``, ``N >= 2``.
        solver: an :class:`EK0` or :class:`EK1` (default ``EK1()``).
        args: passed to the vector field.
        mass_matrix: a constant ``[d, d]`` mass matrix ``M``: solve ``M y' = f(t, y, args)``
            (a DAE when ``M`` is singular; see :func:`solve`).
        parallel: solve in parallel over time (see below).
        max_iterations: with ``parallel=True``, the maximum number of
            Gauss–Newton iterations; ``sol.result`` reports non-convergence.
        iteration_tol: with ``parallel=True``, stop once the largest change of
            the solution mean in one iteration, relative to ``1 + |y|``, is
            below it; default ``sqrt(eps)`` of the dtype.
        initial_guess: with ``parallel=True``, the trajectory ``[len(grid), d]``
            around which the first iteration linearises (its first row is
            replaced by ``y0``); default: ``y0`` at every grid point. On long
            horizons a rough solution (e.g. a sequential solve on a coarse grid,
            interpolated) avoids convergence to a spurious trajectory.

    Parallel in time:
        ``parallel=True`` computes the smoothing posterior with the iterated
        extended Kalman smoother: the ODE is linearised around the current
        mean at every grid point at once, and the linear filter and smoother are
        prefix sums over an associative operator evaluated by
        ``jax.lax.associative_scan``, so each iteration has depth ``O(log N)``
        instead of ``O(N)`` (Särkkä & García-Fernández 2021; Bosch, Corenflos, Yaghoobi,
        Tronarp, Hennig & Särkkä 2024). Gauss–Newton typically converges in a
        handful of iterations and its fixed point is the maximum-a-posteriori
        trajectory; the posterior covariances are those of the final
        linearisation. It needs the ``"dense"`` factorisation, a smoothing
        strategy, and ``calibration="mle"`` or ``"none"`` (the dynamic output
        scale is a sequential quantity). The elements are in covariance form:
        use float64. On one CPU core the sequential scan is faster; the
        parallel scan pays off on accelerators with long grids. Reverse-mode
        differentiation goes through all iterations (exact for the iterated
        algorithm) and stores them: memory ``O(max_iterations · N · D²)`` for a
        state of size ``D``, so lower ``max_iterations`` when differentiating.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import probnum_jax as pnx
        >>> grid = jnp.linspace(0.0, 1.0, 21)
        >>> f = lambda t, y, k: -k * y
        >>> final = lambda k: pnx.ode.solve_fixed_grid(f, jnp.ones(1), grid, args=k).mean[-1, 0]
        >>> bool(jnp.abs(jax.grad(final)(1.0) + jnp.exp(-1.0)) < 1e-3)
        True

        The oscillator ``y'' = -y`` as a second-order ODE, and the DAE
        ``y1' = -y1, 0 = y1 - y2`` with a singular mass matrix:

        >>> f2 = lambda t, y, dy, args: -y
        >>> sol = pnx.ode.solve_fixed_grid(f2, (jnp.ones(1), jnp.zeros(1)), grid)
        >>> bool(jnp.abs(sol.mean[-1, 0] - jnp.cos(1.0)) < 1e-6)
        True
        >>> dae = lambda t, y, args: jnp.stack([-y[0], y[0] - y[1]])
        >>> sol = pnx.ode.solve_fixed_grid(dae, jnp.ones(2), grid, mass_matrix=jnp.diag(jnp.array([1.0, 0.0])))
        >>> bool(jnp.all(jnp.abs(sol.mean[-1] - jnp.exp(-1.0)) < 1e-6))
        True
    """
    solver = EK1() if solver is None else solver
    if not isinstance(solver, AbstractSolver):
        raise TypeError(f"solver must be an EK0 or EK1 instance, got {type(solver).__name__}.")
    vector_field, y0 = prepare(vector_field, y0, solver=solver, mass_matrix=mass_matrix)
    grid = jnp.asarray(grid, y0.dtype)
    if grid.ndim != 1 or grid.shape[0] < 2:
        raise ValueError(f"grid must be a 1-D array with at least 2 times, got shape {grid.shape}.")
    if _checks.is_concrete(grid) and not np.all(np.diff(np.asarray(grid)) > 0):
        raise ValueError("grid must be strictly increasing.")
    check_problem(vector_field, grid[0], y0, args)
    if parallel and isinstance(vector_field, ODEInformation):
        raise ValueError("parallel=True supports neither mass_matrix nor a higher-order y0 (a tuple).")
    if parallel:
        _check_parallel(solver, max_iterations)
        iteration_tol = np.sqrt(np.finfo(y0.dtype).eps) if iteration_tol is None else iteration_tol
        _checks.check_positive("iteration_tol", iteration_tol)
        iteration_tol = jnp.asarray(iteration_tol, y0.dtype)
        guess = _initial_guess(initial_guess, y0, grid)
        return _solve_parallel(vector_field, y0, grid, solver, args, max_iterations, iteration_tol, guess)
    if initial_guess is not None:
        raise ValueError("initial_guess is used by parallel=True only.")
    return _solve_fixed_grid(vector_field, y0, grid, solver, args)


def _initial_guess(initial_guess, y0, grid):
    """The first linearisation trajectory ``[N, d]``: given, or ``y0`` constant in time."""
    shape = (grid.shape[0], y0.shape[0])
    if initial_guess is None:
        return jnp.broadcast_to(y0, shape)  # an array either way: one compilation for both
    initial_guess = jnp.asarray(initial_guess, y0.dtype)
    if initial_guess.shape != shape:
        raise ValueError(f"initial_guess must have shape [len(grid), d] = {list(shape)}, got {initial_guess.shape}.")
    if _checks.is_concrete(initial_guess) and not np.all(np.isfinite(np.asarray(initial_guess))):
        raise ValueError("initial_guess must be finite (it contains NaN or inf).")
    return initial_guess


def _check_parallel(solver, max_iterations):
    if not isinstance(solver, EK1):
        raise TypeError(
            f"parallel=True needs EK1: the iterated smoother is Gauss-Newton and needs the "
            f"Jacobian (with {type(solver).__name__} the iterations do not converge)."
        )
    if solver.factorisation != "dense":
        raise ValueError(
            f"parallel=True needs factorisation='dense', got {solver.factorisation!r}."
        )
    if solver.strategy == "filter":
        raise ValueError(
            "parallel=True computes a smoothing posterior: use strategy='smoother' or 'fixedpoint'."
        )
    if solver.calibration == "dynamic":
        raise ValueError(
            "parallel=True supports calibration='mle' or 'none'; the dynamic output scale is "
            "estimated step by step, which a parallel-in-time solve cannot do."
        )
    if not isinstance(max_iterations, int) or max_iterations < 1:
        raise ValueError(f"max_iterations must be a positive int, got {max_iterations!r}.")


@eqx.filter_jit
def _solve_parallel(vector_field, y0, grid, solver, args, max_iterations, iteration_tol, guess):
    dim, dtype = y0.shape[0], y0.dtype
    q = solver.num_derivatives
    ctx = StepContext.build(solver, dim, dtype)
    fixed_scale = jnp.asarray(solver.output_scale, dtype)
    rv0 = ctx.factorisation.from_taylor(taylor_coefficients(vector_field, grid[0], y0, args, q))
    marginals, posterior, mahal, loglik, count, result = parallel_smoother(
        ctx, solver, vector_field, grid, rv0.mean, args, fixed_scale, max_iterations, iteration_tol, guess
    )
    num_steps = grid.shape[0] - 1
    output_scale = fixed_scale
    if solver.calibration == "mle":
        output_scale = jnp.sqrt(jnp.sum(mahal) / (num_steps * dim))
        posterior, marginals = posterior.scale(output_scale), marginals.scale(output_scale)
    # Every iteration linearises at all N points; the final pass linearises once more.
    f_evals = num_taylor_f_evals(vector_field, grid[0], y0, args, q) + num_f_evals_per_step(
        solver, dim
    ) * num_steps * (count + 1)
    return _solution(
        ctx, grid, marginals, posterior, output_scale, jnp.sum(loglik), result, f_evals, count
    )


def _solution(
    ctx, grid, marginals, posterior, output_scale, log_likelihood, result, f_evals, num_iterations=None
):
    fact = ctx.factorisation
    return Solution(
        t=grid,
        mean=jax.vmap(lambda m: fact.derivative(m, 0))(marginals.mean),
        std=jax.vmap(lambda rv: fact.derivative_std(rv, 0))(marginals),
        marginals=marginals,
        num_steps=jnp.asarray(grid.shape[0] - 1, jnp.int32),
        num_rejected=jnp.zeros((), jnp.int32),
        num_f_evals=jnp.asarray(f_evals, jnp.int32),
        result=result,
        output_scale=output_scale,
        log_marginal_likelihood=log_likelihood,
        posterior=posterior,
        save_index=None if posterior is None else jnp.arange(grid.shape[0]),
        factorisation=fact,
        num_iterations=num_iterations,
    )


@eqx.filter_jit
def _solve_fixed_grid(vector_field, y0, grid, solver, args):
    dim, dtype = y0.shape[0], y0.dtype
    q = solver.num_derivatives
    ctx = StepContext.build(solver, dim, dtype)
    fact = ctx.factorisation
    fixed_scale = jnp.ones(fact.output_scale_shape(), dtype) * jnp.asarray(solver.output_scale, dtype)
    smoothing = solver.strategy != "filter"
    rv0 = fact.from_taylor(initial_coefficients(vector_field, grid[0], y0, args, q))

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
    result = RESULTS.where(finite, RESULTS.successful, RESULTS.nonfinite)
    f_evals = num_initial_f_evals(vector_field, grid[0], y0, args, q) + num_f_evals_per_step(solver, dim) * num_steps
    return _solution(ctx, grid, marginals, posterior, output_scale, jnp.sum(loglik), result, f_evals)
