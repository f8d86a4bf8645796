"""Samplers for score-based diffusion: reverse SDE, predictor-corrector, ODE solvers (classical and probabilistic)."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .. import ode
from ..ode import RESULTS
from . import _checks
from ._sde import EDM, AbstractSDE

FIXED_STEP_SAMPLERS = ("euler_maruyama", "pc", "heun")
DEFAULT_NUM_STEPS = {"euler_maruyama": 1000, "pc": 500, "heun": 18}


class SampleInfo(eqx.Module):
    """Diagnostics of :func:`sample`, one entry per sample.

    Attributes:
        nfe: score evaluations spent on each sample, counted honestly (Taylor
            initialisation, rejected steps and Jacobian columns included).
        num_steps: solver steps (accepted and rejected) per sample.
        std: the probabilistic solver's numerical standard deviation of every
            coordinate of every sample, ``[num_samples, *shape]``; ``None`` for
            the other samplers.
        result: per-sample :class:`probnum_jax.ode.RESULTS`.
    """

    nfe: Int[Array, " n"]
    num_steps: Int[Array, " n"]
    std: Float[Array, "n ..."] | None
    result: RESULTS


def sample(
    score_fn,
    sde: AbstractSDE,
    *,
    key,
    shape,
    num_samples: int,
    solver="euler_maruyama",
    num_steps: int | None = None,
    atol=1e-4,
    rtol=1e-4,
    snr: float = 0.16,
    num_corrector_steps: int = 1,
    max_steps: int = 4096,
    dtype=None,
    throw: bool = True,
):
    """Draw ``num_samples`` samples by running the diffusion backwards from its prior.

    Samplers (``solver``):

    * ``"euler_maruyama"``: the reverse-time SDE ``dx = [a x - g^2 score] dt + g dw``
      (Anderson 1982; Song et al. 2021) on ``num_steps`` uniform steps; the last
      step returns its mean (no noise is added at ``t_min``).
    * ``"pc"``: predictor-corrector (Song et al. 2021, Alg. 1-2): each step is
      ``num_corrector_steps`` Langevin corrector steps with signal-to-noise
      ratio ``snr``, then a reverse-diffusion (Euler-Maruyama) predictor step.
    * ``"heun"``: the deterministic sampler of Karras et al. (2022, Alg. 1):
      Heun's method on the probability-flow ODE on the rho = 7 time grid
      (``sde.time_grid`` for :class:`EDM`, which ends with an Euler step to
      ``t = 0``; otherwise the noise-to-signal ratios ``sigma(t) / alpha(t)`` are
      rho-spaced between ``t_max`` and ``t_min`` and mapped back to the SDE's time).
    * a diffrax explicit Runge-Kutta solver (``diffrax.Tsit5()``, ``diffrax.Heun()``,
      ...): the probability-flow ODE with adaptive steps (``PIDController(rtol, atol)``).
    * a probabilistic ODE solver (``ode.EK0(...)``, ``ode.EK1(factorisation="blockdiag")``):
      the probability-flow ODE solved by a Gaussian ODE filter with adaptive
      steps from its local error estimate; ``info.std`` is the filter's
      posterior standard deviation of each sample at ``t_min``, the
      numerical error bar of that sample.

    Every sampler is jit-compiled and vmapped over the samples; the adaptive
    ones choose each sample's step sizes separately. The compilation is cached
    per ``score_fn`` object (and SDE, solver, shapes): pass the same function,
    not a fresh ``lambda``, to reuse it across calls.

    Arguments:
        score_fn: ``score_fn(x, t)`` for ONE sample ``x`` of shape ``shape`` and
            a scalar time; returns the score ``grad_x log p_t(x)`` of that shape.
        sde: the forward SDE (:class:`VPSDE`, :class:`SubVPSDE`, :class:`VESDE`, :class:`EDM`).
        key: a JAX random key (the prior samples and the SDE noise).
        shape: the shape of one sample.
        num_samples: how many samples, ``>= 1``.
        solver: see above.
        num_steps: steps of the fixed-step samplers (defaults 1000, 500, 18).
        atol, rtol: tolerances of the adaptive samplers.
        snr: the corrector's signal-to-noise ratio (``"pc"``).
        num_corrector_steps: Langevin steps per predictor step (``"pc"``).
        max_steps: the step budget of the adaptive samplers.
        dtype: floating dtype of the samples (default: JAX's default float).
        throw: raise if any sample failed (a non-finite score, the step budget
            exhausted) instead of reporting it in ``info.result``.

    Returns:
        ``(x, info)``: samples ``[num_samples, *shape]`` and a :class:`SampleInfo`.

    Example:
        >>> import jax
        >>> from probnum_jax import diffusion, ode, problems
        >>> gmm, sde = problems.gmm_ring(), diffusion.VPSDE()
        >>> x, info = diffusion.sample(gmm.score_fn(sde), sde, key=jax.random.key(0), shape=(2,),
        ...                            num_samples=8, solver=ode.EK0(num_derivatives=2),
        ...                            atol=1e-3, rtol=1e-3)
        >>> x.shape, info.std.shape
        ((8, 2), (8, 2))
    """
    _checks.check_sde(sde)
    _checks.check_count("num_samples", num_samples)
    shape = tuple(shape)
    dtype = jnp.result_type(float) if dtype is None else dtype
    _checks.check_score_fn(score_fn, shape, dtype)
    if isinstance(solver, str):
        if solver not in FIXED_STEP_SAMPLERS:
            raise ValueError(
                f"solver must be one of {FIXED_STEP_SAMPLERS}, a diffrax explicit Runge-Kutta "
                f"solver or an ode.EK0/EK1, got {solver!r}."
            )
        num_steps = DEFAULT_NUM_STEPS[solver] if num_steps is None else num_steps
        _checks.check_count("num_steps", num_steps, 2 if solver == "heun" else 1)
        _checks.check_count("num_corrector_steps", num_corrector_steps, 0)
        _checks.check_positive("snr", snr)
    elif isinstance(solver, (ode.AbstractSolver, diffrax.AbstractERK)):
        _checks.check_positive("atol", atol)
        _checks.check_positive("rtol", rtol)
        _checks.check_count("max_steps", max_steps)
    else:
        raise TypeError(
            f"solver must be one of {FIXED_STEP_SAMPLERS}, a diffrax explicit Runge-Kutta solver "
            f"(AbstractERK) or an ode.EK0/EK1, got {type(solver).__name__}."
        )
    k_prior, k_noise = jax.random.split(key)
    x_prior = sde.prior_sample(k_prior, (num_samples,) + shape, dtype=dtype)
    keys = jax.random.split(k_noise, num_samples)
    config = dict(num_steps=num_steps, snr=snr, num_corrector_steps=num_corrector_steps,
                  max_steps=max_steps)
    x, info = _sample(score_fn, sde, solver, x_prior, keys, jnp.asarray(atol, dtype),
                      jnp.asarray(rtol, dtype), config)
    if throw:
        x = info.result.error_if(x, info.result != RESULTS.successful)
    return x, info


@eqx.filter_jit
def _sample(score_fn, sde, solver, x_prior, keys, atol, rtol, config):
    if isinstance(solver, str):
        run = {"euler_maruyama": _euler_maruyama, "pc": _predictor_corrector, "heun": _heun}[solver]
        one = lambda x, k: run(score_fn, sde, x, k, **config)  # noqa: E731
    elif isinstance(solver, ode.AbstractSolver):
        one = lambda x, k: _probabilistic(score_fn, sde, solver, x, atol, rtol, config["max_steps"])  # noqa: E731
    else:
        one = lambda x, k: _diffrax(score_fn, sde, solver, x, atol, rtol, config["max_steps"])  # noqa: E731
    return jax.vmap(one)(x_prior, keys)


def _finite_result(x):
    return RESULTS.where(jnp.all(jnp.isfinite(x)), RESULTS.successful, RESULTS.nonfinite)


def _fixed_info(x, nfe, num_steps):
    return SampleInfo(nfe=jnp.asarray(nfe, jnp.int32), num_steps=jnp.asarray(num_steps, jnp.int32),
                      std=None, result=_finite_result(x))


def _uniform_grid(sde, num_steps, dtype):
    return jnp.linspace(sde.t_max, sde.t_min, num_steps + 1, dtype=dtype)


def _euler_maruyama(score_fn, sde, x, key, *, num_steps, **_):
    """The reverse-time SDE on a uniform grid: predictor-corrector without corrector steps."""
    return _predictor_corrector(score_fn, sde, x, key, num_steps=num_steps, snr=0.0, num_corrector_steps=0)


def _langevin(score_fn, sde, x, t, key, snr):
    """One Langevin corrector step ``x + eps score + sqrt(2 eps) noise`` (Song et al. 2021, Alg. 5).

    Song et al. set ``eps = 2 (snr |noise| / |score|)^2`` with norms averaged
    over a batch. Per sample, and in low dimension, ``|score|`` can be near
    zero (at a mode) and ``eps`` explodes; we use the norms' expectations under
    the forward marginal instead, ``|noise|^2 ~ d`` and ``|score|^2 ~ d / sigma(t)^2``,
    so ``eps = 2 (snr sigma(t))^2``.
    """
    grad = score_fn(x, t)
    noise = jax.random.normal(key, x.shape, x.dtype)
    eps = 2 * (snr * sde.std(t)) ** 2
    return x + eps * grad + jnp.sqrt(2 * eps) * noise


def _predictor_corrector(score_fn, sde, x, key, *, num_steps, snr, num_corrector_steps, **_):
    drift = sde.reverse_drift(score_fn)
    ts = _uniform_grid(sde, num_steps, x.dtype)

    def step(x, inputs):
        t, t_next, k = inputs
        k_pred, *k_corr = jax.random.split(k, num_corrector_steps + 1)
        for kc in k_corr:
            x = _langevin(score_fn, sde, x, t, kc, snr)
        h = t_next - t
        mean = x + h * drift(x, t)
        noise = jax.random.normal(k_pred, x.shape, x.dtype)
        return mean + jnp.sqrt(-h * sde.diffusion_squared(t)) * noise, mean

    _, means = jax.lax.scan(step, x, (ts[:-1], ts[1:], jax.random.split(key, num_steps)))
    x = means[-1]
    return x, _fixed_info(x, num_steps * (1 + num_corrector_steps), num_steps)


def rho_grid(sde, num_steps, dtype=None):
    """``num_steps`` times from ``t_max`` to ``t_min`` whose noise levels are uniform in ``sigma^(1/rho)``.

    This is Karras et al.'s (2022, eq. 5) grid with ``rho = 7``. The noise
    level of a scaled SDE is its noise-to-signal ratio ``sigma(t) / alpha(t)``
    (their Sec. 4: for VP it grows without bound, whereas ``sigma(t)`` saturates
    at 1); the grid is mapped to the SDE's own time by inverting that
    increasing function with bisection.
    """
    rho = 7.0
    level = lambda t: sde.std(t) / sde.scale(t)  # noqa: E731
    i = jnp.arange(num_steps, dtype=dtype) / (num_steps - 1)
    lo, hi = level(sde.t_min) ** (1 / rho), level(sde.t_max) ** (1 / rho)
    sigmas = (hi + i * (lo - hi)) ** rho

    def bisect(_, bounds):
        a, b = bounds
        mid = 0.5 * (a + b)
        below = level(mid) < sigmas
        return jnp.where(below, mid, a), jnp.where(below, b, mid)

    a = jnp.full_like(sigmas, sde.t_min)
    a, b = jax.lax.fori_loop(0, 60, bisect, (a, jnp.full_like(sigmas, sde.t_max)))
    return (0.5 * (a + b)).at[0].set(sde.t_max).at[-1].set(sde.t_min)


def _heun(score_fn, sde, x, key, *, num_steps, **_):
    del key
    flow = sde.probability_flow(score_fn)
    to_zero = isinstance(sde, EDM)
    ts = sde.time_grid(num_steps).astype(x.dtype) if to_zero else rho_grid(sde, num_steps + 1, x.dtype)

    def step(x, inputs):
        t, t_next = inputs
        d = flow(t, x, None)
        x_euler = x + (t_next - t) * d
        return x + (t_next - t) * 0.5 * (d + flow(t_next, x_euler, None)), None

    # EDM's grid ends at t = 0, where the flow is singular: the last step is Euler (Alg. 1, l. 6).
    heun_ts = ts[:-1] if to_zero else ts
    x, _ = jax.lax.scan(step, x, (heun_ts[:-1], heun_ts[1:]))
    if to_zero:
        x = x + (ts[-1] - ts[-2]) * flow(ts[-2], x, None)
    nfe = 2 * num_steps - 1 if to_zero else 2 * num_steps
    return x, _fixed_info(x, nfe, num_steps)


def _flat_flow(score_fn, sde, shape, sign):
    """The probability-flow ODE on flattened samples; ``sign=-1`` runs it in reversed time ``s = t_max - t``."""
    flow = sde.probability_flow(score_fn)
    if sign > 0:
        return lambda t, y, args: flow(t, y.reshape(shape), args).reshape(-1)
    return lambda s, y, args: -flow(sde.t_max - s, y.reshape(shape), args).reshape(-1)


def _probabilistic(score_fn, sde, solver, x, atol, rtol, max_steps):
    shape = x.shape
    sol = ode.solve(
        _flat_flow(score_fn, sde, shape, -1), x.reshape(-1), t0=0.0, t1=sde.t_max - sde.t_min,
        solver=solver, atol=atol, rtol=rtol, max_steps=max_steps, throw=False,
    )
    mean, std = sol.mean[-1].reshape(shape), sol.std[-1].reshape(shape)
    result = RESULTS.where(sol.result == RESULTS.successful, _finite_result(mean), sol.result)
    info = SampleInfo(nfe=sol.num_f_evals, num_steps=sol.num_steps + sol.num_rejected, std=std,
                      result=result)
    return mean, info


def diffrax_nfe(solver, num_steps):
    """Vector-field evaluations of an adaptive diffrax explicit Runge-Kutta solve.

    Each step (accepted or rejected) costs ``stages - fsal`` evaluations, and
    FSAL solvers evaluate once more at the start; this equals a run-time count
    of the calls (tested with a host callback in the vector field).
    """
    tableau = solver.tableau
    fsal = int(tableau.fsal)
    return num_steps * (len(tableau.c) + 1 - fsal) + fsal


def _diffrax(score_fn, sde, solver, x, atol, rtol, max_steps):
    shape = x.shape
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(_flat_flow(score_fn, sde, shape, +1)), solver, t0=sde.t_max, t1=sde.t_min,
        dt0=None, y0=x.reshape(-1), stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps, throw=False,
    )
    x = sol.ys[-1].reshape(shape)
    steps = sol.stats["num_steps"]
    ok = sol.result == diffrax.RESULTS.successful
    result = RESULTS.where(
        ok,
        _finite_result(x),
        RESULTS.where(steps >= max_steps, RESULTS.max_steps_reached, RESULTS.nonfinite),
    )
    info = SampleInfo(nfe=jnp.asarray(diffrax_nfe(solver, steps), jnp.int32), num_steps=steps,
                      std=None, result=result)
    return x, info
