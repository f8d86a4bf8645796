"""The jit-compiled driver of adaptive Bayesian quadrature."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import optax
from jaxtyping import Array, PRNGKeyArray

from ._bayesquad_from_data import BQResult
from ._kernels import AbstractKernel
from ._loop import BayesQuadLoop
from ._measures import AbstractMeasure


@eqx.filter_jit
def _run(loop: BayesQuadLoop, f: Callable, key: PRNGKeyArray, throw: bool) -> BQResult:
    return loop.result(loop.run(f, key=key), throw=throw)


def bayesquad(
    f: Callable[[Array], Array],
    *,
    measure: AbstractMeasure,
    kernel: AbstractKernel | None = None,
    num_evals: int,
    policy: str,
    key: PRNGKeyArray,
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
    throw: bool = True,
) -> BQResult:
    """Bayesian quadrature of ``f`` with node selection by ``policy``, compiled end to end.

    A GP prior on ``f`` gives a Gaussian belief over ``int f dmu``. Non-adaptive
    policies place all ``num_evals`` nodes at once: ``"bmc"`` draws them from the
    measure (Bayesian Monte Carlo), ``"sobol"`` uses a scrambled Sobol design and
    ``"lhs"`` a Latin hypercube, each transported to the measure. Adaptive policies
    start from ``num_initial`` design nodes and add ``batch_size`` nodes per step,
    each maximising (multi-start optax ascent) ``"us"`` (uncertainty sampling) or
    ``"ivr"`` (integral-variance reduction). Unless ``learn_hyperparameters=False``,
    the lengthscales and output scale are fitted by type-II maximum likelihood
    after the initial design (``fit_steps``) and refitted, warm-started, after
    every step (``refit_steps``). With ``model="wsabi"`` the non-negative integrand
    is modelled by the WSABI-L square-root warp (:func:`wsabi_from_data`).

    The loop is the :class:`BayesQuadLoop` init/step pair run under
    ``jax.lax.fori_loop`` inside one ``jit``; compiled code is reused for calls with
    the same ``f`` and configuration.

    Args:
        f: The integrand ``x [d] -> scalar`` (or ``-> [m]`` for ``m`` integrands that
            share nodes and kernel; ``model="gp"`` only). A JAX-traceable function.
        measure: A :class:`LebesgueMeasure` or :class:`GaussianMeasure`.
        kernel: The initial kernel; default ``ExpQuad`` with ARD lengthscales of half the
            measure's scale.
        num_evals: The total number of evaluations of ``f``.
        policy: ``"bmc"``, ``"sobol"``, ``"lhs"``, ``"us"`` or ``"ivr"``.
        key: A JAX PRNG key (designs, candidate points).
        batch_size: Nodes chosen per adaptive step.
        num_initial: Size of the initial design of adaptive policies; default
            ``min(num_evals // 2, max(4, 2 d))``.
        initial_design: ``"sobol"``, ``"lhs"`` or ``"bmc"``, for adaptive policies.
        model: ``"gp"`` (vanilla BQ) or ``"wsabi"`` (WSABI-L, non-negative ``f``).
        learn_hyperparameters: Fit the kernel by ML-II (default) or keep ``kernel``.
        fit_optimizer: An optax optimiser for ML-II on the log-parameters (default adam).
        fit_steps: ML-II steps after the initial design.
        refit_steps: Warm-started ML-II steps after each adaptive step.
        lengthscale_bounds: Lengthscales are kept in ``bounds * measure.scale``.
        num_candidates: Random candidates per acquisition maximisation.
        num_restarts: The best candidates that seed gradient ascent.
        acquisition_steps: Gradient-ascent steps per restart.
        acquisition_optimizer: An optax optimiser for the acquisition (default adam).
        jitter: The relative jitter tried first (see :func:`bayesquad_from_data`).
        throw: Raise if the run failed (NaN function values, ...), also under ``jit``.

    Returns:
        A :class:`BQResult` whose ``trace`` holds the belief after every step.

    Raises:
        ValueError: for unknown options, or an integrand returning the wrong shape.
        TypeError: for a kernel-measure pair without closed-form kernel means, or an
            integrand that cannot be called on one point.

    References: O'Hagan (1991); Rasmussen & Ghahramani, "Bayesian Monte Carlo", NeurIPS
    2003; Gunter et al., NeurIPS 2014; Gessner et al., UAI 2019.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax import quad
        >>> res = quad.bayesquad(lambda x: jnp.sin(3 * x[0]) + x[1] ** 2,
        ...     measure=quad.LebesgueMeasure([0.0, 0.0], [1.0, 1.0]), num_evals=32,
        ...     policy="sobol", key=jax.random.key(0))
        >>> exact = (1 - jnp.cos(3.0)) / 3 + 1 / 3
        >>> bool(abs(res.mean - exact) < 1e-3)
        True
    """
    loop = BayesQuadLoop(
        measure=measure, kernel=kernel, num_evals=num_evals, policy=policy,
        batch_size=batch_size, num_initial=num_initial, initial_design=initial_design,
        model=model, learn_hyperparameters=learn_hyperparameters, fit_optimizer=fit_optimizer,
        fit_steps=fit_steps, refit_steps=refit_steps, lengthscale_bounds=lengthscale_bounds,
        num_candidates=num_candidates, num_restarts=num_restarts,
        acquisition_steps=acquisition_steps, acquisition_optimizer=acquisition_optimizer,
        jitter=jitter,
    )  # fmt: skip
    return _run(loop, f, key, throw)
