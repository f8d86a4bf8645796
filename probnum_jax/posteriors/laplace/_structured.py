"""Diagonal and Kronecker-factored Laplace posteriors."""

import jax.numpy as jnp


from .._factors import LeafFactors, to_leaf
from ._posterior import LaplacePosterior, canonical_variances, factor_covariance, standard_normal_parts, test_factors


class DiagLaplace(LaplacePosterior):
    """Laplace posterior with a diagonal precision ``scale * diag(GGN) + P0``.

    Attributes:
        ggn_diagonal: per subset leaf, the GGN diagonal (unit noise).
    """

    ggn_diagonal: tuple

    def _precision(self, prior, sigma_noise):
        scale = self.curvature_scale(sigma_noise)
        return tuple(scale * g + p for g, p in zip(self.ggn_diagonal, prior))

    def log_det_precision(self, prior, sigma_noise):
        return sum(jnp.sum(jnp.log(p)) for p in self._precision(prior, sigma_noise))

    def sample_deviation(self, key, num_samples):
        precision = self._precision(self.prior_precision, self.sigma_noise)
        shapes = tuple(jnp.broadcast_shapes(p.shape, s) for p, s in zip(precision, self.sub_shapes))
        eps = standard_normal_parts(key, num_samples, shapes, precision[0].dtype)
        return tuple(e / jnp.sqrt(p) for e, p in zip(eps, precision))

    def predictive_features(self, x):
        return test_factors(self, x)

    def functional_covariance_from(self, features, prior, sigma_noise):
        variances = tuple(1.0 / p for p in self._precision(prior, sigma_noise))
        return factor_covariance(features, canonical_variances(self, variances))


class KronLaplace(LaplacePosterior):
    """Laplace posterior with a Kronecker-factored precision per leaf (KFAC).

    Per leaf, ``precision = scale * s * (A kron B) + delta I`` in the canonical
    layout, with ``A = Q_A diag(a) Q_A^T`` and ``B = Q_B diag(b) Q_B^T``; its
    eigenvalues are ``scale * s * a_i b_j + delta``, so log-determinants,
    samples and predictive variances are exact for the factored precision
    (Ritter et al., 2018; Immer et al., 2021). The prior precision must be one
    value per leaf (scalar or layer-wise).

    Attributes:
        eigvals_a, eigvecs_a, eigvals_b, eigvecs_b: per subset leaf, eigen-decompositions.
        kron_scale: per subset leaf, ``1 / (n T)``.
    """

    eigvals_a: tuple
    eigvecs_a: tuple
    eigvals_b: tuple
    eigvecs_b: tuple
    kron_scale: tuple

    def _eigenvalues(self, prior, sigma_noise):
        scale = self.curvature_scale(sigma_noise)
        out = []
        for la, lb, s, p in zip(self.eigvals_a, self.eigvals_b, self.kron_scale, prior):
            if jnp.ndim(p) != 0:
                raise ValueError(
                    "hessian='kfac' supports a scalar or layer-wise prior_precision (one value per "
                    f"parameter leaf), got a diagonal prior of shape {jnp.shape(p)}."
                )
            out.append(scale * s * jnp.outer(la, lb) + p)
        return tuple(out)

    def log_det_precision(self, prior, sigma_noise):
        return sum(jnp.sum(jnp.log(d)) for d in self._eigenvalues(prior, sigma_noise))

    def sample_deviation(self, key, num_samples):
        graph = self.layer_graph()
        eig = self._eigenvalues(self.prior_precision, self.sigma_noise)
        parts = standard_normal_parts(key, num_samples, tuple(d.shape for d in eig), eig[0].dtype)
        out = []
        for e, d, qa, qb, leaf in zip(parts, eig, self.eigvecs_a, self.eigvecs_b, self.subset.leaves):
            out.append(to_leaf(graph, leaf, jnp.einsum("ij,njk,lk->nil", qa, e / jnp.sqrt(d), qb)))
        return tuple(out)

    def predictive_features(self, x):
        factors = test_factors(self, x)
        return {
            leaf: LeafFactors(f.rows @ qa, f.deltas @ qb)
            for (leaf, f), qa, qb in zip(factors.items(), self.eigvecs_a, self.eigvecs_b)
        }

    def functional_covariance_from(self, features, prior, sigma_noise):
        eig = self._eigenvalues(prior, sigma_noise)
        return factor_covariance(features, {leaf: 1.0 / d for leaf, d in zip(self.subset.leaves, eig)})
