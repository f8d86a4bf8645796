"""Bayesian quadrature on given nodes and function values, and the result type."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ._gaussian_process import integral_belief, predict_integrand
from ._kernel_embeddings import _check_pair
from ._kernels import AbstractKernel, kernel_parameters_valid
from ._measures import AbstractMeasure
from ._results import RESULTS
from ._validation import as_fvals, as_nodes, flag, is_concrete


class BQTrace(eqx.Module):
    """The integral belief after each step of an adaptive run.

    Attributes:
        num_nodes: The number of nodes after each step, ``[S]``.
        mean: The integral's posterior mean after each step, ``[S, *m]``.
        std: The integral's posterior standard deviation after each step, ``[S]``.
    """

    num_nodes: Int[Array, " S"]
    mean: Float[Array, "S *m"]
    std: Float[Array, " S"]


class BQResult(eqx.Module):
    """The Gaussian belief ``N(mean, std**2)`` over ``int f dmu`` and what it was computed from.

    Attributes:
        mean: The posterior mean of the integral, a scalar (or ``[m]`` for ``m`` integrands).
        std: The posterior standard deviation (the same for every integrand sharing a kernel).
        nodes: The nodes ``[n, d]``.
        fvals: The function values ``[n]`` or ``[n, m]``.
        kernel: The kernel used (after hyperparameter fitting, if any).
        measure: The integration measure.
        weights: The quadrature weights ``w`` with ``mean = w @ fvals``, ``[n]``.
        log_evidence: The log marginal likelihood of ``fvals`` under the GP prior.
        jitter: The relative jitter that made the Gram matrix factorisable.
        result: A :class:`RESULTS` member; ``RESULTS.successful`` if the belief is valid.
        trace: The belief after each step of an adaptive run (``None`` otherwise).
        mask: Which rows of ``nodes`` hold evaluated nodes (``None``: all). Only a result
            taken from an unfinished adaptive run has unfilled rows.
    """

    mean: Array
    std: Array
    nodes: Float[Array, "n d"]
    fvals: Array
    kernel: AbstractKernel
    measure: AbstractMeasure
    weights: Float[Array, " n"]
    log_evidence: Float[Array, ""]
    jitter: Float[Array, ""]
    result: RESULTS
    trace: BQTrace | None = None
    mask: Bool[Array, " n"] | None = None

    @property
    def var(self) -> Array:
        """The posterior variance of the integral."""
        return self.std**2

    def predict(self, x: Float[Array, "k d"]) -> tuple[Array, Array]:
        """The GP posterior over the integrand at points ``x``: mean ``[k, *m]`` and std ``[k]``."""
        x = as_nodes(x, self.measure.dim)
        return _predict(self.kernel, self.nodes, self.fvals, x, self.mask)


_predict = eqx.filter_jit(
    lambda kernel, nodes, fvals, x, mask: predict_integrand(kernel, nodes, fvals, x, mask=mask)
)


def _value_flags(nodes, fvals, measure, kernel):
    """Booleans: invalid measure, invalid kernel, non-finite nodes, #nodes outside, non-finite fvals."""
    return (
        ~measure.valid(),
        ~kernel_parameters_valid(kernel),
        ~jnp.all(jnp.isfinite(nodes)),
        jnp.sum(~measure.contains(nodes)),
        ~jnp.all(jnp.isfinite(fvals)),
    )


_value_flags_jit = eqx.filter_jit(_value_flags)


def check_inputs(nodes, fvals, measure, kernel):
    """Shape checks (trace time) and value checks (eager ValueError, or a ``RESULTS`` value)."""
    _check_pair(kernel, measure)
    nodes = as_nodes(nodes, measure.dim)
    fvals = as_fvals(fvals, nodes.shape[0])
    concrete = is_concrete((nodes, fvals, measure, kernel))
    bad_measure, bad_kernel, bad_nodes, num_outside, bad_fvals = (
        _value_flags_jit if concrete else _value_flags
    )(nodes, fvals, measure, kernel)
    result = RESULTS.successful
    result = flag(
        result,
        bad_measure,
        RESULTS.invalid_measure,
        "measure is invalid: LebesgueMeasure needs lower < upper, GaussianMeasure a finite "
        "mean and a symmetric positive-definite cov.",
    )
    result = flag(
        result,
        bad_kernel,
        RESULTS.invalid_kernel_parameters,
        lambda: "kernel lengthscales and output_scale must be finite and > 0, got lengthscales="
        f"{kernel.lengthscales}, output_scale={kernel.output_scale}.",
    )
    result = flag(result, bad_nodes, RESULTS.nonfinite_nodes, "nodes contain NaN or inf.")
    result = flag(
        result,
        num_outside > 0,
        RESULTS.nodes_outside_domain,
        lambda: f"nodes must lie inside the integration domain, but {int(num_outside)} "
        "node(s) lie outside [measure.lower, measure.upper].",
    )
    result = flag(result, bad_fvals, RESULTS.nonfinite_fvals, "fvals contain NaN or inf.")
    return nodes, fvals, result


def bayesquad_from_data(
    nodes: Float[Array, "n d"],
    fvals: Float[Array, "n *m"],
    *,
    measure: AbstractMeasure,
    kernel: AbstractKernel,
    jitter: float | None = None,
    throw: bool = True,
) -> BQResult:
    """Bayesian quadrature from given nodes and function values.

    Places the prior ``f ~ GP(0, k)`` on the integrand, conditions it on
    ``f(nodes) = fvals`` and returns the implied Gaussian belief over
    ``F = int f(x) dmu(x)``: mean ``z^T K^{-1} f`` and variance
    ``int int k dmu dmu - z^T K^{-1} z`` with the kernel mean ``z``. The Gram matrix
    ``K`` is factorised by Cholesky; if that fails, a diagonal jitter (relative to
    ``output_scale**2``) is grown tenfold until it succeeds.

    ``fvals`` of shape ``[n, m]`` integrates ``m`` functions that share nodes and
    kernel at the cost of one factorisation; ``jax.vmap`` over ``fvals`` (or over
    kernels) works too. Jit-, vmap- and grad-compatible in all array arguments.

    Args:
        nodes: The nodes ``[n, d]``; they must lie in the measure's domain.
        fvals: The function values ``[n]`` or ``[n, m]``.
        measure: A :class:`LebesgueMeasure` or :class:`GaussianMeasure`.
        kernel: An :class:`ExpQuad` or :class:`Matern` kernel (see :func:`fit_kernel`).
        jitter: The relative jitter tried first; default ``1e-12`` (float64) or ``1e-6``
            (float32).
        throw: Raise if ``result`` is not successful (also under ``jit``).

    Returns:
        A :class:`BQResult`.

    Raises:
        ValueError: for shape mismatches, and (outside ``jit``) for NaN values, nodes
            outside the domain or invalid kernel parameters.
        TypeError: for a kernel-measure pair without a closed-form kernel mean.

    Reference: O'Hagan, "Bayes–Hermite quadrature", J. Stat. Plan. Inference 29, 1991;
    Briol et al., "Probabilistic integration", Statistical Science 34(1), 2019.

    Example:
        >>> import jax.numpy as jnp
        >>> from probnum_jax import quad
        >>> x = jnp.linspace(0.0, 1.0, 10)[:, None]
        >>> res = quad.bayesquad_from_data(
        ...     x, jnp.exp(x[:, 0]),
        ...     measure=quad.LebesgueMeasure(0.0, 1.0), kernel=quad.ExpQuad(0.5))
        >>> abs(float(res.mean) - (jnp.e - 1)) < 1e-4
        True
    """
    nodes, fvals, result = check_inputs(nodes, fvals, measure, kernel)
    return _bayesquad_from_data(nodes, fvals, measure, kernel, result, jitter, throw)


@eqx.filter_jit
def _bayesquad_from_data(nodes, fvals, measure, kernel, result, jitter, throw) -> BQResult:
    belief = integral_belief(kernel, measure, nodes, fvals, None, jitter)
    result = RESULTS.where(belief.factor.ok, result, RESULTS.cholesky_failed)
    std = jnp.sqrt(belief.var)
    if fvals.ndim == 2:
        std = jnp.broadcast_to(std, belief.mean.shape)
    res = BQResult(
        mean=belief.mean,
        std=std,
        nodes=nodes,
        fvals=fvals,
        kernel=kernel,
        measure=measure,
        weights=belief.weights,
        log_evidence=belief.log_evidence,
        jitter=belief.factor.jitter,
        result=result,
    )
    if throw:
        res = result.error_if(res, result != RESULTS.successful)
    return res
