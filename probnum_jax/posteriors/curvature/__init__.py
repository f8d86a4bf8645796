"""Curvature of a model's loss, BackPACK-style, as pure JAX functions.

Every function has the signature ``f(model_fn, params, x, y, *, likelihood=...)``
and returns a pytree shaped like ``params`` (or a matrix-free operator). The
loss is the negative log-likelihood summed over the batch. Dense and
convolutional layers are found in the model's jaxpr, so equinox, flax and
plain functional models are all supported; a full ``n x outputs x params``
Jacobian is never formed.
"""

from ._first_order import batch_l2 as batch_l2
from ._first_order import grad_variance as grad_variance
from ._first_order import per_sample_grads as per_sample_grads
from ._first_order import sum_grad_squared as sum_grad_squared
from ._kfac import KroneckerFactors as KroneckerFactors
from ._kfac import kfac as kfac
from ._matvec import ggn_dense as ggn_dense
from ._matvec import ggn_matvec as ggn_matvec
from ._matvec import hessian_matvec as hessian_matvec
from ._second_order import ggn_diag as ggn_diag
from ._second_order import ggn_diag_mc as ggn_diag_mc
from ._second_order import hessian_diag as hessian_diag

__all__ = [
    "KroneckerFactors",
    "batch_l2",
    "ggn_dense",
    "ggn_diag",
    "ggn_diag_mc",
    "grad_variance",
    "hessian_diag",
    "hessian_matvec",
    "kfac",
    "per_sample_grads",
    "sum_grad_squared",
]
