"""Linear forward SDEs of score-based diffusion: VP, sub-VP, VE and EDM.

Every SDE here is linear, ``dx = a(t) x dt + g(t) dw``, so its transition from
the data is Gaussian, ``x_t | x_0 ~ N(alpha(t) x_0, sigma(t)^2 I)``. The
samplers, the training loss and the likelihood only use that interface:
``scale`` (alpha), ``std`` (sigma), ``drift``, ``diffusion`` and the time range
``[t_min, t_max]``.

References:
    Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon, B. Poole.
    *Score-based generative modeling through stochastic differential
    equations.* ICLR 2021. (VP, sub-VP, VE; the probability-flow ODE.)

    T. Karras, M. Aittala, T. Aila, S. Laine. *Elucidating the design space of
    diffusion-based generative models.* NeurIPS 2022. (EDM.)
"""

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def _check_positive(name, value):
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}.")


def _check_less(lo_name, lo, hi_name, hi):
    if not lo < hi:
        raise ValueError(f"{lo_name} must be smaller than {hi_name}, got {lo_name}={lo!r}, {hi_name}={hi!r}.")


class AbstractSDE(eqx.Module):
    """A linear SDE ``dx = a(t) x dt + g(t) dw`` with Gaussian transitions from the data.

    Subclasses define the marginal ``scale(t)`` (alpha) and ``std(t)`` (sigma)
    of ``x_t | x_0 ~ N(alpha x_0, sigma^2 I)``, the drift coefficient ``a(t)``
    and the squared diffusion ``g(t)^2``; everything else follows.

    Attributes:
        t_min: where sampling stops (the probability-flow ODE is singular at 0).
        t_max: where sampling starts, from the prior.
    """

    t_min: eqx.AbstractVar[float]
    t_max: eqx.AbstractVar[float]

    @abc.abstractmethod
    def scale(self, t) -> Array:
        """``alpha(t)``: the mean of ``x_t | x_0`` is ``alpha(t) x_0``."""

    @abc.abstractmethod
    def std(self, t) -> Array:
        """``sigma(t)``: the standard deviation of ``x_t | x_0`` (per coordinate)."""

    @abc.abstractmethod
    def drift_coefficient(self, t) -> Array:
        """``a(t)`` in the drift ``a(t) x``."""

    @abc.abstractmethod
    def diffusion_squared(self, t) -> Array:
        """``g(t)^2``."""

    @abc.abstractmethod
    def prior_std(self) -> float:
        """The standard deviation of the (zero-mean, isotropic) prior at ``t_max``."""

    # Derived quantities --------------------------------------------------

    def marginal_mean(self, x0, t):
        """The mean ``alpha(t) x0`` of ``x_t`` given the data point ``x0``."""
        return self.scale(t) * x0

    def marginal_std(self, t):
        """The standard deviation ``sigma(t)`` of ``x_t`` given ``x0``."""
        return self.std(t)

    def perturb(self, x0, t, noise):
        """``x_t = alpha(t) x0 + sigma(t) noise`` (the forward transition in one go)."""
        return self.scale(t) * x0 + self.std(t) * noise

    def drift(self, x, t):
        """The forward drift ``a(t) x``."""
        return self.drift_coefficient(t) * x

    def diffusion(self, t):
        """The diffusion coefficient ``g(t)``."""
        return jnp.sqrt(self.diffusion_squared(t))

    def prior_sample(self, key, shape, *, dtype=None):
        """Draw from the prior ``N(0, prior_std^2 I)`` at ``t_max``; ``shape`` includes any batch axes."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        return self.prior_std() * jax.random.normal(key, shape, dtype)

    def prior_log_prob(self, x: Float[Array, "..."]) -> Array:
        """The log-density of one sample ``x`` (any shape) under the prior."""
        s = self.prior_std()
        n = x.size
        return -0.5 * jnp.sum((x / s) ** 2) - n * (jnp.log(s) + 0.5 * jnp.log(2 * jnp.pi))

    def probability_flow(self, score_fn):
        """The probability-flow vector field ``f(t, x, args) = a(t) x - g(t)^2 score(x, t) / 2``.

        Its solution from a prior sample at ``t_max`` back to ``t_min`` has the
        same marginals as the reverse SDE (Song et al. 2021, eq. 13). The
        vector field follows the diffrax convention ``f(t, y, args)``.
        """

        def vector_field(t, x, args):
            del args
            return self.drift(x, t) - 0.5 * self.diffusion_squared(t) * score_fn(x, t)

        return vector_field

    def reverse_drift(self, score_fn):
        """The drift of the reverse-time SDE, ``a(t) x - g(t)^2 score(x, t)`` (Anderson 1982)."""

        def drift(x, t):
            return self.drift(x, t) - self.diffusion_squared(t) * score_fn(x, t)

        return drift

    def score_model(self, net_fn):
        """Turn a network ``net_fn(params, x, t) -> x.shape`` into a score model ``(params, x, t) -> score``.

        The network predicts the noise: ``score = -net(x, t) / sigma(t)``, the
        parameterisation of Ho et al. (2020) and Song et al. (2021), which
        keeps the network's target at unit scale for every ``t``.
        """

        def model_fn(params, x, t):
            return -net_fn(params, x, t) / self.std(t)

        return model_fn

    def sample_time(self, key, num, *, t_min=1e-5, dtype=None):
        """Training times: uniform on ``[t_min, t_max]`` (Song et al. 2021)."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        return jax.random.uniform(key, (num,), dtype, minval=t_min, maxval=self.t_max)

    def loss_weight(self, t):
        """The default denoising-score-matching weight ``lambda(t) = sigma(t)^2`` (Song et al. 2021)."""
        return self.std(t) ** 2


class VPSDE(AbstractSDE):
    """The variance-preserving SDE ``dx = -beta(t) x / 2 dt + sqrt(beta(t)) dw`` (DDPM's limit).

    ``beta(t) = beta_min + t (beta_max - beta_min)`` on ``t in [0, 1]``; the
    marginals are ``alpha(t) = exp(-int_0^t beta / 2)`` and
    ``sigma(t)^2 = 1 - alpha(t)^2``; the prior is ``N(0, I)``. Defaults as in
    Song et al. (2021).

    Example:
        >>> from probnum_jax import diffusion
        >>> sde = diffusion.VPSDE()
        >>> round(float(sde.std(1.0)), 4)
        1.0
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-3
    t_max: float = 1.0

    def __check_init__(self):
        _check_positive("beta_min", self.beta_min)
        _check_positive("beta_max", self.beta_max)
        _check_less("beta_min", self.beta_min, "beta_max", self.beta_max)
        _check_positive("t_min", self.t_min)
        _check_less("t_min", self.t_min, "t_max", self.t_max)

    def beta(self, t):
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def _log_scale(self, t):
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def scale(self, t):
        return jnp.exp(self._log_scale(t))

    def std(self, t):
        return jnp.sqrt(-jnp.expm1(2 * self._log_scale(t)))

    def drift_coefficient(self, t):
        return -0.5 * self.beta(t)

    def diffusion_squared(self, t):
        return self.beta(t)

    def prior_std(self):
        return 1.0


class SubVPSDE(VPSDE):
    """The sub-variance-preserving SDE of Song et al. (2021).

    Same drift as :class:`VPSDE`; the diffusion is
    ``g(t)^2 = beta(t) (1 - exp(-2 int_0^t beta))``, so
    ``sigma(t) = 1 - alpha(t)^2``, below the VP standard deviation at every ``t``.

    Example:
        >>> from probnum_jax import diffusion
        >>> sde = diffusion.SubVPSDE()
        >>> bool(sde.std(0.5) < diffusion.VPSDE().std(0.5))
        True
    """

    def std(self, t):
        return -jnp.expm1(2 * self._log_scale(t))

    def diffusion_squared(self, t):
        return self.beta(t) * -jnp.expm1(4 * self._log_scale(t))


class VESDE(AbstractSDE):
    """The variance-exploding SDE ``dx = sqrt(d[s(t)^2]/dt) dw``, ``s(t) = sigma_min (sigma_max/sigma_min)^t``.

    The transition is exact: ``alpha = 1`` and ``sigma(t)^2 = s(t)^2 - sigma_min^2``
    (Song et al. (2021) use ``s(t)`` itself, which differs by ``sigma_min``; the
    exact form keeps the probability-flow ODE consistent with the marginals).
    The prior is ``N(0, (sigma_max^2 - sigma_min^2) I)``.

    Example:
        >>> from probnum_jax import diffusion
        >>> sde = diffusion.VESDE(sigma_min=0.01, sigma_max=50.0)
        >>> round(float(sde.std(1.0)), 3)
        50.0
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    t_min: float = 1e-5
    t_max: float = 1.0

    def __check_init__(self):
        _check_positive("sigma_min", self.sigma_min)
        _check_positive("sigma_max", self.sigma_max)
        _check_less("sigma_min", self.sigma_min, "sigma_max", self.sigma_max)
        _check_positive("t_min", self.t_min)
        _check_less("t_min", self.t_min, "t_max", self.t_max)

    def _log_ratio(self):
        return math.log(self.sigma_max / self.sigma_min)

    def _s(self, t):
        return self.sigma_min * jnp.exp(t * self._log_ratio())

    def scale(self, t):
        return jnp.ones_like(jnp.asarray(t, float))

    def std(self, t):
        return self.sigma_min * jnp.sqrt(jnp.expm1(2 * t * self._log_ratio()))

    def drift_coefficient(self, t):
        return jnp.zeros_like(jnp.asarray(t, float))

    def diffusion_squared(self, t):
        return 2 * self._log_ratio() * self._s(t) ** 2

    def prior_std(self):
        return math.sqrt(self.sigma_max**2 - self.sigma_min**2)


class EDM(AbstractSDE):
    """The EDM parameterisation of Karras et al. (2022): ``x_t = x_0 + t noise``, so ``sigma(t) = t``.

    The SDE is ``dx = sqrt(2t) dw``; time is the noise level, running from
    ``t_max = sigma_max`` down to ``t_min = sigma_min``, and the probability-flow
    ODE is ``dx/dt = -t score(x, t) = (x - D(x; t)) / t`` with the denoiser ``D``.

    :meth:`score_model` applies EDM's preconditioning (Table 1, with
    ``sigma_data``); :meth:`sample_time` draws ``ln t ~ N(p_mean, p_std^2)`` and
    :meth:`loss_weight` is EDM's ``lambda(sigma) = (sigma^2 + sigma_data^2) /
    (sigma sigma_data)^2`` expressed for the score (times ``sigma^4``);
    :meth:`time_grid` is the rho-spaced grid of the EDM Heun sampler.

    Example:
        >>> from probnum_jax import diffusion
        >>> sde = diffusion.EDM()
        >>> grid = sde.time_grid(18)
        >>> float(grid[0]), round(float(grid[-2]), 3), float(grid[-1])
        (80.0, 0.002, 0.0)
    """

    sigma_min: float = 0.002
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    rho: float = 7.0
    p_mean: float = -1.2
    p_std: float = 1.2

    def __check_init__(self):
        for name in ("sigma_min", "sigma_max", "sigma_data", "rho", "p_std"):
            _check_positive(name, getattr(self, name))
        _check_less("sigma_min", self.sigma_min, "sigma_max", self.sigma_max)

    @property
    def t_min(self):
        return self.sigma_min

    @property
    def t_max(self):
        return self.sigma_max

    def scale(self, t):
        return jnp.ones_like(jnp.asarray(t, float))

    def std(self, t):
        return jnp.asarray(t, float)

    def drift_coefficient(self, t):
        return jnp.zeros_like(jnp.asarray(t, float))

    def diffusion_squared(self, t):
        return 2 * jnp.asarray(t, float)

    def prior_std(self):
        return self.sigma_max

    def score_model(self, net_fn):
        """EDM's preconditioned denoiser ``D = c_skip x + c_out F(c_in x, c_noise)``, returned as a score ``(D - x) / t^2``."""
        sd = self.sigma_data

        def model_fn(params, x, t):
            t = jnp.asarray(t, x.dtype)
            c_skip = sd**2 / (t**2 + sd**2)
            c_out = t * sd / jnp.sqrt(t**2 + sd**2)
            c_in = 1 / jnp.sqrt(t**2 + sd**2)
            c_noise = jnp.log(t) / 4
            denoised = c_skip * x + c_out * net_fn(params, c_in * x, c_noise)
            return (denoised - x) / t**2

        return model_fn

    def sample_time(self, key, num, *, t_min=None, dtype=None):
        """Training noise levels ``ln t ~ N(p_mean, p_std^2)`` (EDM, Table 1)."""
        del t_min
        dtype = jnp.result_type(float) if dtype is None else dtype
        return jnp.exp(self.p_mean + self.p_std * jax.random.normal(key, (num,), dtype))

    def loss_weight(self, t):
        sd = self.sigma_data
        return (t**2 + sd**2) * t**2 / sd**2

    def time_grid(self, num_steps: int):
        """The rho-spaced noise levels ``t_0 = sigma_max > ... > t_{N-1} = sigma_min``, then ``t_N = 0`` (EDM eq. 5)."""
        i = jnp.arange(num_steps) / (num_steps - 1)
        lo, hi = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        grid = (hi + i * (lo - hi)) ** self.rho
        return jnp.concatenate([grid, jnp.zeros(1, grid.dtype)])
