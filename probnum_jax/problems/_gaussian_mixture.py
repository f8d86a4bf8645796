"""Gaussian-mixture data distributions with closed-form diffused scores and densities.

Under a linear diffusion ``x_t = alpha(t) x_0 + sigma(t) noise`` a Gaussian
mixture stays a Gaussian mixture: component ``k`` becomes
``N(alpha mu_k, alpha^2 Sigma_k + sigma^2 I)`` with the same weight. So the
exact score and log-density of every diffused marginal are known, and the
diffusion samplers and likelihoods can be tested without training a network.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


class GaussianMixture(eqx.Module):
    """A Gaussian mixture ``sum_k w_k N(mu_k, Sigma_k)`` in ``d`` dimensions.

    Attributes:
        weights: mixture weights ``[K]``, positive, summing to one.
        means: component means ``[K, d]``.
        covs: component covariances ``[K, d, d]``, symmetric positive definite.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from probnum_jax import diffusion, problems
        >>> gmm = problems.gmm_ring()
        >>> sde = diffusion.VPSDE()
        >>> score = gmm.score_fn(sde)          # exact score of every diffused marginal
        >>> score(jnp.zeros(2), 0.5).shape
        (2,)
    """

    weights: Float[Array, " K"]
    means: Float[Array, "K d"]
    covs: Float[Array, "K d d"]

    def __check_init__(self):
        k, d = self.means.shape if self.means.ndim == 2 else (None, None)
        if self.means.ndim != 2:
            raise ValueError(f"means must have shape [K, d], got {self.means.shape}.")
        if self.weights.shape != (k,):
            raise ValueError(f"weights must have shape [K]=({k},), got {self.weights.shape}.")
        if self.covs.shape != (k, d, d):
            raise ValueError(f"covs must have shape [K, d, d]=({k}, {d}, {d}), got {self.covs.shape}.")

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def _component_log_probs(self, x):
        chol = jnp.linalg.cholesky(self.covs)
        diff = x[None, :] - self.means
        z = jax.vmap(lambda c, r: jax.scipy.linalg.solve_triangular(c, r, lower=True))(chol, diff)
        logdet = jnp.sum(jnp.log(jnp.diagonal(chol, axis1=1, axis2=2)), axis=1)
        return jnp.log(self.weights) - 0.5 * jnp.sum(z**2, 1) - logdet - 0.5 * self.dim * jnp.log(2 * jnp.pi)

    def log_prob(self, x: Float[Array, " d"]) -> Array:
        """The log-density at one point ``x[d]``."""
        return jax.nn.logsumexp(self._component_log_probs(x))

    def score(self, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """The score ``grad log p(x)`` at one point, ``sum_k r_k(x) Sigma_k^{-1} (mu_k - x)``."""
        resp = jax.nn.softmax(self._component_log_probs(x))
        pulls = jax.vmap(lambda c, m: jnp.linalg.solve(c, m - x))(self.covs, self.means)
        return resp @ pulls

    def sample(self, key, num: int) -> Float[Array, "num d"]:
        """``num`` independent samples."""
        k_comp, k_noise = jax.random.split(key)
        comp = jax.random.choice(k_comp, self.weights.shape[0], (num,), p=self.weights)
        chol = jnp.linalg.cholesky(self.covs)
        noise = jax.random.normal(k_noise, (num, self.dim), self.means.dtype)
        return self.means[comp] + jnp.einsum("nij,nj->ni", chol[comp], noise)

    def diffuse(self, sde, t) -> "GaussianMixture":
        """The marginal of ``x_t = alpha(t) x_0 + sigma(t) noise`` with ``x_0`` from this mixture."""
        alpha, sigma = sde.scale(t), sde.std(t)
        eye = jnp.eye(self.dim, dtype=self.means.dtype)
        return GaussianMixture(self.weights, alpha * self.means, alpha**2 * self.covs + sigma**2 * eye)

    def _diffused_terms(self, sde):
        """``(x, t) -> (component log-densities [K], pulls [K, d])`` of the diffused mixture.

        The covariances are diagonalised once, ``Sigma_k = U_k diag(lam_k) U_k^T``;
        then ``alpha^2 Sigma_k + sigma^2 I = U_k diag(alpha^2 lam_k + sigma^2) U_k^T``
        needs no factorisation per call (no LAPACK inside the samplers' loops).
        """
        lam, vecs = jnp.linalg.eigh(self.covs)
        log_w, means, d = jnp.log(self.weights), self.means, self.dim

        def terms(x, t):
            alpha, sigma = sde.scale(t), sde.std(t)
            var = alpha**2 * lam + sigma**2  # [K, d] in each component's eigenbasis
            z = jnp.einsum("kji,kj->ki", vecs, x[None, :] - alpha * means)
            logp = log_w - 0.5 * jnp.sum(z**2 / var + jnp.log(var), 1) - 0.5 * d * jnp.log(2 * jnp.pi)
            pulls = -jnp.einsum("kij,kj->ki", vecs, z / var)
            return logp, pulls

        return terms

    def score_fn(self, sde):
        """The exact score ``(x, t) -> grad log p_t(x)`` of the diffused marginals of ``sde``."""
        terms = self._diffused_terms(sde)

        def score(x, t):
            logp, pulls = terms(x, t)
            return jax.nn.softmax(logp) @ pulls

        return score

    def log_prob_fn(self, sde):
        """The exact log-density ``(x, t) -> log p_t(x)`` of the diffused marginals of ``sde``."""
        terms = self._diffused_terms(sde)
        return lambda x, t: jax.nn.logsumexp(terms(x, t)[0])


def gmm_ring(num_components: int = 8, *, radius: float = 2.0, std: float = 0.2) -> GaussianMixture:
    """A 2-D mixture of ``num_components`` equal isotropic Gaussians on a circle.

    Example:
        >>> from probnum_jax import problems
        >>> problems.gmm_ring(8).means.shape
        (8, 2)
    """
    if num_components < 1:
        raise ValueError(f"num_components must be >= 1, got {num_components}.")
    angle = 2 * jnp.pi * jnp.arange(num_components) / num_components
    means = radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)
    covs = jnp.broadcast_to(std**2 * jnp.eye(2), (num_components, 2, 2))
    weights = jnp.full(num_components, 1.0 / num_components)
    return GaussianMixture(weights, means, covs)


def gmm_random(key, dim: int = 16, num_components: int = 4, *, spread: float = 2.0) -> GaussianMixture:
    """A random ``dim``-dimensional mixture: means ``N(0, spread^2 I)``, random anisotropic covariances, Dirichlet weights.

    Example:
        >>> import jax
        >>> from probnum_jax import problems
        >>> problems.gmm_random(jax.random.key(0), dim=16).covs.shape
        (4, 16, 16)
    """
    if dim < 1 or num_components < 1:
        raise ValueError(f"dim and num_components must be >= 1, got {dim} and {num_components}.")
    k_mean, k_cov, k_w = jax.random.split(key, 3)
    means = spread * jax.random.normal(k_mean, (num_components, dim))
    factors = jax.random.normal(k_cov, (num_components, dim, dim)) / jnp.sqrt(dim)
    covs = 0.1 * jnp.einsum("kij,klj->kil", factors, factors) + 0.05 * jnp.eye(dim)
    weights = jax.random.dirichlet(k_w, jnp.full(num_components, 5.0))
    return GaussianMixture(weights, means, covs)
