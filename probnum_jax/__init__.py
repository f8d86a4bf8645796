"""probnum_jax: probabilistic numerical solvers in JAX.

Every solver returns a probability distribution over its answer and is a pure
function that can be ``jit``-ed, ``vmap``-ed and differentiated.
"""

from . import diffusion as diffusion
from . import linalg as linalg
from . import ode as ode
from . import posteriors as posteriors
from . import problems as problems
from . import quad as quad
from . import randvars as randvars

__version__ = "0.1.0"

__all__ = ["diffusion", "linalg", "ode", "posteriors", "problems", "quad", "randvars", "__version__"]
