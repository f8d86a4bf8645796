"""Test problems for probabilistic numerical solvers.

* initial value problems (:class:`InitialValueProblem` and its factories);
* linear systems (random dense and sparse SPD matrices, the 2-D Poisson operator,
  RBF Gram matrices);
* Gaussian mixtures with closed-form diffused scores (for the diffusion samplers);
* the six Genz integrand families with closed-form integrals.
"""

from ._gaussian_mixture import GaussianMixture as GaussianMixture
from ._gaussian_mixture import gmm_random as gmm_random
from ._gaussian_mixture import gmm_ring as gmm_ring
from ._genz import GENZ_FAMILIES as GENZ_FAMILIES
from ._genz import GenzProblem as GenzProblem
from ._genz import genz_continuous as genz_continuous
from ._genz import genz_corner_peak as genz_corner_peak
from ._genz import genz_discontinuous as genz_discontinuous
from ._genz import genz_gaussian_peak as genz_gaussian_peak
from ._genz import genz_oscillatory as genz_oscillatory
from ._genz import genz_product_peak as genz_product_peak
from ._genz import genz_random as genz_random
from ._linear_systems import poisson_2d_eigenvalues as poisson_2d_eigenvalues
from ._linear_systems import poisson_2d_matvec as poisson_2d_matvec
from ._linear_systems import random_sparse_spd_matrix as random_sparse_spd_matrix
from ._linear_systems import random_spd_matrix as random_spd_matrix
from ._linear_systems import rbf_gram_matrix as rbf_gram_matrix
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
    "GENZ_FAMILIES",
    "GaussianMixture",
    "GenzProblem",
    "InitialValueProblem",
    "fitzhugh_nagumo",
    "genz_continuous",
    "genz_corner_peak",
    "genz_discontinuous",
    "genz_gaussian_peak",
    "genz_oscillatory",
    "genz_product_peak",
    "genz_random",
    "gmm_random",
    "gmm_ring",
    "hires",
    "logistic",
    "lorenz63",
    "lotka_volterra",
    "pleiades",
    "poisson_2d_eigenvalues",
    "poisson_2d_matvec",
    "random_sparse_spd_matrix",
    "random_spd_matrix",
    "rbf_gram_matrix",
    "robertson",
    "van_der_pol",
]
