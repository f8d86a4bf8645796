"""One step of the ODE filter: preconditioned prediction, linearisation, calibration, update."""

from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp

from .. import randvars
from ._factorisations import Factorisation, rescale, rescale_conditional, scale_noise
from ._information import ODEInformation
from ._prior import iwp_preconditioner


class Discretisation(NamedTuple):
    """The prior over one step ``dt``, lifted onto the factorisation, in preconditioned form.

    ``A(dt) = S Ā S^{-1}`` and ``Q(dt) = S N N^T S`` with ``S = diag(scales)``,
    ``Ā = transition`` and the lower-triangular ``N = noise`` (it includes the
    IWP's ``c``, not the output scale). Unpack as ``scales, transition, noise``.
    """

    scales: jnp.ndarray
    transition: jnp.ndarray
    noise: jnp.ndarray

    def matrices(self):
        """``(A(dt), cholesky(Q(dt)))`` in the state's own coordinates (lifted shapes)."""
        s = self.scales
        return s[..., :, None] * self.transition / s[..., None, :], s[..., :, None] * self.noise


class StepContext(eqx.Module):
    """What every step needs: the layout and the lifted prior.

    For a step-independent prior (:class:`~probnum_jax.ode.IWP`) ``transition``
    and ``noise`` hold the lifted ``Ā`` and ``cholesky(Q̄)`` and
    :meth:`preconditioner` the step's scaling; every prior (also
    :class:`~probnum_jax.ode.IOUP`, :class:`~probnum_jax.ode.Matern`, whose
    ``transition`` and ``noise`` are ``None``) gives its step through
    :meth:`discretise`.
    """

    factorisation: Factorisation
    transition: object  # lifted Ā, or None for a step-dependent prior
    noise: object  # lifted cholesky(Q̄), or None for a step-dependent prior
    prior: object = None

    @classmethod
    def build(cls, solver, dim, dtype):
        fact = solver.make_factorisation(dim)
        solver.prior.check(solver.factorisation, dim)
        if not solver.prior.step_independent:
            return cls(fact, None, None, solver.prior)
        a, qs = solver.prior.transition(solver.num_derivatives, dtype)
        return cls(fact, fact.lift_matrix(a), fact.lift_matrix(qs), solver.prior)

    def preconditioner(self, dt):
        """The lifted diagonal ``T`` (as a vector) and the scalar ``c`` of :func:`iwp_preconditioner`."""
        scales, c = iwp_preconditioner(dt, self.factorisation.num_derivatives)
        return self.factorisation.lift_diagonal(scales), c

    def discretise(self, dt) -> Discretisation:
        """The prior's transition over ``dt``: ``scales, transition, noise = ctx.discretise(dt)``.

        Step-independent priors cost one scaling; the others compute
        ``(Ā(dt), cholesky(Q̄(dt)))`` (see :mod:`probnum_jax.ode._discretise`).
        """
        scales, c = self.preconditioner(dt)
        if self.transition is not None:
            return Discretisation(scales, self.transition, scale_noise(self.noise, c))
        transition, noise = self.prior.discretise(dt, self.factorisation)
        return Discretisation(scales, transition, scale_noise(noise, c))


def _extrapolate_mean(disc: Discretisation, rv):
    def kernel(m, L, a, s):
        s = s.reshape(s.shape + (1,) * (m.ndim - 1))
        return s * (a @ (m / s))

    return rv.lift(kernel, disc.transition, disc.scales)


def _predict(disc: Discretisation, rv, output_scale):
    noise = scale_noise(disc.noise, output_scale)
    predicted = randvars.predict(rescale(rv, 1 / disc.scales), disc.transition, noise)
    return rescale(predicted, disc.scales)


def extrapolate_mean(ctx: StepContext, rv, dt):
    """The predicted mean ``A(dt) m`` (no covariance)."""
    return _extrapolate_mean(ctx.discretise(dt), rv)


def predict(ctx: StepContext, rv, dt, output_scale):
    """``p(x(t + dt))`` from ``p(x(t))`` under the prior, in preconditioned coordinates."""
    return _predict(ctx.discretise(dt), rv, output_scale)


def predict_backward(ctx: StepContext, rv, dt, output_scale):
    """Like :func:`predict`, and also the backward conditional ``p(x(t) | x(t + dt))``."""
    scales, transition, noise = ctx.discretise(dt)
    noise = scale_noise(noise, output_scale)
    predicted, cond = randvars.backward_conditional(rescale(rv, 1 / scales), transition, noise)
    return rescale(predicted, scales), rescale_conditional(cond, scales)


class StepOutcome(eqx.Module):
    """The result of one attempted step."""

    posterior: randvars.Normal  # filtering distribution at t + dt
    error: jnp.ndarray  # [d] local error estimate, in units of y
    output_scale: jnp.ndarray  # the scale used for the prediction
    local_scale: jnp.ndarray  # the local quasi-MLE of the output scale
    mahalanobis: jnp.ndarray  # residual^T S^-1 residual, for the global MLE
    log_likelihood: jnp.ndarray  # log N(0 | residual marginal)


def linearise_and_predict(ctx: StepContext, solver, vector_field, t, rv, dt, args, fixed_output_scale):
    """Linearise the ODE at the extrapolated mean at ``t + dt``, calibrate, and predict.

    The local output scale is ``σ̂² = r^T (H Q(dt) H^T)^{-1} r / d`` (Schober et
    al. 2019; Bosch, Hennig & Tronarp 2021); ``solver.calibration == "dynamic"``
    predicts with it, otherwise with ``fixed_output_scale``. Returns the
    observation model ``obs``, the residual ``r``, the residual's noise-only
    marginal, the local and the used output scale, and the prediction.
    """
    fact = ctx.factorisation
    disc = ctx.discretise(dt)  # once per step: for IOUP/Matérn it is not free
    mean = _extrapolate_mean(disc, rv)
    if isinstance(vector_field, ODEInformation):  # a DAE or a higher-order ODE
        obs, residual = vector_field.linearise(solver, fact, t + dt, mean, args)
    else:
        f_value, jac = solver.jacobian(lambda y: vector_field(t + dt, y, args), fact.derivative(mean, 0))
        obs, residual = fact.observation(mean, f_value, jac)

    process_noise = rescale(rv.replace(jnp.zeros_like(mean), disc.noise), disc.scales)
    residual_noise = randvars.predict(process_noise, obs)
    local_scale = jnp.sqrt(randvars.mahalanobis(residual_noise, residual) / fact.num_residual_dof())
    # A residual that rounds to zero would give a singular prediction: floor the scale.
    local_scale = jnp.maximum(local_scale, jnp.finfo(mean.dtype).eps)
    output_scale = local_scale if solver.calibration == "dynamic" else fixed_output_scale
    predicted = _predict(disc, rv, output_scale)
    return obs, residual, residual_noise, local_scale, output_scale, predicted


def attempt_step(ctx: StepContext, solver, vector_field, t, rv, dt, args, fixed_output_scale):
    """Predict to ``t + dt``, linearise the ODE there, calibrate and update.

    The error estimate ``dt · σ̂ · sqrt(diag(H Q(dt) H^T))`` follows Schober et
    al. (2019) and Bosch, Hennig & Tronarp (2021), "Calibrated adaptive
    probabilistic ODE solvers"; see :func:`linearise_and_predict` for ``σ̂``.
    """
    obs, residual, residual_noise, local_scale, output_scale, predicted = linearise_and_predict(
        ctx, solver, vector_field, t, rv, dt, args, fixed_output_scale
    )
    # For a nu-th order ODE the residual is a nu-th derivative: dt**nu maps it to units of y.
    order = vector_field.order if isinstance(vector_field, ODEInformation) else 1
    error = dt**order * ctx.factorisation.residual_std(residual_noise.scale(local_scale))
    marginal, cond = randvars.condition(predicted, obs)
    data = marginal.mean - residual  # observe H x = H m - r, i.e. a zero linearised residual
    posterior = cond(data)
    mahalanobis = randvars.mahalanobis(marginal, data)
    log_likelihood = marginal.logpdf(data)
    return StepOutcome(posterior, error, output_scale, local_scale, mahalanobis, log_likelihood)
