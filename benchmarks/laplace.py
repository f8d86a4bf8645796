"""Laplace and curvature benchmark: probnum_jax against laplace-torch and BackPACK.

One run trains a 64-100-100-10 tanh MLP on sklearn's digits with optax (MAP
under a unit Gaussian prior), copies the weights into a torch model, and then
runs, each in a fresh subprocess (so that peak memory and compile time are
measured per contestant):

* **Laplace** for ``last_layer + kron``, ``all + diag`` and ``all + kron`` with
  probnum_jax and with laplace-torch: fit time, marginal-likelihood tuning time
  (100 Adam steps, lr 0.1, scalar prior: laplace-torch's defaults), GLM-probit
  predict time, and accuracy / NLL / ECE (15 bins) on the test split. probnum_jax
  times are reported for the first call (with compilation) and after it.
* **Curvature overhead** relative to one plain gradient of the summed loss on a
  batch of 256, as in Dangel, Kunstner & Hennig (2020), for probnum_jax's
  ``posteriors.curvature`` and for BackPACK (installed with laplace-torch).

It writes ``laplace.json`` (raw numbers, ratios, machine info) and
``laplace.png`` to ``--out`` (default ``benchmarks/results``)::

    pip install -e ".[bench]" && python benchmarks/laplace.py
    python benchmarks/laplace.py --quick        # fewer timing repeats

Timings on a shared machine are noisy: compare the ratios within one run.
Times are the minimum over repeats (the least disturbed run).
"""

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))
# This file is called laplace.py: keep its folder off the path so that `import laplace` finds laplace-torch.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
CONFIGS = [("last_layer", "kron"), ("all", "diag"), ("all", "kron")]
OURS_HESSIAN = {"kron": "kfac", "diag": "diag"}
CURVATURE_BATCH = 256
TRAIN, SEED = 1200, 0


def load_data():
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)
    perm = np.random.default_rng(SEED).permutation(len(x))
    x, y = x[perm], y[perm]
    return (x[:TRAIN], y[:TRAIN]), (x[TRAIN:], y[TRAIN:])


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


# --- the MAP network (JAX, optax) ---------------------------------------------


def train_map(path):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    (x, y), _ = load_data()
    mlp = eqx.nn.MLP(64, 10, 100, 2, activation=jnp.tanh, key=jax.random.key(SEED))
    params, static = eqx.partition(mlp, eqx.is_inexact_array)
    optimizer = optax.adam(1e-3)

    def loss(p):  # negative log joint with a N(0, 1) prior: the MAP the Laplace approximation assumes
        logits = jax.vmap(eqx.combine(p, static))(x)
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, y).sum()
        return nll + 0.5 * sum(jnp.sum(w**2) for w in jax.tree.leaves(p))

    @jax.jit
    def train(p):
        def step(carry, _):
            p, state = carry
            updates, state = optimizer.update(jax.grad(loss)(p), state, p)
            return (optax.apply_updates(p, updates), state), None

        return jax.lax.scan(step, (p, optimizer.init(p)), None, length=3000)[0][0]

    params = train(params)
    arrays = {}
    for i, layer in enumerate(params.layers):
        arrays[f"w{i}"], arrays[f"b{i}"] = np.asarray(layer.weight), np.asarray(layer.bias)
    np.savez(path, **arrays)


def jax_model(path):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from probnum_jax import posteriors

    w = np.load(path)
    mlp = eqx.filter_eval_shape(eqx.nn.MLP, 64, 10, 100, 2, activation=jnp.tanh, key=jax.random.key(0))
    leaves = [jnp.asarray(w[f"{k}{i}"]) for i in range(3) for k in ("w", "b")]
    mlp = eqx.tree_at(lambda m: [leaf for layer in m.layers for leaf in (layer.weight, layer.bias)], mlp, leaves)
    return posteriors.from_equinox(mlp)


def torch_model(path):
    import numpy as np
    import torch

    w = np.load(path)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 100), torch.nn.Tanh(), torch.nn.Linear(100, 100), torch.nn.Tanh(), torch.nn.Linear(100, 10)
    )
    with torch.no_grad():
        for i in range(3):
            net[2 * i].weight.copy_(torch.from_numpy(w[f"w{i}"]))
            net[2 * i].bias.copy_(torch.from_numpy(w[f"b{i}"]))
    return net


def metrics_of(probs, y):
    import jax.numpy as jnp

    from probnum_jax.posteriors import metrics

    p, t = jnp.asarray(probs), jnp.asarray(y)
    return {"accuracy": float(metrics.accuracy(p, t)), "nll": float(metrics.nll(p, t)), "ece": float(metrics.ece(p, t))}


# --- workers (one subprocess each) --------------------------------------------


def worker_ours_laplace(path, subset, structure, repeats):
    import jax

    from probnum_jax.posteriors import laplace

    (x, y), (x_test, y_test) = load_data()
    x, y, x_test = jax.numpy.asarray(x), jax.numpy.asarray(y), jax.numpy.asarray(x_test)
    model_fn, params = jax_model(path)
    start_rss = peak_rss_mb()
    hessian = OURS_HESSIAN[structure]

    def fit():
        return jax.block_until_ready(laplace.fit(model_fn, params, (x, y), hessian=hessian, subset=subset))

    t0 = time.perf_counter()
    post = fit()
    fit_first = time.perf_counter() - t0
    fit_time = best_time(fit, repeats)

    def tune():
        return jax.block_until_ready(laplace.optimize_prior_precision(post, num_steps=100, learning_rate=0.1))

    t0 = time.perf_counter()
    tuned = tune()
    tune_first = time.perf_counter() - t0
    tune_time = best_time(tune, repeats)

    def predict():
        return jax.block_until_ready(laplace.predict(tuned, x_test, link="probit"))

    t0 = time.perf_counter()
    probs = predict()
    predict_first = time.perf_counter() - t0
    predict_time = best_time(predict, repeats)
    return {
        "fit_s": fit_time,
        "fit_first_call_s": fit_first,
        "tune_s": tune_time,
        "tune_first_call_s": tune_first,
        "predict_s": predict_time,
        "predict_first_call_s": predict_first,
        "prior_precision": float(tuned.prior_precision[0]),
        "log_marginal_likelihood": float(laplace.log_marginal_likelihood(tuned)),
        "peak_rss_increase_mb": peak_rss_mb() - start_rss,
        **metrics_of(probs, y_test),
    }


TORCH_MEMORY_CAP_GB = 6  # laplace-torch's default diagonal backend otherwise grows until the OOM killer acts


def worker_torch_laplace(path, subset, structure, repeats, backend="default"):
    resource.setrlimit(resource.RLIMIT_AS, (TORCH_MEMORY_CAP_GB * 2**30, TORCH_MEMORY_CAP_GB * 2**30))
    import torch
    from laplace import Laplace
    from laplace.curvature import BackPackGGN

    torch.set_num_threads(2)
    backend_cls = {"default": None, "backpack": BackPackGGN}[backend]
    (x, y), (x_test, y_test) = load_data()
    net = torch_model(path)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=len(x)
    )
    start_rss = peak_rss_mb()

    def make_and_fit():
        la = Laplace(net, "classification", subset_of_weights=subset, hessian_structure=structure, backend=backend_cls)
        la.fit(loader, progress_bar=False)
        return la

    fit_time = best_time(make_and_fit, repeats)
    la = make_and_fit()

    def tune():
        la.prior_precision = 1.0
        la.optimize_prior_precision(pred_type="glm", method="marglik", n_steps=100, lr=0.1, link_approx="probit")

    tune_time = best_time(tune, repeats)
    x_t = torch.from_numpy(x_test)

    def predict():  # in chunks of 100: the GLM predictive forms per-input Jacobians [n, C, p]
        with torch.no_grad():
            parts = [la(x_t[i : i + 100], pred_type="glm", link_approx="probit") for i in range(0, len(x_t), 100)]
            return torch.cat(parts).numpy()

    predict_time = best_time(predict, repeats)
    probs = predict()
    return {
        "fit_s": fit_time,
        "tune_s": tune_time,
        "predict_s": predict_time,
        "prior_precision": float(la.prior_precision.reshape(-1)[0]),
        "log_marginal_likelihood": float(la.log_marginal_likelihood().detach()),
        "peak_rss_increase_mb": peak_rss_mb() - start_rss,
        **metrics_of(probs, y_test),
    }


def worker_ours_curvature(path, repeats):
    import jax
    import jax.numpy as jnp
    import optax

    from probnum_jax.posteriors import curvature

    (x, y), _ = load_data()
    x, y = jnp.asarray(x[:CURVATURE_BATCH]), jnp.asarray(y[:CURVATURE_BATCH])
    model_fn, params = jax_model(path)
    key = jax.random.key(0)
    v = jax.tree.map(jnp.ones_like, params)
    quantities = {
        "gradient": lambda p: jax.grad(
            lambda q: optax.softmax_cross_entropy_with_integer_labels(model_fn(q, x), y).sum()
        )(p),
        "per_sample_grads": lambda p: curvature.per_sample_grads(model_fn, p, x, y),
        "batch_l2": lambda p: curvature.batch_l2(model_fn, p, x, y),
        "sum_grad_squared": lambda p: curvature.sum_grad_squared(model_fn, p, x, y),
        "grad_variance": lambda p: curvature.grad_variance(model_fn, p, x, y),
        "ggn_diag_mc": lambda p: curvature.ggn_diag_mc(model_fn, p, x, y, key=key),
        "ggn_diag": lambda p: curvature.ggn_diag(model_fn, p, x, y),
        "kfac_mc": lambda p: curvature.kfac(model_fn, p, x, y, key=key),
        "kflr": lambda p: curvature.kfac(model_fn, p, x, y),
        "hessian_diag": lambda p: curvature.hessian_diag(model_fn, p, x, y),
        "ggn_matvec": lambda p: curvature.ggn_matvec(model_fn, p, x, y)(v),
        "hessian_matvec": lambda p: curvature.hessian_matvec(model_fn, p, x, y)(v),
    }
    out = {}
    for name, fn in list(quantities.items()) + [("gradient", quantities["gradient"])]:  # gradient first and last
        f = jax.jit(fn)
        t0 = time.perf_counter()
        compiled = f.lower(params).compile()
        compile_s = time.perf_counter() - t0
        jax.block_until_ready(compiled(params))
        reps = max(3, repeats // 5) if name == "hessian_diag" else repeats
        memory = compiled.memory_analysis()
        t = best_time(lambda: jax.block_until_ready(compiled(params)), reps)
        out[name] = {
            "time_s": min(t, out.get(name, {}).get("time_s", t)),
            "compile_s": out.get(name, {}).get("compile_s", compile_s),
            "xla_temp_mb": getattr(memory, "temp_size_in_bytes", 0) / 2**20 if memory is not None else None,
        }
    return out


def worker_backpack_curvature(path, repeats):
    import torch
    from backpack import backpack, extend, extensions

    torch.set_num_threads(2)
    (x, y), _ = load_data()
    x, y = torch.from_numpy(x[:CURVATURE_BATCH]), torch.from_numpy(y[:CURVATURE_BATCH])
    net = extend(torch_model(path))
    loss_fn = extend(torch.nn.CrossEntropyLoss(reduction="sum"))
    quantities = {
        "gradient": None,
        "per_sample_grads": extensions.BatchGrad,
        "batch_l2": extensions.BatchL2Grad,
        "sum_grad_squared": extensions.SumGradSquared,
        "grad_variance": extensions.Variance,
        "ggn_diag_mc": extensions.DiagGGNMC,
        "ggn_diag": extensions.DiagGGNExact,
        "kfac_mc": extensions.KFAC,
        "kflr": extensions.KFLR,
        "hessian_diag": extensions.DiagHessian,
    }
    out = {}
    for name, ext in list(quantities.items()) + [("gradient", None)]:  # the plain gradient first and last

        def run():
            net.zero_grad()
            loss = loss_fn(net(x), y)
            if ext is None:
                loss.backward()
            else:
                with backpack(ext()):
                    loss.backward()

        run()
        t = best_time(run, repeats)
        out[name] = {"time_s": min(t, out.get(name, {}).get("time_s", t))}
    return out


WORKERS = {
    "ours_laplace": worker_ours_laplace,
    "torch_laplace": worker_torch_laplace,
    "ours_curvature": worker_ours_curvature,
    "backpack_curvature": worker_backpack_curvature,
}


def run_worker(name, *args):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps([name, *args])]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {
            "error": proc.stderr[-2000:] or f"exit code {proc.returncode}",
            "process_wall_s": time.perf_counter() - t0,
        }
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = time.perf_counter() - t0
    return result


# --- the report ----------------------------------------------------------------


def summarise(laplace_rows, curvature):
    summary = {"laplace": {}, "curvature_overhead": {}}
    for key, row in laplace_rows.items():
        ours, torch_ = row["probnum_jax"], row["laplace_torch"]
        if "error" in ours or "error" in torch_:
            continue
        summary["laplace"][key] = {
            "fit_speedup": torch_["fit_s"] / ours["fit_s"],
            "fit_speedup_first_call": torch_["fit_s"] / ours["fit_first_call_s"],
            "tune_speedup": torch_["tune_s"] / ours["tune_s"],
            "tune_speedup_first_call": torch_["tune_s"] / ours["tune_first_call_s"],
            "predict_speedup": torch_["predict_s"] / ours["predict_s"],
            "nll_difference": ours["nll"] - torch_["nll"],
            "ece_difference": ours["ece"] - torch_["ece"],
            "target_fit_and_tune_2x_met": torch_["fit_s"] / ours["fit_s"] >= 2
            and torch_["tune_s"] / ours["tune_s"] >= 2,
        }
    for lib, rows in curvature.items():
        if "error" in rows:
            continue
        base = rows["gradient"]["time_s"]
        summary["curvature_overhead"][lib] = {k: v["time_s"] / base for k, v in rows.items() if isinstance(v, dict)}
    ours = summary["curvature_overhead"].get("probnum_jax", {})
    first_order = ("per_sample_grads", "batch_l2", "sum_grad_squared", "grad_variance", "ggn_diag_mc")
    summary["target_first_order_and_mc_ggn_within_2x"] = {k: (ours.get(k, float("inf")) <= 2.0) for k in first_order}
    return summary


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    keys = list(result["laplace"])
    width = 0.13
    ax = axes[0]
    for j, (stage, colour) in enumerate((("fit", "C0"), ("tune", "C1"), ("predict", "C2"))):
        ours = [result["laplace"][k]["probnum_jax"].get(f"{stage}_s", np.nan) for k in keys]
        first = [result["laplace"][k]["probnum_jax"].get(f"{stage}_first_call_s", np.nan) for k in keys]
        theirs = [result["laplace"][k]["laplace_torch"].get(f"{stage}_s", np.nan) for k in keys]
        pos = np.arange(len(keys)) + (j - 1) * 3 * width
        ax.bar(pos - width, theirs, width, color=colour, alpha=0.35, hatch="//", label=f"{stage}: laplace-torch")
        ax.bar(pos, first, width, color=colour, alpha=0.6, label=f"{stage}: ours, first call")
        ax.bar(pos + width, ours, width, color=colour, label=f"{stage}: ours")
    ax.set_xticks(np.arange(len(keys)), keys)
    ax.set_yscale("log")
    ax.set_ylabel("seconds")
    ax.set_title("Laplace on digits (MLP 64-100-100-10)")
    ax.legend(fontsize=6, ncol=3)
    ax = axes[1]
    for j, (lib, marker) in enumerate((("probnum_jax", "o"), ("laplace_torch", "x"))):
        nll = [result["laplace"][k][lib].get("nll", np.nan) for k in keys]
        ece = [result["laplace"][k][lib].get("ece", np.nan) for k in keys]
        ax.scatter(nll, ece, marker=marker, s=60, label=lib)
        for k, a, b in zip(keys, nll, ece):
            ax.annotate(k, (a, b), fontsize=7)
    m = result["map"]
    ax.scatter([m["nll"]], [m["ece"]], marker="*", s=120, color="k", label="MAP")
    ax.set_xlabel("test NLL")
    ax.set_ylabel("test ECE (15 bins)")
    ax.set_title("Equal predictions: NLL and ECE")
    ax.legend(fontsize=8)
    ax = axes[2]
    overhead = result["summary"]["curvature_overhead"]
    names = [n for n in result["curvature"]["probnum_jax"] if n not in ("gradient", "process_wall_s")] if "probnum_jax" in overhead else []
    for j, lib in enumerate(("probnum_jax", "backpack")):
        vals = [overhead.get(lib, {}).get(n, np.nan) for n in names]
        ax.barh(np.arange(len(names)) + (j - 0.5) * 0.4, vals, 0.4, label=lib)
    ax.axvline(2.0, color="k", ls="--", lw=0.8)
    ax.set_yticks(np.arange(len(names)), names, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(f"time / one gradient (batch {CURVATURE_BATCH})")
    ax.set_title("Curvature overhead (BackPACK's measure)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--quick", action="store_true", help="fewer timing repeats")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, *rest = json.loads(args.worker)
        print(json.dumps(WORKERS[name](*rest)))
        return
    repeats = 3 if args.quick else 7
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "map.npz")
        train_map(weights)
        import jax

        _, (x_test, y_test) = load_data()
        model_fn, params = jax_model(weights)
        map_metrics = metrics_of(jax.nn.softmax(model_fn(params, jax.numpy.asarray(x_test))), y_test)
        laplace_rows = {}
        for subset, structure in CONFIGS:
            key = f"{subset}+{structure}"
            # laplace-torch's default backend (curvlinops) runs out of memory for the GGN of all
            # weights (the diagonal reached 23 GB before the OOM killer in a trial on this machine;
            # the Kronecker one fails inside the cap); its BackPACK backend is the one that runs.
            # Record the default backend's failure and fall back to BackPACK.
            ours = run_worker("ours_laplace", weights, subset, structure, repeats)
            torch_repeats = max(2, repeats // 2)
            torch_row = run_worker("torch_laplace", weights, subset, structure, torch_repeats, "default")
            torch_row["backend"] = "default"
            laplace_rows[key] = {"probnum_jax": ours, "laplace_torch": torch_row}
            if "error" in torch_row:
                laplace_rows[key]["laplace_torch_default_backend"] = {
                    "backend": "default",
                    "error": torch_row["error"][-300:],
                    "process_wall_s": torch_row.get("process_wall_s"),
                }
                torch_row = run_worker("torch_laplace", weights, subset, structure, torch_repeats, "backpack")
                torch_row["backend"] = "backpack"
                laplace_rows[key]["laplace_torch"] = torch_row
            print(key, json.dumps(laplace_rows[key]), flush=True)
        curvature = {
            "probnum_jax": run_worker("ours_curvature", weights, 5 * repeats),
            "backpack": run_worker("backpack_curvature", weights, 5 * repeats),
        }
        print("curvature", json.dumps(curvature), flush=True)
    result = {
        "benchmark": "laplace",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "jax_backend": jax.default_backend(),
        },
        "versions": {
            p: metadata.version(p)
            for p in ("jax", "equinox", "optax", "torch", "laplace-torch", "backpack-for-pytorch")
        },
        "setup": {
            "data": "sklearn load_digits, pixels / 16, float32",
            "train": TRAIN,
            "test": 1797 - TRAIN,
            "model": "MLP 64-100-100-10 tanh, MAP by optax Adam (3000 full-batch steps) under a N(0, 1) prior",
            "tuning": "marglik, scalar prior, 100 Adam steps, lr 0.1",
            "predict": "GLM predictive, probit link (laplace-torch in chunks of 100 inputs)",
            "curvature_batch": CURVATURE_BATCH,
            "repeats": repeats,
            "timing": "minimum over repeats; probnum_jax also reports its first call (with compilation)",
            "torch_memory_cap_gb": TORCH_MEMORY_CAP_GB,
        },
        "map": map_metrics,
        "laplace": laplace_rows,
        "curvature": curvature,
        "total_wall_s": None,
    }
    result["summary"] = summarise(laplace_rows, curvature)
    result["total_wall_s"] = time.perf_counter() - started
    with open(os.path.join(args.out, "laplace.json"), "w") as f:
        json.dump(result, f, indent=2)
    plot(result, os.path.join(args.out, "laplace.png"))
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
