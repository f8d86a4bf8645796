"""Adaptive Bayesian quadrature as an init/step pair (optax style) with fixed-size buffers."""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ._acquisitions import make_acquisition, maximise
from ._bayesquad_from_data import BQResult, BQTrace
from ._designs import DESIGNS, MAX_SOBOL_DIM
from ._gaussian_process import factorise, integral_belief, log_evidence_masked
from ._hyperparameters import fit_kernel_masked
from ._kernel_embeddings import _check_pair, kernel_mean
from ._kernels import AbstractKernel, ExpQuad, kernel_parameters_valid
from ._measures import AbstractMeasure
from ._results import RESULTS
from ._wsabi import check_wsabi_kernel, warp_values, wsabi_belief

POLICIES = ("bmc", "sobol", "lhs", "us", "ivr")
ADAPTIVE_POLICIES = ("us", "ivr")
MODELS = ("gp", "wsabi")
# Created once so that repeated calls hash equal and reuse compiled code.
DEFAULT_FIT_OPTIMIZER = optax.adam(0.05)
DEFAULT_ACQUISITION_OPTIMIZER = optax.adam(0.1)


class BQState(eqx.Module):
    """The state of an adaptive Bayesian-quadrature run (fixed-size buffers of ``num_evals``).

    Attributes:
        nodes: The node buffer ``[num_evals, d]``; the first ``num_nodes`` rows are filled.
        fvals: The function-value buffer ``[num_evals, *m]``.
        num_nodes: How many nodes have been evaluated.
        kernel: The current kernel (refitted after each step if hyperparameters are learned).
        key: The PRNG key for the next step.
        design: The space-filling design the initial (or, for non-adaptive policies, all)
            nodes are taken from, ``[num_evals, d]``.
        trace: The integral belief after each step so far (unfilled rows are zero).
        num_steps_taken: The number of completed steps (the initial design counts as one).
        belief: The current belief ``(mean, var, weights, log_evidence, jitter)``.
        result: ``RESULTS.successful`` unless a function value was NaN/inf (or negative
            for WSABI) or a factorisation failed.
    """

    nodes: Float[Array, "N d"]
    fvals: Array
    num_nodes: Int[Array, ""]
    kernel: AbstractKernel
    key: PRNGKeyArray
    design: Float[Array, "N d"]
    trace: BQTrace
    num_steps_taken: Int[Array, ""]
    belief: tuple[Array, Array, Array, Array, Array]
    result: RESULTS

    @property
    def mask(self) -> Bool[Array, " N"]:
        return jnp.arange(self.nodes.shape[0]) < self.num_nodes


class BayesQuadLoop(eqx.Module):
    """Adaptive Bayesian quadrature, driven one step at a time (init/step, as in optax).

    ``state = loop.init(f, key=key)`` evaluates the initial design and fits the
    kernel; each ``state = loop.step(f, state)`` chooses ``batch_size`` nodes by
    maximising the acquisition (greedily, each new node entering the Gram matrix
    before the next is chosen), evaluates ``f`` there and refits the kernel by ML-II;
    ``loop.result(state)`` returns the :class:`BQResult`. All three are pure and
    jit-compatible; :func:`bayesquad` runs the whole loop under ``jit``.

    See :func:`bayesquad` for the meaning of the fields; the constructor checks them.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax import quad
        >>> loop = quad.BayesQuadLoop(measure=quad.LebesgueMeasure(0.0, 1.0), num_evals=8,
        ...                           policy="ivr", num_initial=4)
        >>> f = lambda x: jnp.exp(x[0])
        >>> state = loop.init(f, key=jax.random.key(0))
        >>> for _ in range(loop.num_steps):
        ...     state = loop.step(f, state)
        >>> res = loop.result(state)
        >>> res.nodes.shape, abs(float(res.mean) - (jnp.e - 1)) < 1e-3
        ((8, 1), True)
    """

    measure: AbstractMeasure
    kernel: AbstractKernel
    num_evals: int = eqx.field(static=True)
    policy: str = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    num_initial: int = eqx.field(static=True)
    initial_design: str = eqx.field(static=True)
    model: str = eqx.field(static=True)
    learn_hyperparameters: bool = eqx.field(static=True)
    fit_optimizer: optax.GradientTransformation = eqx.field(static=True)
    fit_steps: int = eqx.field(static=True)
    refit_steps: int = eqx.field(static=True)
    lengthscale_bounds: tuple[float, float] = eqx.field(static=True)
    num_candidates: int = eqx.field(static=True)
    num_restarts: int = eqx.field(static=True)
    acquisition_steps: int = eqx.field(static=True)
    acquisition_optimizer: optax.GradientTransformation = eqx.field(static=True)
    jitter: float | None = eqx.field(static=True)

    def __init__(
        self,
        *,
        measure: AbstractMeasure,
        kernel: AbstractKernel | None = None,
        num_evals: int,
        policy: str,
        batch_size: int = 1,
        num_initial: int | None = None,
        initial_design: str = "sobol",
        model: str = "gp",
        learn_hyperparameters: bool = True,
        fit_optimizer: optax.GradientTransformation | None = None,
        fit_steps: int = 150,
        refit_steps: int = 25,
        lengthscale_bounds: tuple[float, float] = (1e-2, 1e1),
        num_candidates: int = 256,
        num_restarts: int = 8,
        acquisition_steps: int = 40,
        acquisition_optimizer: optax.GradientTransformation | None = None,
        jitter: float | None = None,
    ):
        if not isinstance(measure, AbstractMeasure):
            raise TypeError(f"measure must be a LebesgueMeasure or GaussianMeasure, got {type(measure).__name__}.")
        if kernel is None:
            kernel = ExpQuad(lengthscales=0.5 * measure.scale, output_scale=1.0)
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}.")
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {model!r}.")
        if model == "wsabi":
            check_wsabi_kernel(kernel, measure)
            if policy == "ivr":
                raise ValueError("policy='ivr' is not available for model='wsabi'; use 'us'.")
        _check_pair(kernel, measure)
        if initial_design not in DESIGNS:
            raise ValueError(f"initial_design must be one of {tuple(DESIGNS)}, got {initial_design!r}.")
        for name, value, low in (
            ("num_evals", num_evals, 1),
            ("batch_size", batch_size, 1),
            ("fit_steps", fit_steps, 0),
            ("refit_steps", refit_steps, 0),
            ("num_candidates", num_candidates, 1),
            ("num_restarts", num_restarts, 1),
            ("acquisition_steps", acquisition_steps, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}.")
        if num_restarts > num_candidates:
            raise ValueError(f"num_restarts ({num_restarts}) must be <= num_candidates ({num_candidates}).")
        if policy in ADAPTIVE_POLICIES:
            if num_initial is None:
                num_initial = max(1, min(num_evals // 2, max(4, 2 * measure.dim)))
                # Round up so that the adaptive steps use full batches only.
                num_initial = num_evals - (num_evals - num_initial) // batch_size * batch_size
            if not isinstance(num_initial, int) or not 1 <= num_initial <= num_evals:
                raise ValueError(f"num_initial must be an int in [1, num_evals={num_evals}], got {num_initial!r}.")
        else:
            initial_design, num_initial = policy, num_evals
        design_name = initial_design if policy in ADAPTIVE_POLICIES else policy
        if design_name == "sobol" and measure.dim > MAX_SOBOL_DIM:
            raise ValueError(f"Sobol designs support d <= {MAX_SOBOL_DIM}, got d={measure.dim}; use 'lhs'.")
        lo, hi = lengthscale_bounds
        if not 0 < lo < hi:
            raise ValueError(f"lengthscale_bounds must satisfy 0 < lower < upper, got {lengthscale_bounds}.")
        self.measure, self.kernel = measure, kernel
        self.num_evals, self.policy, self.batch_size = num_evals, policy, batch_size
        self.num_initial, self.initial_design, self.model = num_initial, initial_design, model
        self.learn_hyperparameters = bool(learn_hyperparameters)
        self.fit_optimizer = DEFAULT_FIT_OPTIMIZER if fit_optimizer is None else fit_optimizer
        self.fit_steps, self.refit_steps = fit_steps, refit_steps
        self.lengthscale_bounds = (float(lo), float(hi))
        self.num_candidates, self.num_restarts = num_candidates, num_restarts
        self.acquisition_steps = acquisition_steps
        self.acquisition_optimizer = (
            DEFAULT_ACQUISITION_OPTIMIZER if acquisition_optimizer is None else acquisition_optimizer
        )
        self.jitter = jitter

    @property
    def num_steps(self) -> int:
        """The number of calls to :meth:`step` after :meth:`init` to reach ``num_evals``."""
        return math.ceil((self.num_evals - self.num_initial) / self.batch_size)

    # -- helpers ---------------------------------------------------------------------

    def _check_integrand(self, f: Callable) -> tuple[int, ...]:
        dtype = self.measure.scale.dtype
        probe = jax.ShapeDtypeStruct((self.measure.dim,), dtype)
        try:
            out = jax.eval_shape(f, probe)
        except Exception as e:  # noqa: BLE001 - re-raised with context
            raise TypeError(
                f"Calling the integrand as f(x) with x of shape ({self.measure.dim},) failed "
                f"({type(e).__name__}: {e}). The integrand maps one point [d] to a scalar."
            ) from e
        shape = getattr(out, "shape", None)
        if shape is None or not (shape == () or (len(shape) == 1 and self.model == "gp")):
            expected = "a scalar" if self.model == "wsabi" else "a scalar or a 1-D array [m]"
            raise ValueError(
                f"The integrand f(x) for x of shape ({self.measure.dim},) must return {expected}, "
                f"got {shape if shape is not None else type(out).__name__}."
            )
        if not jnp.issubdtype(out.dtype, jnp.floating):
            raise TypeError(f"The integrand must return floating-point values, got dtype {out.dtype}.")
        return shape

    def _bounds(self):
        scale = self.measure.scale
        lo, hi = self.lengthscale_bounds[0] * scale, self.lengthscale_bounds[1] * scale
        if self.kernel.lengthscales.ndim == 0:
            lo, hi = jnp.min(lo), jnp.max(hi)
        return lo, hi

    def _model_values(self, fvals, mask):
        if self.model == "wsabi":
            return warp_values(fvals, mask, None)
        return None, fvals

    def _belief(self, kernel, nodes, fvals, mask):
        """``(mean, var, weights, log_evidence, jitter)`` of the belief, and the factor's ``ok``."""
        if self.model == "wsabi":
            alpha, g = warp_values(fvals, mask, None)
            factor = factorise(kernel, nodes, mask, self.jitter)
            mean, var = wsabi_belief(kernel, self.measure, nodes, g, alpha, factor, mask)
            log_ev = log_evidence_masked(kernel, nodes, g, mask, self.jitter)
            z = jnp.where(mask, kernel_mean(kernel, self.measure, nodes), 0.0)
            weights = jax.scipy.linalg.cho_solve((factor.cholesky, True), z)
        else:
            b = integral_belief(kernel, self.measure, nodes, fvals, mask, self.jitter)
            mean, var, factor, log_ev, weights = b.mean, b.var, b.factor, b.log_evidence, b.weights
        return (mean, var, weights, log_ev, factor.jitter), factor.ok

    def _value_result(self, result, fvals):
        result = RESULTS.where(jnp.all(jnp.isfinite(fvals)), result, RESULTS.nonfinite_fvals)
        if self.model == "wsabi":
            result = RESULTS.where(jnp.all(fvals >= 0), result, RESULTS.negative_fvals)
        return result

    # -- building blocks: evaluate the design, update the belief, acquire a batch ------

    def _evaluate_design(self, f: Callable, key: PRNGKeyArray) -> BQState:
        out_shape = self._check_integrand(f)
        dim, n, dtype = self.measure.dim, self.num_evals, self.measure.scale.dtype
        key_design, key_loop = jax.random.split(key)
        design_fn = DESIGNS[self.initial_design]
        design = self.measure.from_unit_cube(design_fn(n, dim, key=key_design, dtype=dtype))
        mask = jnp.arange(n) < self.num_initial
        nodes = jnp.where(mask[:, None], design, 0.0)
        first = jax.vmap(f)(design[: self.num_initial]).astype(dtype)
        fvals = jnp.zeros((n,) + out_shape, dtype).at[: self.num_initial].set(first)
        result = RESULTS.where(
            kernel_parameters_valid(self.kernel), RESULTS.successful, RESULTS.invalid_kernel_parameters
        )
        result = RESULTS.where(self.measure.valid(), result, RESULTS.invalid_measure)
        result = self._value_result(result, first)
        num_records = 1 + self.num_steps
        trace = BQTrace(
            num_nodes=jnp.zeros((num_records,), int),
            mean=jnp.zeros((num_records,) + out_shape, dtype),
            std=jnp.zeros((num_records,), dtype),
        )
        zero = jnp.zeros((), dtype)
        belief = (jnp.zeros(out_shape, dtype), zero, jnp.zeros((n,), dtype), zero, zero)
        return BQState(
            nodes=nodes, fvals=fvals, num_nodes=jnp.asarray(self.num_initial), kernel=self.kernel,
            key=key_loop, design=design, trace=trace, num_steps_taken=jnp.asarray(0),
            belief=belief, result=result,
        )  # fmt: skip

    def _update(self, state: BQState, num_fit_steps) -> BQState:
        """Refit the kernel, compute the belief and record it in the trace."""
        mask = state.mask
        kernel = state.kernel
        if self.learn_hyperparameters:
            _, values = self._model_values(state.fvals, mask)
            kernel = fit_kernel_masked(
                kernel, state.nodes, values, mask,
                optimizer=self.fit_optimizer, num_steps=num_fit_steps,
                lengthscale_bounds=self._bounds(), jitter=self.jitter,
            )  # fmt: skip
            kernel = jax.lax.stop_gradient(kernel)
        belief, ok = self._belief(kernel, state.nodes, state.fvals, mask)
        result = RESULTS.where(ok, state.result, RESULTS.cholesky_failed)
        i = state.num_steps_taken
        trace = BQTrace(
            num_nodes=state.trace.num_nodes.at[i].set(state.num_nodes),
            mean=state.trace.mean.at[i].set(belief[0]),
            std=state.trace.std.at[i].set(jnp.sqrt(belief[1])),
        )
        return eqx.tree_at(
            lambda s: (s.kernel, s.belief, s.trace, s.num_steps_taken, s.result),
            state,
            (kernel, belief, trace, i + 1, result),
        )

    def _select(self, state: BQState, batch: int, key: PRNGKeyArray) -> Array:
        """Greedy batch selection by the acquisition; returns ``[batch, d]`` nodes."""
        nodes, mask, kernel = state.nodes, state.mask, state.kernel
        warped = None
        if self.model == "wsabi":
            _, warped = warp_values(state.fvals, mask, None)
        dim = self.measure.dim

        def choose(i, carry):
            nodes, mask, warped, chosen = carry
            factor = factorise(kernel, nodes, mask, self.jitter)
            acquisition = make_acquisition(self.policy, kernel, self.measure, nodes, mask, factor, warped)
            x = maximise(
                acquisition, self.measure, key=jax.random.fold_in(key, i),
                num_candidates=self.num_candidates, num_restarts=self.num_restarts,
                num_steps=self.acquisition_steps, optimizer=self.acquisition_optimizer,
                dtype=nodes.dtype,
            )  # fmt: skip
            slot = state.num_nodes + i
            if warped is not None:  # kriging believer: the fantasy value is the posterior mean
                cross = jnp.where(mask, kernel.matrix(nodes, x[None])[:, 0], 0.0)
                fantasy = cross @ jax.scipy.linalg.cho_solve((factor.cholesky, True), warped)
                warped = warped.at[slot].set(fantasy, mode="drop")
            # Slots beyond the buffer (never used: batches end at num_evals) are dropped.
            nodes = nodes.at[slot].set(x, mode="drop")
            mask = mask.at[slot].set(True, mode="drop")
            return nodes, mask, warped, chosen.at[i].set(x)

        chosen = jnp.zeros((batch, dim), nodes.dtype)
        carry = (nodes, mask, warped, chosen)
        return jax.lax.fori_loop(0, batch, choose, carry)[-1]

    def _acquire(self, f: Callable, state: BQState, batch: int) -> BQState:
        """Choose ``batch`` nodes, evaluate ``f`` there and append them to the buffers."""
        key, subkey = jax.random.split(state.key)
        if self.policy in ADAPTIVE_POLICIES:
            new = self._select(state, batch, subkey)
        else:
            new = jax.lax.dynamic_slice_in_dim(state.design, state.num_nodes, batch)
        new_f = jax.vmap(f)(new).astype(state.fvals.dtype)
        start = (state.num_nodes,) + (0,) * (state.fvals.ndim - 1)
        nodes = jax.lax.dynamic_update_slice(state.nodes, new, (state.num_nodes, 0))
        fvals = jax.lax.dynamic_update_slice(state.fvals, new_f, start)
        result = self._value_result(state.result, new_f)
        return eqx.tree_at(
            lambda s: (s.nodes, s.fvals, s.num_nodes, s.key, s.result),
            state,
            (nodes, fvals, state.num_nodes + batch, key, result),
        )

    # -- the public init / step / run / result ---------------------------------------

    def init(self, f: Callable[[Array], Array], *, key: PRNGKeyArray) -> BQState:
        """Evaluate ``f`` on the initial design, fit the kernel and record the first belief.

        Args:
            f: The integrand ``x [d] -> scalar`` (or ``[m]``), JAX-traceable.
            key: A JAX PRNG key.
        """
        return self._update(self._evaluate_design(f, key), self.fit_steps)

    def step(
        self, f: Callable[[Array], Array], state: BQState, *, batch_size: int | None = None
    ) -> BQState:
        """Choose and evaluate the next batch of nodes, refit the kernel, record the belief.

        Args:
            f: The integrand, as in :meth:`init`.
            state: The current state.
            batch_size: Override the batch size (a Python int), e.g. for a final partial batch.
        """
        batch = self.batch_size if batch_size is None else batch_size
        return self._update(self._acquire(f, state, batch), self.refit_steps)

    def run(self, f: Callable[[Array], Array], *, key: PRNGKeyArray) -> BQState:
        """Run the whole loop (jit-compatible) and return the final state.

        Equivalent to :meth:`init` followed by :attr:`num_steps` calls of :meth:`step`, but
        the belief update and the acquisition each appear once in the compiled program.
        """
        full, remainder = divmod(self.num_evals - self.num_initial, self.batch_size)
        state = self._evaluate_design(f, key)
        if full == 0 and remainder == 0:  # a non-adaptive design: one update, no loop
            return self._update(state, self.fit_steps)

        def body(i, state):
            state = self._update(state, jnp.where(i == 0, self.fit_steps, self.refit_steps))
            return jax.lax.cond(
                i < full, lambda s: self._acquire(f, s, self.batch_size), lambda s: s, state
            )

        state = jax.lax.fori_loop(0, full + 1, body, state)
        if remainder:
            state = self.step(f, state, batch_size=remainder)
        return state

    def result(self, state: BQState, *, throw: bool = True) -> BQResult:
        """The integral belief from the evaluated nodes (all ``num_evals`` after the last step).

        Args:
            state: The state after :meth:`init`/:meth:`step` or :meth:`run`.
            throw: Raise if ``state.result`` is not successful (also under ``jit``).
        """
        mean, var, weights, log_ev, jitter = state.belief
        std = jnp.sqrt(var)
        if state.fvals.ndim == 2:
            std = jnp.broadcast_to(std, mean.shape)
        res = BQResult(
            mean=mean, std=std, nodes=state.nodes, fvals=state.fvals, kernel=state.kernel,
            measure=self.measure, weights=weights, log_evidence=log_ev, jitter=jitter,
            result=state.result, trace=state.trace, mask=state.mask,
        )  # fmt: skip
        if throw:
            res = state.result.error_if(res, state.result != RESULTS.successful)
        return res
