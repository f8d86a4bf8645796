"""Bayesian quadrature: Gaussian-process beliefs over integrals, with calibrated error bars.

Kernels (:class:`ExpQuad`, :class:`Matern`) and measures (:class:`LebesgueMeasure`,
:class:`GaussianMeasure`) with closed-form kernel means; :func:`bayesquad_from_data`
for given nodes, :func:`bayesquad` for an adaptive, jit-compiled loop
(:class:`BayesQuadLoop` exposes its init/step pair), type-II maximum likelihood
(:func:`fit_kernel`) and WSABI-L (:func:`wsabi_from_data`) for non-negative integrands.
"""

from ._bayesquad import bayesquad as bayesquad
from ._bayesquad_from_data import BQResult as BQResult
from ._bayesquad_from_data import BQTrace as BQTrace
from ._bayesquad_from_data import bayesquad_from_data as bayesquad_from_data
from ._hyperparameters import fit_kernel as fit_kernel
from ._hyperparameters import log_evidence as log_evidence
from ._kernel_embeddings import initial_error as initial_error
from ._kernel_embeddings import kernel_mean as kernel_mean
from ._kernels import AbstractKernel as AbstractKernel
from ._kernels import ExpQuad as ExpQuad
from ._kernels import Matern as Matern
from ._loop import BayesQuadLoop as BayesQuadLoop
from ._loop import BQState as BQState
from ._measures import AbstractMeasure as AbstractMeasure
from ._measures import GaussianMeasure as GaussianMeasure
from ._measures import LebesgueMeasure as LebesgueMeasure
from ._results import RESULTS as RESULTS
from ._wsabi import wsabi_from_data as wsabi_from_data

__all__ = [
    "AbstractKernel",
    "AbstractMeasure",
    "BQResult",
    "BQState",
    "BQTrace",
    "BayesQuadLoop",
    "ExpQuad",
    "GaussianMeasure",
    "LebesgueMeasure",
    "Matern",
    "RESULTS",
    "bayesquad",
    "bayesquad_from_data",
    "fit_kernel",
    "initial_error",
    "kernel_mean",
    "log_evidence",
    "wsabi_from_data",
]
