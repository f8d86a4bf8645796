"""Shared test configuration: float64 everywhere (float32 variants set dtypes explicitly)."""

import jax

jax.config.update("jax_enable_x64", True)
