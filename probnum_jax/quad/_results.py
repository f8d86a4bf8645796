"""Outcomes of a quadrature run, reported as values (``res.result``) rather than exceptions."""

import equinox as eqx


class RESULTS(eqx.Enumeration):
    """Why a Bayesian-quadrature computation may have failed.

    ``res.result == RESULTS.successful`` when the integral belief is valid. With
    ``throw=True`` (the default) any other outcome raises, also under ``jit``.
    """

    successful = ""
    nonfinite_fvals = (
        "The function values contain NaN or inf: check the integrand (for `bayesquad`) "
        "or `fvals` (for `bayesquad_from_data`)."
    )
    nodes_outside_domain = (
        "Some nodes lie outside the integration domain [measure.lower, measure.upper]."
    )
    nonfinite_nodes = "The nodes contain NaN or inf."
    invalid_kernel_parameters = (
        "The kernel's lengthscales and output_scale must be finite and > 0."
    )
    invalid_measure = (
        "The measure is invalid: LebesgueMeasure needs lower < upper, GaussianMeasure a "
        "finite mean and a symmetric positive-definite covariance."
    )
    cholesky_failed = (
        "The Gram matrix is not positive definite even after adding the maximal jitter: "
        "the nodes are (nearly) duplicated or the lengthscales are far too long."
    )
    negative_fvals = (
        "WSABI-L models a non-negative integrand, but some function values are negative."
    )
