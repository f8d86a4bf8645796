"""The public surface of probnum_jax.quad: configuration is keyword-only."""

import pytest

from probnum_jax import quad

def test_configuration_is_keyword_only():
    with pytest.raises(TypeError):
        quad.bayesquad_from_data([[0.0]], [0.0], quad.LebesgueMeasure(0.0, 1.0), quad.ExpQuad())
    with pytest.raises(TypeError):
        quad.BayesQuadLoop(quad.LebesgueMeasure(0.0, 1.0))
