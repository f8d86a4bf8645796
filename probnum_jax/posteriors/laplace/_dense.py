"""Full-covariance and low-rank Laplace posteriors over the flattened subset parameters."""

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from .._chunks import default_chunk_size, map_over_chunks
from ._posterior import LaplacePosterior, canonical_variances, factor_covariance, test_factors


def flat_prior(prior: tuple, shapes: tuple):
    return jnp.concatenate([jnp.ravel(jnp.broadcast_to(p, s)) for p, s in zip(prior, shapes)])


class FullLaplace(LaplacePosterior):
    """Laplace posterior with the dense precision ``scale * GGN + diag(P0)``.

    Memory is quadratic in the number of subset parameters: use it for small
    models, the last layer, or a masked subnetwork (Daxberger et al., 2021b).

    Attributes:
        ggn: the dense GGN ``[p, p]`` of the subset (unit noise), in
            :func:`jax.flatten_util.ravel_pytree` order of the subset parameters.
    """

    ggn: Float[Array, "p p"]

    def _cholesky(self, prior, sigma_noise):
        precision = self.curvature_scale(sigma_noise) * self.ggn + jnp.diag(flat_prior(prior, self.sub_shapes))
        return jnp.linalg.cholesky(precision)

    def log_det_precision(self, prior, sigma_noise):
        return 2.0 * jnp.sum(jnp.log(jnp.diagonal(self._cholesky(prior, sigma_noise))))

    def sample_deviation(self, key, num_samples):
        chol = self._cholesky(self.prior_precision, self.sigma_noise)
        eps = jax.random.normal(key, (chol.shape[0], num_samples), chol.dtype)
        draws = jsl.solve_triangular(chol.T, eps, lower=False).T  # cov (L L^T)^{-1}
        _, unravel = ravel_pytree(self.mean)
        return jax.vmap(unravel)(draws)

    def predictive_features(self, x):
        flat, unravel = ravel_pytree(self.mean)

        def jacobian(x_i):
            return jax.jacrev(lambda w: self.sub_model(unravel(w), x_i[None])[0])(flat)  # [C, p]

        chunk = default_chunk_size(x.shape[0], self.num_outputs * flat.size)
        return map_over_chunks(jax.vmap(jacobian), x, chunk)

    def functional_covariance_from(self, features, prior, sigma_noise):
        chol = self._cholesky(prior, sigma_noise)
        n, c, p = features.shape
        v = jsl.solve_triangular(chol, features.reshape(n * c, p).T, lower=True).reshape(p, n, c)
        return jnp.einsum("pnc,pnd->ncd", v, v)


class LowRankLaplace(LaplacePosterior):
    """Laplace posterior with precision ``scale * U diag(lambda) U^T + diag(P0)``.

    ``U, lambda`` are the leading eigenpairs of the GGN found by Lanczos. With
    ``D = diag(P0)`` and ``V = D^{-1/2} U diag(sqrt(scale * lambda))``, the
    precision is ``D^{1/2} (I + V V^T) D^{1/2}``: log-determinants, samples and
    predictive covariances need only ``k x k`` matrices (Woodbury).

    Attributes:
        eigvals: ``[k]`` GGN eigenvalues (unit noise), clipped at zero.
        eigvecs: ``[p, k]`` eigenvectors in ravel order of the subset parameters.
    """

    eigvals: Float[Array, " k"]
    eigvecs: Float[Array, "p k"]

    def _factor(self, prior, sigma_noise):
        d = flat_prior(prior, self.sub_shapes)
        v = self.eigvecs * jnp.sqrt(self.curvature_scale(sigma_noise) * self.eigvals)[None, :] / jnp.sqrt(d)[:, None]
        return d, v

    def log_det_precision(self, prior, sigma_noise):
        d, v = self._factor(prior, sigma_noise)
        inner = jnp.eye(v.shape[1], dtype=v.dtype) + v.T @ v
        return jnp.sum(jnp.log(d)) + 2.0 * jnp.sum(jnp.log(jnp.diagonal(jnp.linalg.cholesky(inner))))

    def sample_deviation(self, key, num_samples):
        d, v = self._factor(self.prior_precision, self.sigma_noise)
        gamma, w = jnp.linalg.eigh(v.T @ v)
        gamma = jnp.maximum(gamma, 0.0)
        root = jnp.sqrt(1.0 + gamma)
        g = 1.0 / (root * (1.0 + root))  # (I + V V^T)^{-1/2} = I - V W diag(g) W^T V^T
        eps = jax.random.normal(key, (num_samples, d.shape[0]), d.dtype)
        draws = (eps - ((eps @ v @ w) * g) @ (v @ w).T) / jnp.sqrt(d)
        _, unravel = ravel_pytree(self.mean)
        return jax.vmap(unravel)(draws)

    def predictive_features(self, x):
        _, unravel = ravel_pytree(self.mean)
        columns = jax.vmap(unravel, in_axes=1)(self.eigvecs)  # tuple of [k, *shape]
        jvps = []
        for i in range(len(self.sub_shapes)):

            def jvp_leaf(u, i=i):
                tangent = tuple(u if j == i else jnp.zeros_like(m) for j, m in enumerate(self.mean))
                return jax.jvp(lambda s: self.sub_model(s, x), (self.mean,), (tangent,))[1]

            jvps.append(jax.vmap(jvp_leaf)(columns[i]))  # [k, n, C]
        return test_factors(self, x), jnp.stack(jvps)

    def functional_covariance_from(self, features, prior, sigma_noise):
        factors, jvps = features
        for p in prior:
            if jnp.ndim(p) != 0:
                raise ValueError(
                    "hessian='lowrank' predicts with a scalar or layer-wise prior_precision, got a "
                    f"diagonal prior of shape {jnp.shape(p)}."
                )
        d, v = self._factor(prior, sigma_noise)
        inverse_prior = tuple(1.0 / p for p in prior)
        first = factor_covariance(factors, canonical_variances(self, inverse_prior))
        # J D^{-1/2} V = sum_leaves (1 / delta_l) J_l U_l diag(sqrt(scale * lambda))
        root = jnp.sqrt(self.curvature_scale(sigma_noise) * self.eigvals)
        jdv = jnp.einsum("l,lknc,k->nck", jnp.stack(inverse_prior), jvps, root)
        inner = jnp.eye(v.shape[1], dtype=v.dtype) + v.T @ v
        chol = jnp.linalg.cholesky(inner)
        half = jax.vmap(lambda a: jsl.solve_triangular(chol, a.T, lower=True))(jdv)  # [n, k, C]
        return first - jnp.einsum("nkc,nkd->ncd", half, half)
