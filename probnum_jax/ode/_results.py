"""Outcomes of a solve, reported as values (``sol.result``) rather than exceptions."""

import equinox as eqx


class RESULTS(eqx.Enumeration):
    """Why a solve stopped. ``sol.result == RESULTS.successful`` when it reached ``t1``."""

    successful = ""
    max_steps_reached = (
        "The maximum number of steps was reached before t1. Increase `max_steps`, loosen "
        "`atol`/`rtol`, or check whether the problem is stiff (use EK1)."
    )
    step_size_too_small = (
        "The step size fell below the resolution of the time variable: the solution may blow "
        "up (a finite-time singularity) or the problem is too stiff for this solver."
    )
    nonfinite = (
        "The solution became non-finite (NaN or inf): the solution may blow up, or the "
        "vector field returned NaN/inf."
    )
    iterations_not_converged = (
        "The parallel-in-time smoother's Gauss-Newton iterations did not converge within "
        "`max_iterations`: increase it, refine the grid, or solve sequentially (parallel=False)."
    )
    invalid_input = (
        "Invalid input: y0 must be finite, t1 > t0, and save_at sorted inside [t0, t1]."
    )
