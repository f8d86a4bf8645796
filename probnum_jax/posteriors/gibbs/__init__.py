"""Block-Gibbs sampling of MLP weights (Piccioli, Troiani and Zdeborová, 2023).

The network is augmented with Gaussian noise on its hidden pre- and
post-activations (:class:`MLPSpec`); then every block of a Gibbs sweep — the
incoming weights of all units of a layer, the pre-activations, the
post-activations, the probit latents — has an exact Gaussian or
truncated-Gaussian conditional, and a sweep needs one Cholesky factorisation
per layer and block.

* :class:`MLPSpec` describes the model; :func:`init` and :func:`sweep` are the
  init/step pair of the chain, :func:`sample` runs it under ``lax.scan``;
* :func:`predict` averages the network (:func:`network`) over weight samples;
* :func:`teacher_student` plants a teacher drawn from the prior, for the
  thermalisation check of Piccioli et al. (2023);
* :func:`rhat` and :func:`ess` diagnose several chains.
"""

from ._diagnostics import ess as ess
from ._diagnostics import rhat as rhat
from ._predict import network as network
from ._predict import predict as predict
from ._predict import teacher_student as teacher_student
from ._sampler import GibbsState as GibbsState
from ._sampler import init as init
from ._sampler import sample as sample
from ._sampler import sweep as sweep
from ._spec import MLPSpec as MLPSpec

__all__ = [
    "GibbsState",
    "MLPSpec",
    "ess",
    "init",
    "network",
    "predict",
    "rhat",
    "sample",
    "sweep",
    "teacher_student",
]
