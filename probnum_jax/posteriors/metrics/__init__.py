"""Metrics for predictive distributions: accuracy, calibration, OOD detection, regression scores."""

from ._classification import accuracy as accuracy
from ._classification import brier as brier
from ._classification import ece as ece
from ._classification import mce as mce
from ._classification import nll as nll
from ._classification import ood_auroc as ood_auroc
from ._classification import reliability_diagram as reliability_diagram
from ._regression import crps_gaussian as crps_gaussian
from ._regression import gaussian_nll as gaussian_nll
from ._regression import rmse as rmse

__all__ = [
    "accuracy",
    "brier",
    "crps_gaussian",
    "ece",
    "gaussian_nll",
    "mce",
    "nll",
    "ood_auroc",
    "reliability_diagram",
    "rmse",
]
