"""The public surface of probnum_jax.quad: names, docs pages, keyword-only configuration, doctests."""

import doctest
import importlib
import pathlib

import pytest

from probnum_jax import quad

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"


def test_every_public_name_has_a_docs_page():
    for name in quad.__all__:
        assert hasattr(quad, name)
        page = DOCS / "api" / "quad" / f"{name}.md"
        assert page.read_text() == f"# quad.{name}\n\n::: probnum_jax.quad.{name}\n"
    assert (DOCS / "guides" / "quad.md").exists()


def test_configuration_is_keyword_only():
    with pytest.raises(TypeError):
        quad.bayesquad_from_data([[0.0]], [0.0], quad.LebesgueMeasure(0.0, 1.0), quad.ExpQuad())
    with pytest.raises(TypeError):
        quad.BayesQuadLoop(quad.LebesgueMeasure(0.0, 1.0))


@pytest.mark.slow
@pytest.mark.parametrize(
    "module",
    ["_kernels", "_measures", "_kernel_embeddings", "_bayesquad_from_data", "_hyperparameters", "_wsabi", "_loop", "_bayesquad"],
)
def test_docstring_examples_run(module):
    mod = importlib.import_module(f"probnum_jax.quad.{module}")
    failures, _ = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert failures == 0
