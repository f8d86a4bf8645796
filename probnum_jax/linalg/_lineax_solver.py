"""BayesCG as a ``lineax`` solver, for ``lineax.linear_solve``."""

from typing import Any

import jax
import jax.numpy as jnp
import lineax as lx

from ._bayescg import bayescg_solve
from ._results import INDEFINITE, NONFINITE


class BayesCG(lx.AbstractLinearSolver):
    """The Bayesian conjugate gradient method (:func:`bayescg`) as a lineax solver.

    ``lineax.linear_solve(operator, b, solver=BayesCG(...))`` returns the
    BayesCG mean (the CG iterate) as ``solution.value``; ``solution.stats``
    holds ``"num_steps"``, ``"residual_norm"`` and ``"cov_factor"``, the
    ``[n, d]`` factor ``U`` of the posterior covariance ``U U^T`` (Reid et al.
    2023). lineax differentiates the solve implicitly. The operator must be
    tagged positive semi-definite (``lineax.positive_semidefinite_tag``), as
    for ``lineax.CG``; a ``preconditioner`` may be passed in ``options``.

    Attributes:
        rtol, atol: stop when ``||b - A x|| <= max(atol, rtol ||b||)``.
        max_steps: maximum CG iterations (default ``10 n``); reaching it
            returns ``lineax.RESULTS.max_steps_reached``.
        num_post_iterations: rank ``d`` of the posterior covariance.

    Example:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from probnum_jax import linalg
        >>> op = lx.MatrixLinearOperator(jnp.array([[4.0, 1.0], [1.0, 3.0]]), lx.positive_semidefinite_tag)
        >>> sol = lx.linear_solve(op, jnp.array([1.0, 2.0]), solver=linalg.BayesCG(rtol=1e-8, atol=1e-8))
        >>> bool(jnp.allclose(op.mv(sol.value), jnp.array([1.0, 2.0]), atol=1e-6))
        True
    """

    rtol: float
    atol: float
    max_steps: int | None = None
    num_post_iterations: int = 5

    def __check_init__(self):
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if isinstance(value, (int, float)) and not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}.")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}.")
        if self.num_post_iterations < 1:
            raise ValueError(f"num_post_iterations must be >= 1, got {self.num_post_iterations}.")

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        del options
        if operator.in_structure() != operator.out_structure():
            raise ValueError("BayesCG requires a square operator.")
        if len(operator.in_structure().shape) != 1:
            raise ValueError(
                f"BayesCG acts on 1-D vectors, got an operator on shape {operator.in_structure().shape}."
            )
        if not lx.is_positive_semidefinite(operator):
            raise ValueError(
                "BayesCG requires a symmetric positive-definite operator: tag it with "
                "lineax.positive_semidefinite_tag."
            )
        return lx.linearise(operator)

    def compute(self, state, vector, options: dict[str, Any]):
        operator = state
        n = vector.shape[0]
        max_steps = 10 * n if self.max_steps is None else self.max_steps
        precond = options.get("preconditioner")
        precond_mv = None if precond is None else precond.mv
        x0 = options.get("y0", jnp.zeros_like(vector))
        dtype = vector.dtype
        mean, (factor, num_steps, converged, status) = bayescg_solve(
            operator.mv, vector, x0, precond_mv, jnp.asarray(self.atol, dtype), jnp.asarray(self.rtol, dtype),
            max_steps, self.num_post_iterations,
        )
        result = lx.RESULTS.where(converged, lx.RESULTS.successful, lx.RESULTS.max_steps_reached)
        result = lx.RESULTS.where(status == INDEFINITE, lx.RESULTS.breakdown, result)
        result = lx.RESULTS.where(status == NONFINITE, lx.RESULTS.nonfinite_input, result)
        stats = {
            "num_steps": num_steps,
            "max_steps": max_steps,
            "residual_norm": jnp.linalg.norm(vector - operator.mv(mean)),
            "cov_factor": jax.lax.stop_gradient(factor),
        }
        return mean, result, stats

    def transpose(self, state, options: dict[str, Any]):
        transpose_options = {}
        if "preconditioner" in options:
            transpose_options["preconditioner"] = options["preconditioner"].transpose()
        return state.transpose(), transpose_options

    def conj(self, state, options: dict[str, Any]):
        conj_options = {}
        if "preconditioner" in options:
            conj_options["preconditioner"] = lx.conj(options["preconditioner"])
        return lx.conj(state), conj_options

    def assume_full_rank(self) -> bool:
        return True
