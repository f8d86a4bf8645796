"""Score-based diffusion: forward SDEs, denoising score matching, and samplers with numerical error bars."""

from ._likelihood import LikelihoodInfo as LikelihoodInfo
from ._likelihood import bits_per_dim as bits_per_dim
from ._likelihood import log_likelihood as log_likelihood
from ._loss import denoising_score_matching_loss as denoising_score_matching_loss
from ._models import from_equinox as from_equinox
from ._models import from_nnx as from_nnx
from ._networks import ScoreMLP as ScoreMLP
from ._networks import TinyUNet as TinyUNet
from ._sample import SampleInfo as SampleInfo
from ._sample import sample as sample
from ._sde import EDM as EDM
from ._sde import VESDE as VESDE
from ._sde import VPSDE as VPSDE
from ._sde import AbstractSDE as AbstractSDE
from ._sde import SubVPSDE as SubVPSDE
from ._sliced_wasserstein import sliced_wasserstein as sliced_wasserstein
from ._train import train as train
from ._train import train_step as train_step

__all__ = [
    "AbstractSDE",
    "EDM",
    "LikelihoodInfo",
    "SampleInfo",
    "ScoreMLP",
    "SubVPSDE",
    "TinyUNet",
    "VESDE",
    "VPSDE",
    "bits_per_dim",
    "denoising_score_matching_loss",
    "from_equinox",
    "from_nnx",
    "log_likelihood",
    "sample",
    "sliced_wasserstein",
    "train",
    "train_step",
]
