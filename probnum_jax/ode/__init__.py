"""Probabilistic ODE solvers: Gaussian filters and smoothers (EK0, EK1)."""

from ._control import AbstractController as AbstractController
from ._control import IntegralController as IntegralController
from ._control import PIController as PIController
from ._fixed_grid import solve_fixed_grid as solve_fixed_grid
from ._log_marginal_likelihood import log_marginal_likelihood as log_marginal_likelihood
from ._prior import IOUP as IOUP
from ._prior import IWP as IWP
from ._prior import Matern as Matern
from ._results import RESULTS as RESULTS
from ._solution import BackwardChain as BackwardChain
from ._solution import Solution as Solution
from ._solve import solve as solve
from ._solvers import EK0 as EK0
from ._solvers import EK1 as EK1
from ._solvers import AbstractSolver as AbstractSolver
from ._taylor import taylor_coefficients as taylor_coefficients

__all__ = [
    "EK0",
    "EK1",
    "IOUP",
    "IWP",
    "RESULTS",
    "AbstractController",
    "AbstractSolver",
    "BackwardChain",
    "IntegralController",
    "Matern",
    "PIController",
    "Solution",
    "log_marginal_likelihood",
    "solve",
    "solve_fixed_grid",
    "taylor_coefficients",
]
