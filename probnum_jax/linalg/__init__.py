"""Probabilistic linear solvers: BayesCG and matrix-based solvers returning Gaussian beliefs."""

from ._bayescg import bayescg as bayescg
from ._calibration import CalibrationStatistics as CalibrationStatistics
from ._calibration import calibration_statistics as calibration_statistics
from ._lineax_solver import BayesCG as BayesCG
from ._matrix_based import MatrixBasedPosterior as MatrixBasedPosterior
from ._matrix_based import SymmetricKroneckerNormal as SymmetricKroneckerNormal
from ._operators import PriorPlusLowRank as PriorPlusLowRank
from ._problinsolve import problinsolve as problinsolve
from ._results import RESULTS as RESULTS
from ._results import LinearSolveResult as LinearSolveResult

__all__ = [
    "BayesCG",
    "CalibrationStatistics",
    "LinearSolveResult",
    "MatrixBasedPosterior",
    "PriorPlusLowRank",
    "RESULTS",
    "SymmetricKroneckerNormal",
    "bayescg",
    "calibration_statistics",
    "problinsolve",
]
