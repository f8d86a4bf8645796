"""Laplace approximations of neural-network posteriors (Daxberger et al., 2021).

``fit`` computes the curvature at the MAP (full, diagonal, KFAC or low-rank
GGN, over all weights, the last layer or a subnetwork),
``log_marginal_likelihood`` and ``optimize_prior_precision`` tune the prior,
and ``predict`` gives the linearised (GLM) or sampled predictive.
"""

from ._dense import FullLaplace as FullLaplace
from ._dense import LowRankLaplace as LowRankLaplace
from ._fit import fit as fit
from ._marglik import log_marginal_likelihood as log_marginal_likelihood
from ._marglik import optimize_prior_precision as optimize_prior_precision
from ._posterior import LaplacePosterior as LaplacePosterior
from ._predict import glm_predictive as glm_predictive
from ._predict import predict as predict
from ._results import RESULTS as RESULTS
from ._structured import DiagLaplace as DiagLaplace
from ._structured import KronLaplace as KronLaplace
from ._subset import Subset as Subset

__all__ = [
    "DiagLaplace",
    "FullLaplace",
    "KronLaplace",
    "LaplacePosterior",
    "LowRankLaplace",
    "RESULTS",
    "Subset",
    "fit",
    "glm_predictive",
    "log_marginal_likelihood",
    "optimize_prior_precision",
    "predict",
]
