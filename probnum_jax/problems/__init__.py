"""Test problems for probabilistic numerical solvers."""

from ._ode import InitialValueProblem as InitialValueProblem
from ._ode import fitzhugh_nagumo as fitzhugh_nagumo
from ._ode import hires as hires
from ._ode import logistic as logistic
from ._ode import lorenz63 as lorenz63
from ._ode import lotka_volterra as lotka_volterra
from ._ode import pleiades as pleiades
from ._ode import robertson as robertson
from ._ode import van_der_pol as van_der_pol

__all__ = [
    "InitialValueProblem",
    "fitzhugh_nagumo",
    "hires",
    "logistic",
    "lorenz63",
    "lotka_volterra",
    "pleiades",
    "robertson",
    "van_der_pol",
]
