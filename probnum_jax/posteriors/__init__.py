"""Posteriors over neural-network weights: curvature, Laplace approximations, VI, metrics.

* :mod:`~probnum_jax.posteriors.curvature`: BackPACK's quantities (per-sample
  gradients, diagonal GGN and Hessian, KFAC, matrix-free products);
* :mod:`~probnum_jax.posteriors.laplace`: Laplace posteriors with marginal-likelihood
  tuning and the linearised predictive;
* :mod:`~probnum_jax.posteriors.vi`: variational inference (mean-field Gaussian VI,
  IVON and VOGN as optax transformations) and its Monte Carlo predictive;
* :mod:`~probnum_jax.posteriors.gibbs`: block-Gibbs sampling of MLP weights in the
  augmented model of Piccioli et al. (2023), with R-hat and ESS diagnostics;
* :mod:`~probnum_jax.posteriors.blocks`: block-coordinate Laplace and Gaussian VI with a
  dense covariance block per unit (or per layer), from the exact per-unit GGN blocks;
* :mod:`~probnum_jax.posteriors.metrics`: calibration and accuracy metrics.

Models are functions ``model_fn(params, x[n, ...]) -> outputs[n, C]``;
:func:`from_equinox`, :func:`from_nnx` and :func:`from_linen` adapt modules.
"""

from . import blocks as blocks
from . import curvature as curvature
from . import gibbs as gibbs
from . import laplace as laplace
from . import metrics as metrics
from . import vi as vi
from ._models import from_equinox as from_equinox
from ._models import from_linen as from_linen
from ._models import from_nnx as from_nnx

__all__ = ["blocks", "curvature", "from_equinox", "from_linen", "from_nnx", "gibbs", "laplace", "metrics", "vi"]
