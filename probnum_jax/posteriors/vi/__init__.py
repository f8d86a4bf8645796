"""Variational inference over neural-network weights, as optax-style transformations.

* :func:`mean_field`: mean-field Gaussian VI with the reparameterisation trick
  and a tempered, closed-form KL to a Gaussian prior (Blundell et al., 2015);
* :func:`ivon`: IVON, natural-gradient VI at Adam's cost with a
  reparameterisation Hessian estimate (Shen et al., 2024);
* :func:`vogn`: VOGN, natural-gradient VI with a Gauss-Newton estimate from
  per-sample gradients (Osawa et al., 2019);
* :func:`sample_params` and :func:`posterior` draw weights from, and read the
  Gaussian of, an IVON/VOGN state; :func:`predict` averages the model over
  samples of a :class:`MeanFieldGaussian`.
"""

from ._ivon import IVONState as IVONState
from ._ivon import ivon as ivon
from ._mean_field import MeanFieldState as MeanFieldState
from ._mean_field import MeanFieldVI as MeanFieldVI
from ._mean_field import mean_field as mean_field
from ._posterior import MeanFieldGaussian as MeanFieldGaussian
from ._posterior import kl_to_prior as kl_to_prior
from ._predict import predict as predict
from ._sample_params import posterior as posterior
from ._sample_params import sample_params as sample_params
from ._vogn import VOGNState as VOGNState
from ._vogn import vogn as vogn
from ._vogn import vogn_grads as vogn_grads

__all__ = [
    "IVONState",
    "MeanFieldGaussian",
    "MeanFieldState",
    "MeanFieldVI",
    "VOGNState",
    "ivon",
    "kl_to_prior",
    "mean_field",
    "posterior",
    "predict",
    "sample_params",
    "vogn",
    "vogn_grads",
]
