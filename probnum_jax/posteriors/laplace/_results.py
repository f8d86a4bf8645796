"""Outcomes of a Laplace fit, reported as values (``post.result``) rather than exceptions."""

import equinox as eqx


class RESULTS(eqx.Enumeration):
    """Why a fit is (not) usable. ``post.result == RESULTS.successful`` when it is."""

    successful = ""
    nonfinite_params = "The parameters contain NaN or inf: the Laplace approximation needs a finite MAP."
    nonfinite_curvature = (
        "The curvature (or the loss at the MAP) contains NaN or inf: check that the model's "
        "outputs are finite on the data and that the labels/targets are valid."
    )
    invalid_hyperparameters = "prior_precision and sigma_noise must be > 0."
