"""Block-coordinate Laplace and VI over network weights, with dense per-unit blocks.

:func:`block_ggn` gives the exact GGN blocks of each unit's incoming weights
(or of each layer); :func:`laplace` finds the joint MAP by block Gauss-Newton
sweeps and returns the block-diagonal Laplace posterior; :func:`vi` runs
block-coordinate natural-gradient Gaussian VI (VOGN with dense unit blocks).
Both return a :class:`BlockGaussian`, which :func:`predict` and
:func:`glm_predictive` turn into predictives; :func:`optimize_prior_precision`
tunes the prior of a Laplace fit by its evidence (:func:`log_evidence`).
"""

from ._ggn import block_ggn as block_ggn
from ._laplace import laplace as laplace
from ._marglik import log_evidence as log_evidence
from ._marglik import optimize_prior_precision as optimize_prior_precision
from ._posterior import RESULTS as RESULTS
from ._posterior import BlockGaussian as BlockGaussian
from ._predict import glm_predictive as glm_predictive
from ._predict import predict as predict
from ._vi import vi as vi

__all__ = [
    "RESULTS",
    "BlockGaussian",
    "block_ggn",
    "glm_predictive",
    "laplace",
    "log_evidence",
    "optimize_prior_precision",
    "predict",
    "vi",
]
