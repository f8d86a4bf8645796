"""Convergence diagnostics of several Markov chains: split-R-hat and effective sample size.

Both take draws ``[num_chains, num_draws, ...]`` and return one value per
trailing index. They follow Gelman et al. (2013), *Bayesian Data Analysis*,
3rd ed., Sec. 11.4-11.5, with the rank-normalisation and the multi-chain
autocorrelation estimate of Vehtari, Gelman, Simpson, Carpenter and Bürkner
(2021), "Rank-normalization, folding, and localization: an improved R-hat for
assessing convergence of MCMC", *Bayesian Analysis* 16(2); the sum of
autocorrelations is truncated with Geyer's (1992) initial monotone sequence.
"""

import functools

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtri
from jaxtyping import Array, Float


def _check_chains(chains, name="chains"):
    chains = jnp.asarray(chains)
    if chains.ndim < 2:
        raise ValueError(f"{name} must have shape [num_chains, num_draws, ...], got shape {chains.shape}.")
    if chains.shape[1] < 4:
        raise ValueError(f"{name} must have at least 4 draws per chain (axis 1), got shape {chains.shape}.")
    if not jnp.issubdtype(chains.dtype, jnp.floating):
        chains = chains.astype(float)
    return chains


def _split(chains):
    """Halve every chain (dropping the middle draw of an odd length): ``[2 m, n // 2, ...]``."""
    half = chains.shape[1] // 2
    return jnp.concatenate([chains[:, :half], chains[:, -half:]], axis=0)


def _rank_normalise(chains):
    """Normal scores ``Phi^{-1}((r - 3/8) / (S + 1/4))`` of the pooled ranks ``r`` (Vehtari et al., 2021, eq. 14)."""
    shape = chains.shape
    flat = chains.reshape((shape[0] * shape[1],) + shape[2:])
    ranks = jnp.argsort(jnp.argsort(flat, axis=0), axis=0) + 1.0
    return ndtri((ranks - 0.375) / (flat.shape[0] + 0.25)).reshape(shape)


def _rhat(chains):
    n = chains.shape[1]
    means = jnp.mean(chains, axis=1)
    between = n * jnp.var(means, axis=0, ddof=1)
    within = jnp.mean(jnp.var(chains, axis=1, ddof=1), axis=0)
    var_plus = (n - 1) / n * within + between / n
    return jnp.sqrt(var_plus / within)


def rhat(chains: Float[Array, "m n ..."], *, rank_normalise: bool = False) -> Float[Array, "..."]:
    """Split-R-hat, the potential scale reduction of several chains (Gelman et al., 2013, Sec. 11.4).

    Each chain is split in half; with ``m`` halves of ``n`` draws, the
    within-half variance ``W`` and the between-half variance ``B / n`` give
    ``R-hat = sqrt(((n - 1) / n W + B / n) / W)``. Values near 1 (below about
    1.01, Vehtari et al., 2021) are consistent with convergence; chains stuck
    in different regions give values well above 1. With ``rank_normalise``, the
    draws are first replaced by the normal scores of their pooled ranks, and the
    result is the maximum of that "bulk" R-hat and the one of the folded draws
    ``|x - median|`` ("tail"), as recommended by Vehtari et al. (2021).

    Args:
        chains: draws ``[num_chains, num_draws, ...]`` with ``num_draws >= 4``.
        rank_normalise: use the rank-normalised, folded R-hat.

    Returns:
        R-hat for every trailing index, shape ``chains.shape[2:]``.

    Example:
        >>> import numpy as np
        >>> from probnum_jax.posteriors import gibbs
        >>> draws = np.random.default_rng(0).normal(size=(4, 1000))
        >>> bool(abs(gibbs.rhat(draws) - 1.0) < 0.01)
        True
        >>> bool(gibbs.rhat(draws + np.arange(4.0)[:, None]) > 1.5)
        True
    """
    return _rhat_jit(_check_chains(chains), rank_normalise)


@functools.partial(jax.jit, static_argnums=1)
def _rhat_jit(chains, rank_normalise):
    chains = _split(chains)
    if not rank_normalise:
        return _rhat(chains)
    bulk = _rhat(_rank_normalise(chains))
    folded = jnp.abs(chains - jnp.median(chains, axis=(0, 1)))
    return jnp.maximum(bulk, _rhat(_rank_normalise(folded)))


def _autocovariance(x):
    """Autocovariances of every chain along axis 1 (biased, ``1 / n``) by FFT."""
    n = x.shape[1]
    centred = x - jnp.mean(x, axis=1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = jnp.fft.rfft(centred, n=size, axis=1)
    return jnp.fft.irfft(spectrum * jnp.conj(spectrum), n=size, axis=1)[:, :n] / n


def ess(chains: Float[Array, "m n ..."], *, split: bool = True) -> Float[Array, "..."]:
    """Effective sample size of several chains with Geyer's initial monotone sequence.

    ``ESS = m n / tau`` with the integrated autocorrelation time
    ``tau = -1 + 2 sum_{k=0}^{K} (rho_{2k} + rho_{2k+1})``. The autocorrelations
    ``rho_t = 1 - (W - mean_j gamma_{j,t}) / var_plus`` combine the chains'
    autocovariances ``gamma_{j,t}`` with the between-chain variance (Vehtari et
    al., 2021, eq. 10; Gelman et al., 2013, Sec. 11.5), so chains that disagree
    lower the ESS. The pair sums are truncated at the first negative one and
    made non-increasing (Geyer, 1992). For ``m`` chains of ``n`` independent
    draws ``ESS ≈ m n``; for AR(1) chains with coefficient ``rho``,
    ``ESS ≈ m n (1 - rho) / (1 + rho)``.

    Args:
        chains: draws ``[num_chains, num_draws, ...]`` with ``num_draws >= 4``.
        split: split every chain in half first (as split-R-hat does).

    Returns:
        The ESS for every trailing index, shape ``chains.shape[2:]``.

    Example:
        >>> import numpy as np
        >>> from probnum_jax.posteriors import gibbs
        >>> draws = np.random.default_rng(0).normal(size=(4, 1000))
        >>> bool(3000 < gibbs.ess(draws) < 5000)
        True
    """
    return _ess_jit(_check_chains(chains), split)


@functools.partial(jax.jit, static_argnums=1)
def _ess_jit(chains, split):
    if split:
        chains = _split(chains)
    m, n = chains.shape[:2]
    trailing = chains.shape[2:]
    flat = chains.reshape((m, n, -1))
    gamma = _autocovariance(flat)  # [m, n, k]
    within_chain_var = gamma[:, 0] * n / (n - 1)
    within = jnp.mean(within_chain_var, axis=0)
    between = n * jnp.var(jnp.mean(flat, axis=1), axis=0, ddof=1) if m > 1 else jnp.zeros_like(within)
    var_plus = (n - 1) / n * within + between / n
    rho = 1.0 - (within - jnp.mean(gamma, axis=0)) / var_plus  # [n, k]
    num_pairs = n // 2
    pairs = rho[: 2 * num_pairs : 2] + rho[1 : 2 * num_pairs : 2]  # [num_pairs, k]
    positive = jnp.cumprod(pairs > 0, axis=0).astype(pairs.dtype)
    monotone = jax.lax.cummin(jnp.where(positive > 0, pairs, jnp.inf), axis=0)
    tau = -1.0 + 2.0 * jnp.sum(jnp.where(positive > 0, monotone, 0.0), axis=0)
    # Antithetic chains can make tau tiny; cap the ESS at m n log10(m n) as Stan does.
    total = m * n
    ess_value = total / jnp.maximum(tau, 1.0 / jnp.log10(total))
    return ess_value.reshape(trailing)
