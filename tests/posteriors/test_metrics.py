"""Metrics against scikit-learn, scipy and plain numpy references."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from sklearn.metrics import log_loss, roc_auc_score

from probnum_jax.posteriors import metrics


@pytest.fixture(scope="module")
def classification():
    rng = np.random.default_rng(0)
    logits = 2.0 * rng.normal(size=(500, 4))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(4, p=p) for p in probs])  # calibrated by construction
    return probs, y


def ece_numpy(probs, y, bins=15):
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    ece, mce = 0.0, 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            gap = abs(np.mean(pred[m] == y[m]) - np.mean(conf[m]))
            ece += m.mean() * gap
            mce = max(mce, gap)
    return ece, mce


def test_classification_metrics(classification):
    probs, y = classification
    p, t = jnp.asarray(probs), jnp.asarray(y)
    assert float(metrics.accuracy(p, t)) == pytest.approx(np.mean(probs.argmax(1) == y))
    assert float(metrics.nll(p, t)) == pytest.approx(log_loss(y, probs), rel=1e-10)
    onehot = np.eye(4)[y]
    assert float(metrics.brier(p, t)) == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, 1)), rel=1e-12)
    ece, mce = ece_numpy(probs, y)
    assert float(metrics.ece(p, t)) == pytest.approx(ece, rel=1e-10)
    assert float(metrics.mce(p, t)) == pytest.approx(mce, rel=1e-10)
    assert float(metrics.ece(p, t)) < 0.06  # calibrated labels: small ECE
    sharpened = jnp.asarray(probs**3 / np.sum(probs**3, 1, keepdims=True))
    assert float(metrics.ece(sharpened, t)) > 2 * float(metrics.ece(p, t))  # overconfident: larger ECE
    conf, acc, count = metrics.reliability_diagram(p, t, num_bins=10)
    assert float(count.sum()) == 500


def test_ood_auroc_against_sklearn(classification):
    probs, _ = classification
    rng = np.random.default_rng(1)
    out = rng.dirichlet(np.ones(4), size=300)
    out[:20] = probs[:20]  # ties between in- and out-of-distribution scores
    expected = roc_auc_score(np.r_[np.ones(500), np.zeros(300)], np.r_[probs.max(1), out.max(1)])
    assert float(metrics.ood_auroc(jnp.asarray(probs), jnp.asarray(out))) == pytest.approx(expected, rel=1e-12)


def test_regression_metrics():
    rng = np.random.default_rng(2)
    mean, var = rng.normal(size=(50, 2)), rng.uniform(0.1, 2.0, size=(50, 2))
    y = mean + np.sqrt(var) * rng.normal(size=(50, 2))
    m, v, t = jnp.asarray(mean), jnp.asarray(var), jnp.asarray(y)
    expected_nll = -np.mean(scipy.stats.norm.logpdf(y, mean, np.sqrt(var)))
    assert float(metrics.gaussian_nll(m, v, t)) == pytest.approx(expected_nll, rel=1e-12)
    assert float(metrics.rmse(m, t)) == pytest.approx(np.sqrt(np.mean((y - mean) ** 2)), rel=1e-12)

    def crps_integral(mu, s2, obs):  # CRPS = integral of (F(z) - 1[z >= obs])^2 dz
        cdf = scipy.stats.norm(mu, np.sqrt(s2)).cdf
        left = scipy.integrate.quad(lambda z: cdf(z) ** 2, -np.inf, obs)[0]
        right = scipy.integrate.quad(lambda z: (1 - cdf(z)) ** 2, obs, np.inf)[0]
        return left + right

    expected = np.mean([crps_integral(mean.flat[i], var.flat[i], y.flat[i]) for i in range(20)])
    assert float(metrics.crps_gaussian(m.ravel()[:20], v.ravel()[:20], t.ravel()[:20])) == pytest.approx(
        expected, rel=1e-7
    )


def test_bad_input():
    p = jnp.full((3, 2), 0.5)
    with pytest.raises(ValueError, match=r"y must be an \[n\]"):
        metrics.ece(p, jnp.zeros(4, int))
    with pytest.raises(TypeError, match="integer labels"):
        metrics.nll(p, jnp.zeros(3))
    with pytest.raises(ValueError, match=r"probs must be an \[n, C\]"):
        metrics.accuracy(p[0], jnp.zeros(3, int))
    with pytest.raises(ValueError, match="num_bins"):
        metrics.ece(p, jnp.zeros(3, int), num_bins=0)
    with pytest.raises(ValueError, match="same number of classes"):
        metrics.ood_auroc(p, jnp.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match="same shape"):
        metrics.rmse(jnp.zeros((3, 1)), jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="var must have the shape"):
        metrics.gaussian_nll(jnp.zeros((3, 1)), jnp.ones((3, 2)), jnp.zeros((3, 1)))
