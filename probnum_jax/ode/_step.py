"""One step of the ODE filter: preconditioned prediction, linearisation, calibration, update."""

import equinox as eqx
import jax.numpy as jnp

from .. import randvars
from ._factorisations import Factorisation, rescale, rescale_conditional, scale_noise
from ._prior import iwp_preconditioner


class StepContext(eqx.Module):
    """What every step needs: the layout and the lifted, step-independent prior."""

    factorisation: Factorisation
    transition: object  # lifted Ā
    noise: object  # lifted cholesky(Q̄)

    @classmethod
    def build(cls, solver, dim, dtype):
        fact = solver.make_factorisation(dim)
        a, qs = solver.prior.transition(solver.num_derivatives, dtype)
        return cls(fact, fact.lift_matrix(a), fact.lift_matrix(qs))

    def preconditioner(self, dt):
        scales, c = iwp_preconditioner(dt, self.factorisation.num_derivatives)
        return self.factorisation.lift_diagonal(scales), c


def extrapolate_mean(ctx: StepContext, rv, dt):
    """The predicted mean ``A(dt) m`` (no covariance)."""
    scales, _ = ctx.preconditioner(dt)

    def kernel(m, L, a, s):
        s = s.reshape(s.shape + (1,) * (m.ndim - 1))
        return s * (a @ (m / s))

    return rv.lift(kernel, ctx.transition, scales)


def predict(ctx: StepContext, rv, dt, output_scale):
    """``p(x(t + dt))`` from ``p(x(t))`` under the prior, in preconditioned coordinates."""
    scales, c = ctx.preconditioner(dt)
    noise = scale_noise(ctx.noise, c * output_scale)
    predicted = randvars.predict(rescale(rv, 1 / scales), ctx.transition, noise)
    return rescale(predicted, scales)


def predict_backward(ctx: StepContext, rv, dt, output_scale):
    """Like :func:`predict`, and also the backward conditional ``p(x(t) | x(t + dt))``."""
    scales, c = ctx.preconditioner(dt)
    noise = scale_noise(ctx.noise, c * output_scale)
    predicted, cond = randvars.backward_conditional(rescale(rv, 1 / scales), ctx.transition, noise)
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
    mean = extrapolate_mean(ctx, rv, dt)
    f_value, jac = solver.jacobian(lambda y: vector_field(t + dt, y, args), fact.derivative(mean, 0))
    obs, residual = fact.observation(mean, f_value, jac)

    scales, c = ctx.preconditioner(dt)
    process_noise = rescale(rv.replace(jnp.zeros_like(mean), scale_noise(ctx.noise, c)), scales)
    residual_noise = randvars.predict(process_noise, obs)
    local_scale = jnp.sqrt(randvars.mahalanobis(residual_noise, residual) / fact.num_residual_dof())
    # A residual that rounds to zero would give a singular prediction: floor the scale.
    local_scale = jnp.maximum(local_scale, jnp.finfo(mean.dtype).eps)
    output_scale = local_scale if solver.calibration == "dynamic" else fixed_output_scale
    predicted = predict(ctx, rv, dt, output_scale)
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
    error = dt * ctx.factorisation.residual_std(residual_noise.scale(local_scale))
    marginal, cond = randvars.condition(predicted, obs)
    data = marginal.mean - residual  # observe H x = H m - r, i.e. a zero linearised residual
    posterior = cond(data)
    mahalanobis = randvars.mahalanobis(marginal, data)
    log_likelihood = marginal.logpdf(data)
    return StepOutcome(posterior, error, output_scale, local_scale, mahalanobis, log_likelihood)
