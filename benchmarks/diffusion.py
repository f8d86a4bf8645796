"""Diffusion sampler benchmark: probabilistic ODE samplers (EK0/EK1) against diffrax and the classical samplers.

One run draws samples from three score-based diffusion models with every
sampler over a sweep of step counts / tolerances and records, per (problem,
sampler, setting): the mean number of score evaluations (NFE) per sample, the
sliced Wasserstein distance (SW) to held-out target samples, the error against
a tight reference solve of the *same* prior noise (deterministic samplers
only), the wall time after compilation and the compile time, and for the
probabilistic samplers how well the reported numerical std ranks and scales
the true error. It writes ``diffusion.json`` and ``diffusion.png`` (or
``diffusion_quick.*`` with ``--quick``) to ``--out`` (default
``benchmarks/results``).

Run it with::

    python benchmarks/diffusion.py             # 2000 samples, full sweeps
    python benchmarks/diffusion.py --quick     # 300 samples, short sweeps (< 4 min on 2 cores)
    python benchmarks/diffusion.py --out DIR   # another output folder

Problems (the mixtures with the VP SDE of Song et al. 2021, ``t`` from 1 to 1e-3; the
moons model with EDM's parameterisation, which trains much better on CPU budgets):

* ``gmm_ring``: ``problems.gmm_ring()``, 8 Gaussians on a circle in 2-D, exact score;
* ``gmm_random16``: ``problems.gmm_random(key(0), dim=16)``, exact score;
* ``moons``: a ``diffusion.ScoreMLP`` trained in this script by denoising score
  matching (``diffusion.train``, optax Adam) on sklearn ``make_moons`` (noise
  0.05, standardised); its held-out target is a fresh ``make_moons`` draw.

Samplers (``diffusion.sample``): ``euler_maruyama`` and ``pc`` (reverse SDE,
stochastic) and ``heun`` (Karras et al. 2022) at several ``num_steps``;
``diffrax.Tsit5()`` and ``diffrax.Heun()`` with a PID controller at several
tolerances (``atol = rtol``); ``ode.EK0(num_derivatives=2)`` (isotropic) and
``ode.EK1(num_derivatives=2, factorisation="blockdiag")`` (whose steps cost
``1 + d`` evaluations: the Jacobian's diagonal is formed column by column) at
several tolerances. Every sampler sees the same ``key``, hence the same prior
samples; the reference is ``diffrax.Tsit5()`` at ``atol = rtol = 1e-9``.

Wall time is that of one call of ``diffusion.sample`` for all samples (vmapped;
for the adaptive samplers the batch runs until its slowest sample is done),
measured on the second call after a first call that compiles; compile time is
the first call minus the second. The headline ratios (EK0 vs Tsit5) are taken
within this run; on a shared machine compare ratios, not absolute times.

Note: an earlier version of the mixture's exact score factorised every
diffused covariance per call (batched Cholesky and LU); inside the vmapped
sampler loops XLA's CPU LAPACK path made 128 samples take minutes where 32 took
seconds. The score now diagonalises each covariance once (no LAPACK per call).

References: Y. Song et al., "Score-based generative modeling through stochastic
differential equations" (ICLR 2021); T. Karras et al., "Elucidating the design
space of diffusion-based generative models" (NeurIPS 2022); N. Krämer et al.,
"Probabilistic ODE solutions in millions of dimensions" (ICML 2022).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # threaded BLAS thrashes on shared cores

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)  # the 1e-9 reference needs double precision

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.datasets import make_moons  # noqa: E402

from probnum_jax import diffusion, ode, problems  # noqa: E402

from _common import machine_info  # noqa: E402

REFERENCE_TOL = 1e-9
MAX_STEPS = 4096
SAMPLE_KEY = jax.random.key(2024)  # the prior noise, shared by every sampler
SW_KEY = jax.random.key(7)  # the projection directions, shared by every SW

# name -> (label, kind, colour); kind: "sde" (stochastic), "fixed" (deterministic,
# num_steps), "adaptive" (deterministic, tolerance), "probabilistic" (tolerance, std)
SAMPLERS = {
    "euler_maruyama": ("Euler-Maruyama (SDE)", "sde", "tab:gray"),
    "pc": ("predictor-corrector (SDE)", "sde", "tab:brown"),
    "heun": ("Heun, Karras grid", "fixed", "tab:olive"),
    "diffrax_tsit5": ("diffrax Tsit5", "adaptive", "tab:blue"),
    "diffrax_heun": ("diffrax Heun", "adaptive", "tab:cyan"),
    "ek0": ("EK0(q=2), isotropic", "probabilistic", "tab:red"),
    "ek1_blockdiag": ("EK1(q=2), blockdiag", "probabilistic", "tab:purple"),
}


def settings_for(quick):
    if quick:
        return dict(
            num_samples=300, train_steps=1500, width=64, depth=3,
            euler_maruyama=[30, 300], pc=[50], heun=[10, 25],
            diffrax_tsit5=[1e-1, 1e-2, 1e-3, 1e-4], diffrax_heun=[1e-2, 1e-3],
            ek0=[1e-2, 1e-3, 1e-4, 1e-5], ek1_blockdiag=[1e-2],
            overrides={},
        )
    return dict(
        num_samples=2000, train_steps=6000, width=128, depth=3,
        euler_maruyama=[30, 100, 300, 1000], pc=[30, 100, 300, 500], heun=[5, 10, 18, 35, 70],
        diffrax_tsit5=[1e-2, 1e-3, 1e-4, 1e-5, 1e-6], diffrax_heun=[1e-2, 1e-3, 1e-4],
        ek0=[1e-2, 1e-3, 1e-4, 1e-5, 1e-6], ek1_blockdiag=[1e-2, 1e-3],
        overrides={},
    )


def solver_for(name):
    return {
        "diffrax_tsit5": diffrax.Tsit5(),
        "diffrax_heun": diffrax.Heun(),
        "ek0": ode.EK0(num_derivatives=2),
        "ek1_blockdiag": ode.EK1(num_derivatives=2, factorisation="blockdiag"),
    }.get(name, name)


_START = time.perf_counter()


def log(msg):
    print(f"[{time.perf_counter() - _START:6.1f} s] {msg}", flush=True)


# -- problems ---------------------------------------------------------------------------


def train_moons(quick, cfg):
    """A ScoreMLP trained by denoising score matching on standardised two-moons data."""
    sde = diffusion.EDM()
    data, _ = make_moons(8000, noise=0.05, random_state=0)
    shift, scale = data.mean(0), data.std(0)
    standardise = lambda x: jnp.asarray((x - shift) / scale)  # noqa: E731
    net_fn, params = diffusion.from_equinox(
        diffusion.ScoreMLP(2, key=jax.random.key(1), width=cfg["width"], depth=cfg["depth"]))
    model_fn = sde.score_model(net_fn)
    optimizer = optax.adam(optax.cosine_decay_schedule(3e-3, cfg["train_steps"], alpha=0.05))
    t0 = time.perf_counter()
    params, losses = diffusion.train(model_fn, params, sde, standardise(data), optimizer,
                                     key=jax.random.key(2), num_steps=cfg["train_steps"], batch_size=256)
    losses = np.asarray(jax.block_until_ready(losses))
    info = dict(train_steps=cfg["train_steps"], batch_size=256, width=cfg["width"], depth=cfg["depth"],
                sde="EDM()", train_time_s=time.perf_counter() - t0, loss_first_100=float(losses[:100].mean()),
                loss_last_100=float(losses[-100:].mean()))

    def heldout(key, n):
        seed = int(jax.random.randint(key, (), 0, 2**30))
        return standardise(make_moons(n, noise=0.05, random_state=seed)[0])

    return (lambda x, t: model_fn(params, x, t)), sde, heldout, info


def make_problems(quick, cfg, names):
    sde = diffusion.VPSDE()
    out = {}
    for name, gmm in (("gmm_ring", problems.gmm_ring()),
                      ("gmm_random16", problems.gmm_random(jax.random.key(0), dim=16))):
        out[name] = dict(score_fn=gmm.score_fn(sde), sde=sde, dim=gmm.dim, heldout=gmm.sample,
                         info=dict(kind="Gaussian mixture, exact score", num_components=int(gmm.weights.shape[0])))
    if "moons" not in names:
        return out
    score_fn, sde, heldout, info = train_moons(quick, cfg)
    out["moons"] = dict(score_fn=score_fn, sde=sde, dim=2, heldout=heldout,
                        info=dict(kind="ScoreMLP trained on sklearn make_moons(noise=0.05), standardised", **info))
    return out


# -- one sampler run --------------------------------------------------------------------


def run_sampler(score_fn, sde, dim, num_samples, solver, *, num_steps=None, tol=None):
    """Compile-and-run, then a timed run; returns samples, info and the two wall times."""
    kwargs = dict(key=SAMPLE_KEY, shape=(dim,), num_samples=num_samples, solver=solver,
                  max_steps=MAX_STEPS, throw=False)
    if num_steps is not None:
        kwargs["num_steps"] = num_steps
    if tol is not None:
        kwargs.update(atol=tol, rtol=tol)
    t0 = time.perf_counter()
    jax.block_until_ready(diffusion.sample(score_fn, sde, **kwargs))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    x, info = jax.block_until_ready(diffusion.sample(score_fn, sde, **kwargs))
    run = time.perf_counter() - t0
    return x, info, run, max(first - run, 0.0)


def spread_metrics(err, std):
    """Spearman correlation across samples of reported std vs true error; geometric mean of error/std."""
    rho = spearmanr(std, err).statistic
    ratio = np.exp(np.mean(np.log(np.maximum(err, 1e-300) / std)))
    return float(rho), float(ratio)


def run_problem(pname, prob, cfg):
    cfg = {**cfg, **cfg["overrides"].get(pname, {})}
    sde = prob["sde"]
    n, dim, score_fn = cfg["num_samples"], prob["dim"], prob["score_fn"]
    target = prob["heldout"](jax.random.key(11), n)
    target2 = prob["heldout"](jax.random.key(12), n)
    sw = lambda x: float(diffusion.sliced_wasserstein(x, target, key=SW_KEY))  # noqa: E731
    floor = sw(target2)
    x_ref, ref_info, ref_time, ref_compile = run_sampler(score_fn, sde, dim, n, diffrax.Tsit5(), tol=REFERENCE_TOL)
    ref_ok = np.asarray(ref_info.result == ode.RESULTS.successful)
    x_ref = np.asarray(x_ref)
    log(f"[{pname}] d={dim} n={n}  SW floor (held-out vs held-out) {floor:.4f}  reference Tsit5@{REFERENCE_TOL:g}: "
        f"NFE {float(ref_info.nfe.mean()):.0f}, SW {sw(x_ref):.4f}, {ref_time:.2f} s, {int(ref_ok.sum())}/{n} ok")
    record = dict(dim=dim, sw_floor=floor, reference=dict(
        solver="diffrax.Tsit5", tol=REFERENCE_TOL, nfe_mean=float(ref_info.nfe.mean()), sw=sw(x_ref),
        time_s=ref_time, compile_s=ref_compile, num_failed=int(n - ref_ok.sum())), samplers={})
    scatter = None
    for sname, (label, kind, _) in SAMPLERS.items():
        rows = []
        for setting in cfg[sname]:
            by_steps = kind in ("sde", "fixed")
            x, info, run_s, compile_s = run_sampler(
                score_fn, sde, dim, n, solver_for(sname),
                num_steps=setting if by_steps else None, tol=None if by_steps else setting)
            x = np.asarray(x)
            ok = np.asarray(info.result == ode.RESULTS.successful) & ref_ok
            row = dict(num_steps=setting) if by_steps else dict(tol=setting)
            row.update(nfe_mean=float(info.nfe.mean()), nfe_max=int(info.nfe.max()),
                       sw=sw(x[ok]) if ok.any() else None, time_s=run_s, compile_s=compile_s,
                       num_failed=int(np.sum(~np.asarray(info.result == ode.RESULTS.successful))))
            if kind != "sde":
                err = np.linalg.norm(x - x_ref, axis=1)[ok]
                row.update(err_mean=float(err.mean()), err_median=float(np.median(err)),
                           err_rms=float(np.sqrt(np.mean(err**2))))
            if kind == "probabilistic":
                std = np.linalg.norm(np.asarray(info.std), axis=1)[ok]
                rho, ratio = spread_metrics(err, std)
                row.update(std_mean=float(std.mean()), spearman_std_err=rho, geomean_err_over_std=ratio)
                if sname == "ek0" and setting == cfg["ek0"][len(cfg["ek0"]) // 2]:
                    scatter = dict(tol=setting, std=std.tolist(), err=err.tolist())
            rows.append(row)
            extra = "" if kind == "sde" else f" err {row['err_mean']:.2e}"
            if kind == "probabilistic":
                extra += f" spearman {row['spearman_std_err']:+.2f} err/std {row['geomean_err_over_std']:.2g}"
            log(f"  {sname:15s} {('steps ' + str(setting)) if by_steps else f'tol {setting:g}':10s} NFE "
                f"{row['nfe_mean']:7.1f}  SW {row['sw']:.4f}{extra}  {run_s:.3f} s (+{compile_s:.1f} s compile)")
        record["samplers"][sname] = dict(label=label, kind=kind, rows=rows)
    record["ek0_scatter"] = scatter
    return record


# -- summary ratios ---------------------------------------------------------------------


def _interp_loglog(x, xs, ys):
    """Interpolate ``y(x)`` on log-log axes within the range of ``xs``; ``None`` outside."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    if not xs[0] / 1.15 <= x <= 1.15 * xs[-1]:  # up to 15% extrapolation (log-linear end segments)
        return None
    if x < xs[0] or x > xs[-1]:
        i = 0 if x < xs[0] else -2
        slope = np.log(ys[i + 1] / ys[i]) / np.log(xs[i + 1] / xs[i])
        return float(ys[i] * (x / xs[i]) ** slope)
    return float(np.exp(np.interp(np.log(x), np.log(xs), np.log(ys))))


def _nfe_to_reach(quality, nfe, values):
    """Smallest NFE at which the (running-minimum, log-log interpolated) curve ``values(nfe)`` reaches ``quality``."""
    order = np.argsort(nfe)
    nfe, best = np.asarray(nfe, float)[order], np.minimum.accumulate(np.asarray(values, float)[order])
    if best[0] <= quality:
        return float(nfe[0])
    for i in range(1, len(nfe)):
        if best[i] <= quality:
            frac = np.log(best[i - 1] / quality) / np.log(best[i - 1] / best[i])
            return float(np.exp(np.log(nfe[i - 1]) + frac * np.log(nfe[i] / nfe[i - 1])))
    return None


def summarise(record):
    ek0, tsit5 = record["samplers"]["ek0"]["rows"], record["samplers"]["diffrax_tsit5"]["rows"]
    col = lambda rows, k: [r[k] for r in rows]  # noqa: E731
    # (a) NFE that EK0 needs to reach each Tsit5 setting's SW (and error vs reference); 2% slack on SW for
    # Monte-Carlo noise, since both curves flatten at the same sampling floor.
    matched = []
    for r in tsit5:
        nfe_sw = _nfe_to_reach(1.02 * r["sw"], col(ek0, "nfe_mean"), col(ek0, "sw"))
        nfe_err = _nfe_to_reach(r["err_mean"], col(ek0, "nfe_mean"), col(ek0, "err_mean"))
        matched.append(dict(tsit5_tol=r["tol"], tsit5_nfe=r["nfe_mean"], tsit5_sw=r["sw"], tsit5_err=r["err_mean"],
                            ek0_nfe_to_reach_sw=nfe_sw, ek0_nfe_to_reach_err=nfe_err,
                            nfe_ratio_sw=None if nfe_sw is None else nfe_sw / r["nfe_mean"],
                            nfe_ratio_err=None if nfe_err is None else nfe_err / r["nfe_mean"]))
    # headline: the cheapest Tsit5 setting whose SW is within 5% of Tsit5's best
    best_sw = min(col(tsit5, "sw"))
    head = next(m for m in sorted(matched, key=lambda m: m["tsit5_nfe"]) if m["tsit5_sw"] <= 1.05 * best_sw)
    same_tol = [dict(tol=a["tol"], ek0_nfe=a["nfe_mean"], tsit5_nfe=b["nfe_mean"], ek0_sw=a["sw"], tsit5_sw=b["sw"],
                     ek0_err=a["err_mean"], tsit5_err=b["err_mean"]) for a in ek0 for b in tsit5 if a["tol"] == b["tol"]]
    # (b) wall time at equal NFE: Tsit5's time interpolated at each EK0 NFE within Tsit5's NFE range
    time_ratios = []
    for r in ek0:
        t_tsit5 = _interp_loglog(r["nfe_mean"], col(tsit5, "nfe_mean"), col(tsit5, "time_s"))
        if t_tsit5 is not None:
            time_ratios.append(dict(nfe=r["nfe_mean"], ek0_time_s=r["time_s"], tsit5_time_s=t_tsit5,
                                    ratio=r["time_s"] / t_tsit5))
    per_nfe = [a["time_s"] / a["nfe_mean"] / (b["time_s"] / b["nfe_mean"])
               for a in ek0 for b in tsit5 if a["tol"] == b["tol"]]
    return dict(
        target_a=dict(definition="EK0 NFE needed to reach the SW of Tsit5 (x1.02 for Monte-Carlo noise) / Tsit5 "
                      "NFE; headline at the cheapest Tsit5 tolerance within 5% of Tsit5's best SW",
                      headline_tsit5_tol=head["tsit5_tol"], headline_nfe_ratio_sw=head["nfe_ratio_sw"],
                      headline_nfe_ratio_err=head["nfe_ratio_err"], per_tsit5_setting=matched,
                      at_same_tolerance=same_tol),
        target_b=dict(definition="EK0 wall time / Tsit5 wall time (log-log interpolated) at EK0's NFE; target <= 2",
                      median_ratio=float(np.median([t["ratio"] for t in time_ratios])) if time_ratios else None,
                      at_nfe=time_ratios,
                      time_per_nfe_ratio_same_tol=float(np.median(per_nfe)) if per_nfe else None),
        target_c=dict(definition="Spearman correlation across samples of |info.std| and |x - x_ref|, per EK0 tolerance",
                      spearman=[r["spearman_std_err"] for r in ek0],
                      geomean_err_over_std=[r["geomean_err_over_std"] for r in ek0],
                      median_spearman=float(np.median([r["spearman_std_err"] for r in ek0]))),
    )


# -- plot -------------------------------------------------------------------------------


def plot(results, path):
    names = list(results)
    fig, axes = plt.subplots(len(names), 3, figsize=(15, 4.2 * len(names)), squeeze=False)
    for row, pname in zip(axes, names):
        rec = results[pname]
        ax_sw, ax_err, ax_sc = row
        for sname, s in rec["samplers"].items():
            colour = SAMPLERS[sname][2]
            rows = sorted(s["rows"], key=lambda r: r["nfe_mean"])
            nfe = [r["nfe_mean"] for r in rows]
            ls = "--" if s["kind"] == "sde" else "-"
            ax_sw.plot(nfe, [r["sw"] for r in rows], ls, marker="o", ms=4, color=colour, label=s["label"])
            if s["kind"] != "sde":
                ax_err.plot(nfe, [r["err_mean"] for r in rows], marker="o", ms=4, color=colour, label=s["label"])
        ax_sw.axhline(rec["sw_floor"], color="k", lw=0.8, ls=":", label="floor (held-out vs held-out)")
        ax_sw.set(xscale="log", yscale="log", xlabel="mean NFE per sample", ylabel="sliced Wasserstein to held-out",
                  title=f"{pname} (d={rec['dim']}): quality vs NFE")
        ax_err.set(xscale="log", yscale="log", xlabel="mean NFE per sample",
                   ylabel=f"mean |x - x_ref| (Tsit5 @ {REFERENCE_TOL:g})", title="error vs reference (same noise)")
        sc = rec["ek0_scatter"]
        if sc is not None:
            std, err = np.asarray(sc["std"]), np.asarray(sc["err"])
            ax_sc.scatter(std, np.maximum(err, 1e-16), s=5, alpha=0.5, color="tab:red")
            lo, hi = min(std.min(), err[err > 0].min()), max(std.max(), err.max())
            ax_sc.plot([lo, hi], [lo, hi], "k:", lw=0.8, label="error = std")
            rho = spearmanr(std, err).statistic
            ax_sc.set(xscale="log", yscale="log", xlabel="reported std |info.std|", ylabel="true error |x - x_ref|",
                      title=f"EK0 at tol {sc['tol']:g}: Spearman {rho:.2f}")
            ax_sc.legend(fontsize=7)
        for ax in (ax_sw, ax_err):
            ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main -------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 samples, short sweeps (< 4 min)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    parser.add_argument("--problems", nargs="+", default=["gmm_ring", "gmm_random16", "moons"],
                        help="a subset of the problems")
    args = parser.parse_args(argv)
    cfg = settings_for(args.quick)
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    machine = machine_info()
    probs = {k: v for k, v in make_problems(args.quick, cfg, args.problems).items() if k in args.problems}
    if "moons" in probs:
        log(f"moons score model: {json.dumps(probs['moons']['info'])}")
    results = {pname: run_problem(pname, prob, cfg) for pname, prob in probs.items()}
    for pname in results:
        results[pname]["problem"] = probs[pname]["info"]
        results[pname]["summary"] = summarise(results[pname])
    stem = "diffusion_quick" if args.quick else "diffusion"
    payload = dict(
        benchmark="diffusion samplers: probnum_jax EK0/EK1 vs diffrax Tsit5/Heun vs Euler-Maruyama/PC/Heun",
        mode="quick" if args.quick else "full",
        machine=machine,
        settings=dict(
            **cfg, sde="mixtures: VPSDE(beta_min=0.1, beta_max=20, t_min=1e-3, t_max=1); moons: EDM()", dtype="float64",
            max_steps=MAX_STEPS, reference=f"diffrax.Tsit5 at atol=rtol={REFERENCE_TOL:g}, same key",
            atol_equals_rtol=True, sample_key="jax.random.key(2024)",
            sw="diffusion.sliced_wasserstein, 256 projections (key 7), 256 quantiles, vs held-out targets "
               "(key 11); sw_floor = held-out (key 12) vs held-out",
            nfe="info.nfe.mean() over samples (Taylor initialisation, rejected steps, Jacobian columns included)",
            error="per-sample Euclidean |x - x_ref|; err_mean its mean over samples (deterministic samplers)",
            std="per-sample Euclidean norm of info.std",
            timing="one diffusion.sample call for all samples (vmapped), second call after a compiling first "
                   "call, jax.block_until_ready; compile_s = first - second",
            failures="samples with a non-successful info.result (or whose reference failed) are excluded",
        ),
        results=results,
    )
    payload["total_wall_s"] = time.perf_counter() - started
    with open(os.path.join(args.out, stem + ".json"), "w") as f:
        json.dump(payload, f, indent=1)
    plot(results, os.path.join(args.out, stem + ".png"))

    log("\nEK0 vs diffrax Tsit5, ratios within this run:")
    for pname, rec in results.items():
        s = rec["summary"]
        fmt = lambda v, spec=".2f": "n/a" if v is None else format(v, spec)  # noqa: E731
        log(f"  {pname:13s} (a) NFE to Tsit5's SW at tol {s['target_a']['headline_tsit5_tol']:g}: "
            f"x{fmt(s['target_a']['headline_nfe_ratio_sw'])} (to its error: x{fmt(s['target_a']['headline_nfe_ratio_err'])})"
            f"  (b) time at equal NFE x{fmt(s['target_b']['median_ratio'])}"
            f" (per NFE x{fmt(s['target_b']['time_per_nfe_ratio_same_tol'])})"
            f"  (c) Spearman {[round(v, 2) for v in s['target_c']['spearman']]}"
            f" err/std {[float(f'{v:.2g}') for v in s['target_c']['geomean_err_over_std']]}")
    log(f"total {payload['total_wall_s']:.0f} s; wrote {os.path.join(args.out, stem)}.{{json,png}}")


if __name__ == "__main__":
    main()
