"""The examples in the docstrings run and print what they claim."""

import doctest
import importlib
import pkgutil

import pytest

import probnum_jax

DOCTESTED = (
    "probnum_jax.diffusion",
    "probnum_jax.linalg",
    "probnum_jax.ode",
    "probnum_jax.posteriors",
    "probnum_jax.problems",
    "probnum_jax.quad",
    "probnum_jax.randvars",
)


# Examples that compile a whole solver loop (each is also covered by a unit test): slow.
SLOW = {
    "probnum_jax.diffusion._likelihood",
    "probnum_jax.diffusion._loss",
    "probnum_jax.diffusion._models",
    "probnum_jax.diffusion._networks",
    "probnum_jax.diffusion._sample",
    "probnum_jax.diffusion._train",
    "probnum_jax.linalg._calibration",
    "probnum_jax.linalg._matrix_based",
    "probnum_jax.ode._fixed_grid",
    "probnum_jax.ode._discretise",
    "probnum_jax.ode._information",
    "probnum_jax.ode._log_marginal_likelihood",
    "probnum_jax.ode._prior",
    "probnum_jax.ode._solution",
    "probnum_jax.ode._solvers",
    "probnum_jax.posteriors.blocks._laplace",
    "probnum_jax.posteriors.blocks._marglik",
    "probnum_jax.posteriors.blocks._posterior",
    "probnum_jax.posteriors.blocks._predict",
    "probnum_jax.posteriors.blocks._vi",
    "probnum_jax.posteriors.laplace._marglik",
    "probnum_jax.posteriors.vi._ivon",
    "probnum_jax.posteriors.vi._mean_field",
    "probnum_jax.posteriors.vi._sample_params",
    "probnum_jax.posteriors.vi._vogn",
    "probnum_jax.problems._gaussian_mixture",
    "probnum_jax.problems._linear_systems",
    "probnum_jax.quad._bayesquad",
    "probnum_jax.quad._hyperparameters",
    "probnum_jax.quad._loop",
    "probnum_jax.randvars._normal",
}


def _modules():
    for package_name in DOCTESTED:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            marks = [pytest.mark.slow] if info.name in SLOW else []
            yield pytest.param(info.name, marks=marks, id=info.name)


@pytest.mark.parametrize("module_name", sorted(_modules()))
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"


def test_version():
    assert isinstance(probnum_jax.__version__, str)
