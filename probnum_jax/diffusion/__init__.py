"""Score-based diffusion: forward SDEs, denoising score matching, and samplers with numerical error bars."""

from ._sde import EDM as EDM
from ._sde import VESDE as VESDE
from ._sde import VPSDE as VPSDE
from ._sde import AbstractSDE as AbstractSDE
from ._sde import SubVPSDE as SubVPSDE

__all__ = ["AbstractSDE", "EDM", "SubVPSDE", "VESDE", "VPSDE"]
