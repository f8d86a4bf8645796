"""Weight posteriors of small MLPs side by side: MAP, ensembles, Laplace, VI, block-Gibbs.

Datasets (all offline): sklearn ``load_digits`` (classes 0-7 in-distribution,
8 and 9 held out of training and used as OOD inputs), ``load_breast_cancer``
(binary), ``load_diabetes`` (regression) and a synthetic teacher-student
regression (a planted random ReLU network). Inputs are standardised with the
training split's statistics, regression targets too (metrics are in
standardised units). Every (dataset, training-set fraction, method) row
records accuracy / NLL / ECE / Brier / OOD AUROC (classification) or RMSE /
Gaussian NLL / CRPS (regression; ECE and Brier have no regression counterpart
here, CRPS is the proper scoring rule reported instead), and wall times split
into training, posterior fitting and prediction (all first calls, so JIT
compilation is included). Failures are recorded with their reason.

Methods (model: one hidden layer of ``HIDDEN`` ReLU units, ``model_fn(params, x)``;
prior ``N(0, 1/PRIOR_PRECISION)`` on every weight):

* ``map``: full-batch Adam on the negative log joint (regression: noise
  variance learned jointly, by maximum likelihood);
* ``ensemble_5``: five MAP networks from different initialisations (mixture predictive);
* ``laplace_kfac`` / ``laplace_diag``: ``laplace.fit`` at the MAP over all
  weights, prior precision (and noise) tuned by the marginal likelihood, GLM
  predictive with the probit link;
* ``laplace_last_layer``: the same with ``subset="last_layer"`` and the full GGN;
* ``mean_field_vi``: ``vi.mean_field`` (Bayes by Backprop) started at the MAP;
* ``ivon``, ``vogn``: the natural-gradient VI optimisers from a random start;
* ``gibbs``: ``posteriors.gibbs`` block-Gibbs on the augmented ReLU MLP of
  Piccioli et al. (2023), started at the MAP weights (Gaussian likelihood for
  regression, probit for binary classification; not applicable to the
  8-class digits problem);
* ``block_coordinate_laplace``: ``posteriors.blocks.laplace`` from the MAP
  (block Gauss-Newton sweeps over the layers to the joint mode, then a dense
  Laplace block per unit), prior precision tuned post hoc by the block
  evidence (``blocks.optimize_prior_precision``), GLM predictive with the
  probit link;
* ``block_coordinate_vi``: ``posteriors.blocks.vi`` from the MAP (natural-gradient
  Gaussian VI one layer at a time, a dense covariance per unit), MC predictive.

Writes ``bnn_compare[_quick].{json,png,md}`` to ``--out`` (default ``benchmarks/results``)::

    python benchmarks/bnn_compare.py            # fractions 0.1, 0.3, 1.0 (the issue's spec)
    python benchmarks/bnn_compare.py --quick    # fractions 0.3, 1.0, fewer steps and samples
"""

import argparse
import json
import os
import sys
import time
import traceback

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_info

import probnum_jax as pnx

posteriors = pnx.posteriors
laplace, vi, metrics = posteriors.laplace, posteriors.vi, posteriors.metrics

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 0
HIDDEN = 50
PRIOR_PRECISION = 1.0
ENSEMBLE_SIZE = 5
OOD_CLASSES = (8, 9)
METHODS = (
    "map",
    "ensemble_5",
    "laplace_kfac",
    "laplace_diag",
    "laplace_last_layer",
    "mean_field_vi",
    "ivon",
    "vogn",
    "gibbs",
    "block_coordinate_laplace",
    "block_coordinate_vi",
)
NOT_IMPLEMENTED = {}
DATASETS = ("digits", "breast_cancer", "diabetes", "teacher_student")

CONFIGS = {
    "full": {
        "fractions": (0.1, 0.3, 1.0),
        "map_steps": 3000,
        "vi_steps": 4000,
        "mc_samples": 100,
        "marglik_steps": 100,
        "gibbs_warmup": 1000,
        "gibbs_samples": 200,
        "gibbs_thin": 5,
        "block_sweeps": 200,
        "block_vi_sweeps": 60,
    },
    "quick": {
        "fractions": (0.3, 1.0),
        "map_steps": 600,
        "vi_steps": 800,
        "mc_samples": 32,
        "marglik_steps": 50,
        "gibbs_warmup": 150,
        "gibbs_samples": 50,
        "gibbs_thin": 2,
        "block_sweeps": 50,
        "block_vi_sweeps": 20,
    },
}


# --- data ------------------------------------------------------------------------


def _standardise(x_train, *others):
    mean, std = x_train.mean(0), x_train.std(0)
    std = np.where(std > 0, std, 1.0)
    return [((a - mean) / std).astype(np.float32) for a in (x_train, *others)]


def load_dataset(name):
    """``dict(task, x_train, y_train, x_test, y_test[, x_ood], num_classes, source)``, standardised."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
    from sklearn.model_selection import train_test_split

    if name == "digits":
        d = load_digits()
        ood = np.isin(d.target, OOD_CLASSES)
        x, y = d.data[~ood], d.target[~ood]
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=SEED, stratify=y)
        x_tr, x_te, x_ood = _standardise(x_tr, x_te, d.data[ood])
        return {"task": "classification", "x_train": x_tr, "y_train": y_tr.astype(np.int32), "x_test": x_te,
                    "y_test": y_te.astype(np.int32), "x_ood": x_ood, "num_classes": 8,
                    "source": f"sklearn load_digits, classes {OOD_CLASSES} held out as OOD"}
    if name == "breast_cancer":
        d = load_breast_cancer()
        x_tr, x_te, y_tr, y_te = train_test_split(d.data, d.target, test_size=0.3, random_state=SEED, stratify=d.target)
        x_tr, x_te = _standardise(x_tr, x_te)
        return {"task": "classification", "x_train": x_tr, "y_train": y_tr.astype(np.int32), "x_test": x_te,
                    "y_test": y_te.astype(np.int32), "num_classes": 2, "source": "sklearn load_breast_cancer"}
    if name == "diabetes":
        d = load_diabetes()
        x_tr, x_te, y_tr, y_te = train_test_split(d.data, d.target, test_size=0.3, random_state=SEED)
        x_tr, x_te = _standardise(x_tr, x_te)
        y_tr, y_te = _standardise(y_tr[:, None], y_te[:, None])
        return {"task": "regression", "x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te, "num_classes": 1,
                    "source": "sklearn load_diabetes, targets standardised"}
    if name == "teacher_student":
        return teacher_student_data()
    raise ValueError(name)


def teacher_student_data(num=800, d_in=10, hidden=20, noise_std=0.3):
    """A planted random ReLU network ``d_in -> hidden -> 1`` (fan-in-scaled N(0, 1) weights) plus Gaussian noise."""
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(SEED + 1)
    x = rng.standard_normal((num, d_in))
    w1 = rng.standard_normal((d_in, hidden)) / np.sqrt(d_in)
    b1 = 0.1 * rng.standard_normal(hidden)
    w2 = rng.standard_normal((hidden, 1)) / np.sqrt(hidden)
    f = np.maximum(x @ w1 + b1, 0.0) @ w2
    f = (f - f.mean()) / f.std()
    y = f + noise_std * rng.standard_normal(f.shape)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=SEED)
    x_tr, x_te = _standardise(x_tr, x_te)
    return {"task": "regression", "x_train": x_tr, "y_train": y_tr.astype(np.float32), "x_test": x_te,
                "y_test": y_te.astype(np.float32), "num_classes": 1,
                "source": f"planted ReLU MLP {d_in}-{hidden}-1, unit-variance signal, noise std {noise_std} "
                f"(Bayes-optimal test RMSE {noise_std})"}


def subsample(data, fraction):
    """The first ``fraction`` of a fixed permutation of the training set (at least 10 points)."""
    n = data["x_train"].shape[0]
    k = max(10, round(fraction * n))
    idx = np.random.default_rng(SEED + 2).permutation(n)[:k]
    return data["x_train"][idx], data["y_train"][idx]


# --- the model -------------------------------------------------------------------


def model_fn(params, x):
    """One-hidden-layer ReLU MLP; ``params = ((W1[d, h], b1[h]), (W2[h, C], b2[C]))``."""
    (w1, b1), (w2, b2) = params
    return jax.nn.relu(x @ w1 + b1) @ w2 + b2


def init_params(key, d_in, d_out):
    k1, k2 = jax.random.split(key)
    return (
        (jax.random.normal(k1, (d_in, HIDDEN)) * jnp.sqrt(2.0 / d_in), jnp.zeros(HIDDEN)),
        (jax.random.normal(k2, (HIDDEN, d_out)) * jnp.sqrt(1.0 / HIDDEN), jnp.zeros(d_out)),
    )


def sum_nll(params, x, y, task, log_noise):
    f = model_fn(params, x)
    if task == "classification":
        return optax.softmax_cross_entropy_with_integer_labels(f, y).sum()
    var = jnp.exp(log_noise)
    return 0.5 * jnp.sum((y - f) ** 2 / var + jnp.log(2 * jnp.pi * var))


def sq_norm(params):
    return sum(jnp.sum(w**2) for w in jax.tree.leaves(params))


def train_map(key, x, y, task, d_out, steps):
    """MAP weights by full-batch Adam, and for regression the residual variance at the MAP.

    Regression trains at unit noise variance (the variance of the standardised
    targets): learning the noise jointly let it collapse and the network overfit
    diabetes in a trial. The noise variance used by the predictives is then the
    training residual variance (floored at 1e-2).
    """
    n = x.shape[0]
    optimizer = optax.adam(optax.cosine_decay_schedule(1e-2, steps, alpha=0.1))

    def loss(params):
        return (sum_nll(params, x, y, task, 0.0) + 0.5 * PRIOR_PRECISION * sq_norm(params)) / n

    def step(carry, _):
        params, state = carry
        updates, state = optimizer.update(jax.grad(loss)(params), state, params)
        return (optax.apply_updates(params, updates), state), None

    params = init_params(key, x.shape[1], d_out)
    params, _ = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)[0]
    if task == "classification":
        return params, jnp.asarray(1.0)
    return params, jnp.maximum(jnp.mean((y - model_fn(params, x)) ** 2), 1e-2)


train_map_jit = jax.jit(train_map, static_argnames=("task", "d_out", "steps"))
train_ensemble_jit = jax.jit(
    jax.vmap(train_map, in_axes=(0, None, None, None, None, None)), static_argnames=("task", "d_out", "steps")
)


# --- methods: each returns (predictive, times, info) -----------------------------
# predictive: probs [n, C] (classification) or (mean, var) [n, 1] (regression), as a
# function of the inputs, so that test and OOD inputs share one fitted posterior.


class Context:
    """Everything a method needs for one (dataset, fraction)."""

    def __init__(self, data, x, y, cfg, key):
        self.data, self.cfg, self.key = data, cfg, key
        self.task = data["task"]
        self.x, self.y = jnp.asarray(x), jnp.asarray(y)
        self.n = x.shape[0]
        self.d_out = data["num_classes"] if self.task == "classification" else 1
        self._map = None

    def map(self):
        """MAP params, noise variance and training time, computed once and shared."""
        if self._map is None:
            t = time.perf_counter()
            params, noise = jax.block_until_ready(
                train_map_jit(jax.random.key(SEED), self.x, self.y, self.task, self.d_out, self.cfg["map_steps"])
            )
            self._map = (params, float(noise), time.perf_counter() - t)
        return self._map


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = jax.block_until_ready(fn(*args, **kwargs))
    return out, time.perf_counter() - t


def method_map(ctx):
    params, noise, train_s = ctx.map()
    if ctx.task == "classification":
        return (lambda x: jax.nn.softmax(model_fn(params, x))), {"train_s": train_s}, {}
    return (lambda x: (model_fn(params, x), jnp.full((x.shape[0], 1), noise))), {"train_s": train_s}, {
        "noise_variance": noise
    }


def method_ensemble(ctx):
    keys = jax.random.split(jax.random.key(SEED + 10), ENSEMBLE_SIZE)
    (params, noise), train_s = timed(train_ensemble_jit, keys, ctx.x, ctx.y, ctx.task, ctx.d_out, ctx.cfg["map_steps"])
    outs = jax.vmap(model_fn, in_axes=(0, None))
    if ctx.task == "classification":
        return (lambda x: jax.nn.softmax(outs(params, x)).mean(0)), {"train_s": train_s}, {}

    def predict(x):
        f = outs(params, x)  # [M, n, 1]
        return f.mean(0), f.var(0) + noise.mean()  # mixture of equal-weight Gaussians: moments

    return predict, {"train_s": train_s}, {"noise_variances": np.asarray(noise).tolist()}


def _laplace(hessian, subset):
    def method(ctx):
        params, noise, train_s = ctx.map()
        regression = ctx.task == "regression"

        def fit_and_tune():
            post = laplace.fit(model_fn, params, (ctx.x, ctx.y), likelihood=ctx.task, hessian=hessian, subset=subset,
                               prior_precision=PRIOR_PRECISION, sigma_noise=float(np.sqrt(noise)))
            return laplace.optimize_prior_precision(post, num_steps=ctx.cfg["marglik_steps"],
                                                    tune_sigma_noise=regression)

        post, posterior_s = timed(fit_and_tune)
        info = {"prior_precision": np.asarray(post.prior_precision[0]).ravel()[:1].tolist(),
                    "sigma_noise": float(post.sigma_noise), "hessian": hessian, "subset": subset,
                    "log_marginal_likelihood": float(laplace.log_marginal_likelihood(post))}
        return (lambda x: laplace.predict(post, x, link="probit")), {"train_s": train_s, "posterior_s": posterior_s}, info

    return method


def _vi_predict(ctx, q, noise):
    key = jax.random.key(SEED + 20)
    kwargs = {"likelihood": ctx.task, "num_samples": ctx.cfg["mc_samples"], "key": key}
    if ctx.task == "regression":
        kwargs["noise_variance"] = noise
    return lambda x: vi.predict(model_fn, q, x, **kwargs)


def method_mean_field(ctx):
    params, noise, map_s = ctx.map()
    mf = vi.mean_field(model_fn, optax.adam(1e-2), num_data=ctx.n, likelihood=ctx.task,
                       prior_precision=PRIOR_PRECISION, noise_variance=noise, num_samples=2, init_std=1e-2)
    run = jax.jit(mf.run, static_argnames="num_steps")
    (state, losses), vi_s = timed(run, mf.init(params), (ctx.x, ctx.y), key=jax.random.key(SEED + 3),
                                  num_steps=ctx.cfg["vi_steps"])
    return _vi_predict(ctx, mf.posterior(state), noise), {"train_s": map_s + vi_s, "map_s": map_s, "vi_s": vi_s}, {
        "final_neg_elbo_per_datum": float(losses[-1]), "noise_variance": noise, "init": "MAP", "optimizer": "adam(1e-2)",
        "mc_samples_per_step": 2, "init_std": 1e-2}


def _natural_gradient(ctx, optimizer, grads_fn, steps):
    @jax.jit
    def run(params, key):
        def step(carry, k):
            params, state = carry
            theta, state = vi.sample_params(state, params, k)
            loss, grads, extra = grads_fn(theta)
            updates, state = optimizer.update(grads, state, params, **extra)
            return (optax.apply_updates(params, updates), state), loss

        return jax.lax.scan(step, (params, optimizer.init(params)), jax.random.split(key, steps))

    params0 = init_params(jax.random.key(SEED), ctx.x.shape[1], ctx.d_out)
    ((params, state), losses), train_s = timed(run, params0, jax.random.key(SEED + 4))
    return vi.posterior(state, params), losses, train_s


def method_ivon(ctx):
    _, noise, _ = ctx.map()  # regression: the MAP's noise variance (the MAP's time is not charged to IVON)
    steps = ctx.cfg["vi_steps"]
    optimizer = vi.ivon(optax.cosine_decay_schedule(0.1, steps, alpha=0.01), ess=float(ctx.n), hess_init=0.1,
                        beta2=0.9999, weight_decay=PRIOR_PRECISION / ctx.n, clip_radius=1.0)

    def grads_fn(theta):
        loss, grads = jax.value_and_grad(lambda p: sum_nll(p, ctx.x, ctx.y, ctx.task, jnp.log(noise)) / ctx.n)(theta)
        return loss, grads, {}

    q, losses, train_s = _natural_gradient(ctx, optimizer, grads_fn, steps)
    return _vi_predict(ctx, q, noise), {"train_s": train_s}, {
        "final_nll_per_datum": float(losses[-1]), "noise_variance": noise, "init": "random",
        "optimizer": "ivon(lr cosine 0.1, hess_init 0.1, beta2 0.9999, ess N, weight_decay prior/N, clip 1)"}


def method_vogn(ctx):
    _, noise, _ = ctx.map()
    steps = ctx.cfg["vi_steps"]
    optimizer = vi.vogn(optax.cosine_decay_schedule(1e-2, steps, alpha=0.1), ess=float(ctx.n),
                        prior_precision=PRIOR_PRECISION, hess_init=1.0, beta2=0.999)

    def grads_fn(theta):
        loss, grads, grad_squared = vi.vogn_grads(model_fn, theta, ctx.x, ctx.y, likelihood=ctx.task,
                                                  noise_variance=noise)
        return loss, grads, {"grad_squared": grad_squared}

    q, losses, train_s = _natural_gradient(ctx, optimizer, grads_fn, steps)
    return _vi_predict(ctx, q, noise), {"train_s": train_s}, {
        "final_nll_per_datum": float(losses[-1]), "noise_variance": noise, "init": "random",
        "optimizer": "vogn(lr cosine 1e-2, hess_init 1, beta2 0.999, ess N)"}


class NotApplicable(Exception):
    """The method does not apply to this dataset (recorded as 'not applicable')."""


def method_gibbs(ctx):
    gibbs = posteriors.gibbs
    if ctx.task == "classification" and ctx.d_out != 2:
        raise NotApplicable(f"gibbs supports Gaussian regression and binary probit only, not {ctx.d_out} classes")
    params, noise, map_s = ctx.map()
    d_in = ctx.x.shape[1]
    (w1, b1), (w2, b2) = params
    if ctx.task == "classification":  # softmax logit difference -> probit score (logistic ~ probit(x / 1.7))
        w2, b2 = (w2[:, 1:] - w2[:, :1]) / 1.7, (b2[1:] - b2[:1]) / 1.7
        spec = gibbs.MLPSpec((d_in, HIDDEN, 1), activation="relu", likelihood="probit", bias=True,
                             prior_precision=(float(d_in), float(HIDDEN)))
        y = ctx.y
    else:
        spec = gibbs.MLPSpec((d_in, HIDDEN, 1), activation="relu", likelihood="gaussian", bias=True,
                             noise_obs=noise, prior_precision=(float(d_in), float(HIDDEN)))
        y = ctx.y
    start = (jnp.concatenate([w1.T, b1[:, None]], 1), jnp.concatenate([w2.T, b2[:, None]], 1))

    def run():
        state = gibbs.init(spec, jax.random.key(SEED + 5), ctx.x, y, weights=start)
        return gibbs.sample(spec, jax.random.key(SEED + 6), ctx.x, y, num_samples=ctx.cfg["gibbs_samples"],
                            num_warmup=ctx.cfg["gibbs_warmup"], thin=ctx.cfg["gibbs_thin"], init_state=state)

    (weights, _), sample_s = timed(run)
    info = {"spec": {"widths": spec.widths, "activation": "relu", "likelihood": spec.likelihood, "bias": True,
                          "noise_pre": float(spec.noise_pre), "noise_post": float(spec.noise_post),
                          "noise_obs": float(spec.noise_obs), "prior_precision": np.asarray(spec.prior_precision).tolist()},
                "init": "MAP weights", "warmup": ctx.cfg["gibbs_warmup"], "samples": ctx.cfg["gibbs_samples"],
                "thin": ctx.cfg["gibbs_thin"]}
    times = {"train_s": map_s + sample_s, "map_s": map_s, "sample_s": sample_s}
    if ctx.task == "classification":

        def predict(x):
            p = gibbs.predict(spec, weights, x)
            return jnp.stack([1.0 - p, p], axis=1)

        return predict, times, info
    return (lambda x: gibbs.predict(spec, weights, x, include_noise=True)), times, info


def method_block_laplace(ctx):
    params, noise, map_s = ctx.map()
    def fit_and_tune():
        post = posteriors.blocks.laplace(
            model_fn, params, ctx.x, ctx.y, likelihood=ctx.task, prior_precision=PRIOR_PRECISION,
            sigma_noise=float(np.sqrt(noise)), num_sweeps=ctx.cfg["block_sweeps"],
        )
        return post, posteriors.blocks.optimize_prior_precision(post)

    (untuned, post), posterior_s = timed(fit_and_tune)
    info = {"sweeps": int(post.num_sweeps), "converged": bool(post.converged), "block": "unit", "init": "MAP",
            "prior_precision": float(post.prior_precision),
            "log_evidence_gain": float(posteriors.blocks.log_evidence(post, post.prior_precision)
                                       - posteriors.blocks.log_evidence(untuned, PRIOR_PRECISION))}
    return (lambda x: posteriors.blocks.predict(post, x, link="probit")), {
        "train_s": map_s, "posterior_s": posterior_s}, info


def method_block_vi(ctx):
    params, noise, map_s = ctx.map()
    post, posterior_s = timed(
        posteriors.blocks.vi, model_fn, params, ctx.x, ctx.y, key=jax.random.key(SEED + 7), likelihood=ctx.task,
        prior_precision=PRIOR_PRECISION, sigma_noise=float(np.sqrt(noise)), num_sweeps=ctx.cfg["block_vi_sweeps"],
        step_size=0.05,
    )
    info = {"sweeps": int(post.num_sweeps), "block": "unit", "init": "MAP", "mc_samples_per_step": 4, "step_size": 0.05}
    key = jax.random.key(SEED + 21)
    return (lambda x: posteriors.blocks.predict(post, x, method="nn", num_samples=ctx.cfg["mc_samples"], key=key)), {
        "train_s": map_s, "posterior_s": posterior_s}, info


METHOD_FNS = {
    "map": method_map,
    "ensemble_5": method_ensemble,
    "laplace_kfac": _laplace("kfac", "all"),
    "laplace_diag": _laplace("diag", "all"),
    "laplace_last_layer": _laplace("full", "last_layer"),
    "mean_field_vi": method_mean_field,
    "ivon": method_ivon,
    "vogn": method_vogn,
    "gibbs": method_gibbs,
    "block_coordinate_laplace": method_block_laplace,
    "block_coordinate_vi": method_block_vi,
}


# --- evaluation ------------------------------------------------------------------


def evaluate(ctx, predict):
    data = ctx.data
    x_test = jnp.asarray(data["x_test"])
    out, predict_s = timed(predict, x_test)
    if ctx.task == "classification":
        probs, y = jnp.clip(out, 0.0, 1.0), jnp.asarray(data["y_test"])
        probs = probs / probs.sum(1, keepdims=True)
        row = {"accuracy": float(metrics.accuracy(probs, y)), "nll": float(metrics.nll(probs, y)),
                   "ece": float(metrics.ece(probs, y)), "brier": float(metrics.brier(probs, y))}
        if "x_ood" in data:
            probs_ood, ood_s = timed(predict, jnp.asarray(data["x_ood"]))
            row["ood_auroc"] = float(metrics.ood_auroc(probs, probs_ood))
            predict_s += ood_s
    else:
        mean, var = out
        y = jnp.asarray(data["y_test"])
        row = {"rmse": float(metrics.rmse(mean, y)), "nll": float(metrics.gaussian_nll(mean, var, y)),
                   "crps": float(metrics.crps_gaussian(mean, var, y))}
    row["predict_s"] = predict_s
    return row


def run_one(ctx, method):
    if method in NOT_IMPLEMENTED:
        return {"status": "not implemented", "reason": NOT_IMPLEMENTED[method]}
    t0 = time.perf_counter()
    try:
        predict, times, info = METHOD_FNS[method](ctx)
        row = evaluate(ctx, predict)
    except NotApplicable as e:
        return {"status": "not applicable", "reason": str(e)}
    except Exception as e:  # noqa: BLE001 - a failure is a result
        return {"status": "failed", "reason": f"{type(e).__name__}: {e}"[:2000],
                    "traceback": traceback.format_exc()[-3000:], "wall_s": time.perf_counter() - t0}
    bad = [k for k in ("nll", "accuracy", "rmse") if k in row and not np.isfinite(row[k])]
    status = "ok" if not bad else "nonfinite"
    total_s = times["train_s"] + times.get("posterior_s", 0.0) + row["predict_s"]
    return dict(status=status, **row, **times, total_s=total_s, wall_s=time.perf_counter() - t0, info=info)


# --- report ----------------------------------------------------------------------

TABLE_COLUMNS = {
    "classification": ("accuracy", "nll", "ece", "brier", "ood_auroc", "total_s"),
    "regression": ("rmse", "nll", "crps", "total_s"),
}


def summarise(rows, fraction=1.0):
    summary = {}
    for dataset in DATASETS:
        task = next((r["task"] for r in rows if r["dataset"] == dataset), None)
        if task is None:
            continue
        table = {}
        for r in rows:
            if r["dataset"] != dataset or r["fraction"] != fraction:
                continue
            if r["status"] in ("ok", "nonfinite"):
                table[r["method"]] = {c: r.get(c) for c in TABLE_COLUMNS[task]}
            else:
                table[r["method"]] = {"status": r["status"], "reason": r.get("reason", "")[:200]}
        summary[dataset] = {"task": task, "fraction": fraction, "table": table}
    return summary


def markdown(summary):
    lines = []
    for dataset, s in summary.items():
        cols = TABLE_COLUMNS[s["task"]]
        lines += [f"### {dataset} ({s['task']}, training fraction {s['fraction']})", "",
                  "| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for method, v in s["table"].items():
            if "status" in v:
                cells = [v["status"] + ": " + v["reason"][:80]] + [""] * (len(cols) - 1)
            else:
                cells = ["—" if v.get(c) is None else (f"{v[c]:.2f}" if c == "total_s" else f"{v[c]:.3f}") for c in cols]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(rows, summary, fractions, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(summary)
    fig, axes = plt.subplots(3, len(datasets), figsize=(4.6 * len(datasets), 12), squeeze=False)
    # 11 methods, more than C0-C9: the dark tab20 shades first, then the light ones
    colours = {m: plt.get_cmap("tab20")((2 * i) % 20 + (2 * i) // 20) for i, m in enumerate(METHODS)}
    for j, dataset in enumerate(datasets):
        task = summary[dataset]["task"]
        ax = axes[0, j]
        for method in METHODS:
            pts = sorted((r["fraction"], r["nll"]) for r in rows
                         if r["dataset"] == dataset and r["method"] == method and r["status"] == "ok")
            if pts:
                ax.plot(*zip(*pts), "o-", color=colours[method], label=method, ms=4)
        ax.set_xscale("log")
        ax.set_xticks(fractions, [str(f) for f in fractions])
        ax.minorticks_off()
        ax.set_xlabel("training-set fraction")
        ax.set_ylabel("test NLL" if task == "classification" else "test Gaussian NLL")
        ax.set_title(f"{dataset}: data efficiency")
        table = summary[dataset]["table"]
        methods = [m for m in METHODS if m in table and "status" not in table[m]]
        second = "accuracy" if task == "classification" else "rmse"
        has_ood = any(v.get("ood_auroc") is not None for v in table.values())
        third = "ood_auroc" if has_ood else ("ece" if task == "classification" else "crps")
        for i, (metric, row_ax) in enumerate(((second, axes[1, j]), (third, axes[2, j]))):
            vals = [table[m].get(metric) for m in methods]
            vals = [np.nan if v is None else v for v in vals]
            row_ax.barh(np.arange(len(methods)), vals, color=[colours[m] for m in methods])
            row_ax.set_yticks(np.arange(len(methods)), methods, fontsize=7)
            row_ax.set_xlabel(f"{metric} (fraction 1.0)")
            for k, v in enumerate(vals):
                if np.isfinite(v):
                    row_ax.text(v, k, f" {v:.3f}", va="center", fontsize=6)
            if metric == "accuracy":
                lo = np.nanmin(vals) if np.isfinite(vals).any() else 0.0
                row_ax.set_xlim(max(0.0, lo - 0.05), 1.0)
    handles = [plt.Line2D([], [], color=colours[m], marker="o", label=m) for m in METHODS
               if any(r["method"] == m and r["status"] == "ok" for r in rows)]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fractions (0.3, 1.0), fewer steps and MC samples")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--fractions", nargs="*", type=float, help="override the mode's training-set fractions")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    cfg = dict(CONFIGS[mode])
    if args.fractions:
        cfg["fractions"] = tuple(args.fractions)
    os.makedirs(args.out, exist_ok=True)
    info = machine_info()
    started = time.perf_counter()
    rows = []
    for dataset in args.datasets:
        data = load_dataset(dataset)
        for fraction in cfg["fractions"]:
            x, y = subsample(data, fraction)
            ctx = Context(data, x, y, cfg, jax.random.key(SEED))
            for method in args.methods:
                r = run_one(ctx, method)
                row = dict(dataset=dataset, task=data["task"], fraction=fraction, num_train=int(x.shape[0]),
                           method=method, **r)
                rows.append(row)
                shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                         if k not in ("info", "traceback")}
                print(dataset, fraction, method, json.dumps(shown)[:400], flush=True)
    summary = summarise(rows, fraction=max(cfg["fractions"]))  # 1.0 unless --fractions says otherwise
    total = time.perf_counter() - started
    result = {
        "benchmark": "bnn_compare", "mode": mode, "machine": info, "config": cfg,
        "setup": {
            "model": f"MLP d-{HIDDEN}-C, ReLU, model_fn(params, x); prior N(0, 1/{PRIOR_PRECISION}) on every weight",
            "datasets": {d: load_dataset(d)["source"] for d in args.datasets},
            "splits": "sklearn train_test_split(test_size=0.3, random_state=0), stratified for classification; "
            "fractions are prefixes of a fixed permutation of the training split",
            "standardisation": "inputs (and regression targets) by the training split's mean and std",
            "metrics": "classification: accuracy, NLL, ECE (15 bins), Brier, OOD AUROC by max probability "
            "(digits, classes 8 and 9); regression: RMSE, Gaussian NLL, CRPS (standardised units)",
            "timing": "wall seconds of first calls (JIT compilation included). train_s includes the MAP for methods "
            "built on it (Laplace, mean-field VI, Gibbs; IVON and VOGN only borrow the MAP's regression noise "
            "variance, not charged); posterior_s is Laplace fit + marglik tuning; predict_s covers test and OOD "
            "inputs; total_s = train_s + posterior_s + predict_s; wall_s is the row's own wall time (the shared "
            "MAP is trained once per dataset and fraction, by the first method that needs it)",
            "methods": {"not_implemented": NOT_IMPLEMENTED},
        },
        "rows": rows, "summary": summary, "total_wall_s": total,
    }
    stem = "bnn_compare_quick" if args.quick else "bnn_compare"
    with open(os.path.join(args.out, stem + ".json"), "w") as f:
        json.dump(result, f, indent=1, default=lambda o: np.asarray(o).tolist())
    table = markdown(summary)
    with open(os.path.join(args.out, stem + ".md"), "w") as f:
        f.write(f"# bnn_compare ({mode}), total {total:.0f} s\n\n" + table)
    plot(rows, summary, cfg["fractions"], os.path.join(args.out, stem + ".png"))
    print(table)
    print(f"total wall time {total:.1f} s")


if __name__ == "__main__":
    main()
