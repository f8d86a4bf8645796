"""Gaussian random variables in square-root form, with one interface for three structures."""

from ._normal import BlockDiagNormal as BlockDiagNormal
from ._normal import Conditional as Conditional
from ._normal import DenseNormal as DenseNormal
from ._normal import IsotropicNormal as IsotropicNormal
from ._normal import Normal as Normal
from ._normal import backward_conditional as backward_conditional
from ._normal import condition as condition
from ._normal import mahalanobis as mahalanobis
from ._normal import marginalise as marginalise
from ._normal import predict as predict
from ._normal import update as update
from ._sqrt_linalg import triangularize as triangularize

__all__ = [
    "BlockDiagNormal",
    "Conditional",
    "DenseNormal",
    "IsotropicNormal",
    "Normal",
    "backward_conditional",
    "condition",
    "mahalanobis",
    "marginalise",
    "predict",
    "update",
    "triangularize",
]
