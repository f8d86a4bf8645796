"""ODE work-precision benchmark: probnum_jax against probdiffeq, diffrax and scipy.

One run solves the same initial value problems with every contestant over a sweep
of tolerances and records, per (problem, contestant, tolerance): the final error
at ``t1`` against a high-accuracy reference, the run time after compilation, the
compile time, XLA's temporary-memory estimate, step counts and function
evaluations. It writes ``ode_workprecision.json`` and ``ode_workprecision.png``
(plus a cache of the reference solutions) to ``--out`` (default
``benchmarks/results``).

Run it with::

    pip install -e ".[bench]" && python benchmarks/ode_workprecision.py
    python benchmarks/ode_workprecision.py --quick          # 4 tolerances, fewer repeats
    python benchmarks/ode_workprecision.py --out /tmp/wp     # another output folder
    python benchmarks/ode_workprecision.py --recompute-references

Contestants (``q = 4`` derivatives for all probabilistic solvers):

* probnum_jax ``EK0`` (isotropic) on non-stiff problems, ``EK1`` (dense) on all;
* probdiffeq 0.9.2 ``TS0`` (isotropic) and ``TS1`` (dense, exact Jacobian), filter
  strategy with dynamic calibration, its adaptive terminal-value solver;
* diffrax ``Tsit5`` (non-stiff) and ``Kvaerno5`` (stiff) with ``PIDController``;
* scipy ``solve_ivp`` ``DOP853`` (non-stiff) and ``Radau`` (stiff), timed as a
  reference only (it calls the jitted JAX vector field from Python).

EK0, TS0, Tsit5 and DOP853 are not run on the stiff problems (HIRES and van der
Pol with mu = 1e3): explicit-type methods need O(stiffness) steps there.

All JAX contestants are wrapped in one ``jax.jit`` over ``(y0, atol, rtol)`` so
that one compilation serves every tolerance; compile time is the wall time of
``jit(...).lower(...).compile()``. Tolerances are ``atol = rtol = tol``, with the
usual RMS error norm of ``err / (atol + rtol |y|)`` in every library.

Work-precision methodology follows E. Hairer, S. P. Nørsett & G. Wanner,
*Solving Ordinary Differential Equations I* (Springer, 1993), Sec. II.10 and the
benchmark design of N. Krämer & P. Hennig, "Stable implementation of
probabilistic ODE solvers" (JMLR, 2024).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # threaded LAPACK thrashes on shared cores

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from probdiffeq import ivpsolve  # noqa: E402
from probdiffeq import probdiffeq as pdq  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import probnum_jax as pnx  # noqa: E402

from _common import machine_info  # noqa: E402

NUM_DERIVATIVES = 4
MAX_STEPS = 200_000
TARGET_ERROR = 1e-6
ERROR_NUGGET = 1e-5
REFERENCE_TOL = 1e-13

PROBLEMS = {
    "lotka_volterra": (lambda: pnx.problems.lotka_volterra(t1=50.0), False),
    "pleiades": (pnx.problems.pleiades, False),
    "hires": (pnx.problems.hires, True),
    # t1 = 2 mu: the VDPOL horizon of the Mazzia-Magherini test set, which
    # contains two fast relaxation transitions (near t = 0.81 mu and 1.61 mu).
    "van_der_pol_mu1e3": (lambda: pnx.problems.van_der_pol(mu=1e3, t1=2000.0), True),
}


# --------------------------------------------------------------------------- contestants


def ours(solver_cls, factorisation):
    solver = solver_cls(num_derivatives=NUM_DERIVATIVES, factorisation=factorisation)

    def build(ivp):
        def solve(y0, atol, rtol):
            sol = pnx.ode.solve(
                ivp.vector_field, y0, t0=ivp.t0, t1=ivp.t1, args=ivp.args, solver=solver,
                atol=atol, rtol=rtol, max_steps=MAX_STEPS, throw=False,
            )
            return dict(
                y1=sol.mean[-1], std1=sol.std[-1], result=sol.result,
                num_steps=sol.num_steps, num_rejected=sol.num_rejected, f_evals=sol.num_f_evals,
            )

        return solve

    def status(out, ivp):
        ok = bool(out["result"] == pnx.ode.RESULTS.successful)
        return ok, "" if ok else pnx.ode.RESULTS[out["result"]]

    return build, status


def bounded_while_loop(max_iterations):
    """``lax.while_loop`` that also stops after ``max_iterations`` (probdiffeq has no max_steps)."""

    def while_loop(cond_fun, body_fun, init):
        def cond(carry):
            return (carry[0] < max_iterations) & cond_fun(carry[1])

        def body(carry):
            return carry[0] + 1, body_fun(carry[1])

        return jax.lax.while_loop(cond, body, (jnp.zeros((), int), init))[1]

    return while_loop


def probdiffeq_solver(factorisation, linearisation):
    ssm = {"dense": pdq.state_space_model_dense, "isotropic": pdq.state_space_model_isotropic}[
        factorisation
    ]()

    def build(ivp):
        def vf(y, *, t):
            return ivp.vector_field(t, y, ivp.args)

        ode = pdq.ode(vf, jacobian=pdq.jacobian_materialize())  # exact Jacobians for TS1
        constraint = ssm.constraint_ode_ts1(ode) if linearisation == "ts1" else ssm.constraint_ode_ts0(ode)
        solver = pdq.solver_dynamic(strategy=pdq.strategy_filter(), constraint=constraint)
        error = pdq.error_residual_std(constraint=constraint)
        solve_terminal = ivpsolve.solve_adaptive_terminal_values(
            solver=solver, error=error, while_loop=bounded_while_loop(MAX_STEPS)
        )
        expand = pdq.jetexpand_ode_padded_scan(num=NUM_DERIVATIVES)

        def solve(y0, atol, rtol):
            tcoeffs, _ = expand(ode, [y0], t=ivp.t0)
            prior = ssm.prior_wiener_integrated(tcoeffs)
            dt0 = ivpsolve.dt0_adaptive(
                vf, [y0], t0=ivp.t0, error_contraction_rate=NUM_DERIVATIVES + 1, atol=atol, rtol=rtol
            )
            sol = solve_terminal(prior, t0=ivp.t0, t1=ivp.t1, atol=atol, rtol=rtol, dt0=dt0)
            return dict(y1=sol.u.mean[0], std1=sol.u.std[0], t_end=sol.t, num_steps=sol.num_steps)

        return solve

    def status(out, ivp):
        ok = bool(out["t_end"] >= ivp.t1 - 1e-8 * max(1.0, abs(ivp.t1)))
        return ok, "" if ok else f"stopped at t = {float(out['t_end'])} (step limit {MAX_STEPS})"

    return build, status


def diffrax_solver(solver_cls):
    def build(ivp):
        term = diffrax.ODETerm(ivp.vector_field)

        def solve(y0, atol, rtol):
            sol = diffrax.diffeqsolve(
                term, solver_cls(), ivp.t0, ivp.t1, None, y0, args=ivp.args,
                stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
                saveat=diffrax.SaveAt(t1=True), max_steps=MAX_STEPS, throw=False,
            )
            out = dict(y1=sol.ys[-1], result=sol.result, num_steps=sol.stats["num_accepted_steps"])
            out["num_rejected"] = sol.stats["num_rejected_steps"]
            return out

        return solve

    def status(out, ivp):
        ok = bool(out["result"] == diffrax.RESULTS.successful)
        return ok, "" if ok else diffrax.RESULTS[out["result"]]

    return build, status


def scipy_solver(method):
    def build(ivp):
        vf = jax.jit(lambda t, y: ivp.vector_field(t, y, ivp.args))
        jac = jax.jit(jax.jacfwd(lambda t, y: ivp.vector_field(t, y, ivp.args), argnums=1))
        kwargs = {"jac": lambda t, y: np.asarray(jac(t, y))} if method in ("Radau", "BDF") else {}
        jax.block_until_ready((vf(ivp.t0, ivp.y0), jac(ivp.t0, ivp.y0)))  # compile outside the timings

        def solve(y0, atol, rtol):
            res = solve_ivp(
                lambda t, y: np.asarray(vf(t, y)), (ivp.t0, ivp.t1), np.asarray(y0),
                method=method, atol=float(atol), rtol=float(rtol), **kwargs,
            )
            return dict(
                y1=res.y[:, -1], ok=res.success, message=res.message,
                num_steps=res.t.size - 1, f_evals=res.nfev, jac_evals=res.njev,
            )

        return solve

    def status(out, ivp):
        return bool(out["ok"]), "" if out["ok"] else str(out["message"])

    return build, status


# name: (library, label, (build, status), problems it runs on: "nonstiff", "stiff" or "all")
CONTESTANTS = {
    "ours_EK0": ("probnum_jax", "probnum_jax EK0 (isotropic)", ours(pnx.ode.EK0, "isotropic"), "nonstiff"),
    "ours_EK1": ("probnum_jax", "probnum_jax EK1 (dense)", ours(pnx.ode.EK1, "dense"), "all"),
    "probdiffeq_TS0": ("probdiffeq", "probdiffeq TS0 (isotropic)", probdiffeq_solver("isotropic", "ts0"), "nonstiff"),
    "probdiffeq_TS1": ("probdiffeq", "probdiffeq TS1 (dense)", probdiffeq_solver("dense", "ts1"), "all"),
    "diffrax_Tsit5": ("diffrax", "diffrax Tsit5", diffrax_solver(diffrax.Tsit5), "nonstiff"),
    "diffrax_Kvaerno5": ("diffrax", "diffrax Kvaerno5", diffrax_solver(diffrax.Kvaerno5), "stiff"),
    "scipy_DOP853": ("scipy", "scipy DOP853 (reference only)", scipy_solver("DOP853"), "nonstiff"),
    "scipy_Radau": ("scipy", "scipy Radau (reference only)", scipy_solver("Radau"), "stiff"),
}
F_EVALS_DEFINITION = {
    "probnum_jax": "sol.num_f_evals: q (Taylor mode) + per attempted step 1 (EK0) or 1 + d (EK1: f and d JVPs)",
    "probdiffeq": "not reported (probdiffeq 0.9.2 counts accepted steps only); null",
    "diffrax": "not reported by diffrax; null (accepted/rejected steps from sol.stats)",
    "scipy": "res.nfev (res.njev Jacobians in jac_evals)",
}


# --------------------------------------------------------------------------- references


def compute_reference(ivp, stiff):
    """scipy at rtol = atol = 1e-13, cross-checked by LSODA at the same tolerance."""
    vf = jax.jit(lambda t, y: ivp.vector_field(t, y, ivp.args))
    jac = jax.jit(jax.jacfwd(lambda t, y: ivp.vector_field(t, y, ivp.args), argnums=1))
    fun = lambda t, y: np.asarray(vf(t, y))  # noqa: E731
    jac_np = lambda t, y: np.asarray(jac(t, y))  # noqa: E731
    out = {}
    for role, method in (("primary", "Radau" if stiff else "DOP853"), ("check", "LSODA")):
        start = time.perf_counter()
        kwargs = {} if method == "DOP853" else {"jac": jac_np}
        res = solve_ivp(fun, (ivp.t0, ivp.t1), np.asarray(ivp.y0), method=method,
                        rtol=REFERENCE_TOL, atol=REFERENCE_TOL, **kwargs)
        if not res.success:
            raise RuntimeError(f"Reference solve ({method}) failed on {ivp.name}: {res.message}")
        out[role] = dict(method=method, y1=res.y[:, -1].tolist(), nfev=int(res.nfev),
                         wall_s=time.perf_counter() - start)
    primary = np.asarray(out["primary"]["y1"])
    return dict(
        y1=out["primary"]["y1"], method=out["primary"]["method"], rtol=REFERENCE_TOL,
        atol=REFERENCE_TOL, cross_check=out["check"],
        estimated_error=final_error(np.asarray(out["check"]["y1"]), primary),
        wall_s=out["primary"]["wall_s"], key=problem_key(ivp),
    )


def problem_key(ivp):
    """Identifies a problem definition; includes two vector-field values as a fingerprint."""
    y0 = np.asarray(ivp.y0)
    probes = [(ivp.t0, y0), (ivp.t0 + 0.1, 1.1 * y0 + 0.1)]
    fingerprint = [np.asarray(ivp.vector_field(t, jnp.asarray(y), ivp.args)).tolist() for t, y in probes]
    return json.dumps(dict(name=ivp.name, t0=ivp.t0, t1=ivp.t1, y0=y0.tolist(), f=fingerprint,
                           args=None if ivp.args is None else np.asarray(ivp.args).tolist()))


def load_references(path, problems, recompute):
    cache = {}
    if os.path.exists(path) and not recompute:
        with open(path) as f:
            cache = json.load(f)
    changed = False
    for name, (ivp, stiff) in problems.items():
        if name not in cache or cache[name].get("key") != problem_key(ivp):
            print(f"[reference] computing {name} (scipy, tol {REFERENCE_TOL:g}) ...", flush=True)
            cache[name] = compute_reference(ivp, stiff)
            changed = True
    if changed:
        with open(path, "w") as f:
            json.dump(cache, f, indent=1)
    return cache


def final_error(y, y_ref):
    """RMS over components of |y - y_ref| / (|y_ref| + 1e-5) at t1."""
    rel = np.abs(np.asarray(y) - y_ref) / (np.abs(y_ref) + ERROR_NUGGET)
    return float(np.sqrt(np.mean(rel**2)))


# --------------------------------------------------------------------------- running


def optional_int(out, key):
    return int(out[key]) if key in out else None


class Contestant:
    """One contestant on one problem: compiled once, then run at each tolerance."""

    def __init__(self, name, ivp, y_ref, first_tol, time_cap_s):
        library, label, (build, self.status), _ = CONTESTANTS[name]
        self.name, self.ivp, self.y_ref = name, ivp, y_ref
        self.time_cap_s = time_cap_s / 2 if library == "scipy" else time_cap_s
        self.record = dict(library=library, label=label, compile_time_s=None, memory_bytes=None, runs=[])
        self.skip_reason = None
        solve = build(ivp)
        if library == "scipy":
            self.call = solve
            return
        start = time.perf_counter()
        compiled = jax.jit(solve).lower(*self.arguments(first_tol)).compile()
        self.record["compile_time_s"] = time.perf_counter() - start
        mem = compiled.memory_analysis()
        if mem is not None:
            self.record["memory_bytes"] = dict(
                temp=int(mem.temp_size_in_bytes), argument=int(mem.argument_size_in_bytes),
                output=int(mem.output_size_in_bytes),
            )
        self.call = lambda *args: jax.block_until_ready(compiled(*args))

    def arguments(self, tol):
        tol = jnp.asarray(tol, jnp.float64)
        return jnp.asarray(self.ivp.y0, jnp.float64), tol, tol

    def start(self, tol, repeats):
        """First (post-compilation) run at ``tol``; returns how many timed samples to add:
        ``repeats`` if it took < 0.3 s, 2 if < 1 s, else none (the first run is the sample)."""
        self.run = dict(tol=tol)
        self.record["runs"].append(self.run)
        self.out, self.samples, self.calls_per_sample = None, [], 1
        if self.skip_reason is not None:
            self.run.update(status="skipped", reason=self.skip_reason)
            return 0
        self.sample()
        if self.out is None or repeats <= 1:
            return 0
        first = self.samples[0]
        # Sub-10 ms runs are timed in batches of calls (as timeit does), against timer noise.
        self.calls_per_sample = max(1, int(np.ceil(0.01 / max(first, 1e-6))))
        return repeats if first < 0.3 else (2 if first < 1.0 else 0)

    def sample(self):
        args = self.arguments(self.run["tol"])
        try:
            begin = time.perf_counter()
            for _ in range(self.calls_per_sample):
                out = self.call(*args)
            self.samples.append((time.perf_counter() - begin) / self.calls_per_sample)
        except Exception as e:  # noqa: BLE001 - a crash is a recorded result, not a lost one
            self.run.update(status="crashed", reason=f"{type(e).__name__}: {str(e)[:300]}")
            self.skip_reason = f"crashed at tol {self.run['tol']:g}"
            return
        self.out = out if self.out is None else self.out

    def finish(self):
        run, out, samples, tol = self.run, self.out, self.samples, self.run["tol"]
        if out is None or "status" in run:  # skipped or crashed
            return
        ok, message = self.status(out, self.ivp)
        y1 = np.asarray(out["y1"])
        first, timed = samples[0], samples[1:] or samples  # the first run is a warm-up if repeated
        run.update(
            time_s=statistics.median(timed), time_min_s=min(timed), time_samples=len(timed),
            calls_per_sample=self.calls_per_sample,
            num_steps=int(out["num_steps"]), num_rejected=optional_int(out, "num_rejected"),
            f_evals=optional_int(out, "f_evals"), jac_evals=optional_int(out, "jac_evals"),
        )
        if ok and np.all(np.isfinite(y1)):
            run.update(status="ok", error=final_error(y1, self.y_ref))
            if "std1" in out:  # calibration of the reported uncertainty at t1
                z = (y1 - self.y_ref) / np.maximum(np.asarray(out["std1"]), np.finfo(float).tiny)
                z_rms = float(np.sqrt(np.mean(z**2)))
                run["calibration_z_rms"] = z_rms if np.isfinite(z_rms) else None
        else:
            run.update(status="failed", reason=message or "non-finite solution at t1")
        if first > self.time_cap_s:
            self.skip_reason = f"time budget: tol {tol:g} took {first:.1f} s > {self.time_cap_s} s"
        err = run.get("error")
        print(f"  {self.name:17s} tol={tol:7.0e} {run['status']:6s} err={err if err is None else f'{err:.2e}'} "
              f"time={run['time_s']:.4f}s steps={run['num_steps']}", flush=True)


def run_interleaved(contestants, tol, repeats):
    """Time all contestants at ``tol``, taking the repeated samples round-robin so that
    changes in machine load hit every contestant alike."""
    more = [c.start(tol, repeats) for c in contestants]
    for round_ in range(max(more, default=0)):
        for c, m in zip(contestants, more):
            if round_ < m and c.skip_reason is None:
                c.sample()
    for c in contestants:
        c.finish()


# --------------------------------------------------------------------------- summary


def at_error(record, key="time_s", target=TARGET_ERROR):
    """Interpolate ``log(record[key])`` linearly in log(error) between the runs bracketing ``target``."""
    points = [(r["error"], r[key]) for r in record["runs"] if r.get("status") == "ok"]
    if not points:
        return None, "no successful run"
    for (e0, v0), (e1, v1) in zip(points, points[1:]):
        if min(e0, e1) <= target <= max(e0, e1) and e0 != e1 and min(e0, e1) > 0:
            w = (np.log(target) - np.log(e0)) / (np.log(e1) - np.log(e0))
            return float(np.exp(np.log(v0) + w * (np.log(v1) - np.log(v0)))), "interpolated"
    errors = [e for e, _ in points]
    if min(errors) > target:
        return None, f"curve does not reach error {target:g} (smallest error {min(errors):.2e})"
    return None, f"curve does not bracket error {target:g} (errors {min(errors):.2e} .. {max(errors):.2e})"


def time_per_step_us(record):
    """Median over successful runs of run time per attempted step (accepted + rejected), in µs."""
    values = [1e6 * r["time_s"] / (r["num_steps"] + (r["num_rejected"] or 0))
              for r in record["runs"] if r.get("status") == "ok" and r["num_steps"] > 0]
    return statistics.median(values) if values else None


def ratio_entry(results, problem, ours_name, peer_name, quantity, target, aim=None):
    """``ours / peer`` for ``quantity`` in {"time_at_target", "compile_time_s"}.

    ``time_at_target`` is each run-time curve (median samples) interpolated at error 1e-6.
    """
    entry = dict(problem=problem, ours=ours_name, peer=peer_name, quantity=quantity, target=target)
    recs = [results.get(problem, {}).get(n) for n in (ours_name, peer_name)]
    if any(r is None or "runs" not in r for r in recs):
        why = "; ".join(r.get("skipped") or r.get("crashed") for r in recs if r and "runs" not in r)
        return dict(entry, ratio=None, target_met=False, note=f"not run: {why or 'not a contestant here'}")
    if quantity == "compile_time_s":
        values = [r["compile_time_s"] for r in recs]
        notes = ["", ""]
    else:
        values, notes = zip(*(at_error(r) for r in recs))
    entry.update(ours_value=values[0], peer_value=values[1])
    if None in values:
        note = "; ".join(f"{n}: {m}" for n, v, m in zip((ours_name, peer_name), values, notes) if v is None)
        return dict(entry, ratio=None, target_met=False, note=f"not available ({note})")
    ratio = values[0] / values[1]
    op, bound = target.split()
    met = ratio <= float(bound) if op == "<=" else ratio < float(bound)
    entry.update(ratio=ratio, target_met=bool(met))
    if quantity == "time_at_target":  # the same from each run's fastest sample (less load noise)
        fastest = [at_error(r, "time_min_s")[0] for r in recs]
        entry["ratio_of_fastest_samples"] = None if None in fastest else fastest[0] / fastest[1]
    if aim is not None:
        entry.update(aim=aim, aim_met=bool(ratio <= float(aim.split()[1])))
    return entry


def summarise(results):
    ratios = []
    for problem in PROBLEMS:
        for ours_name, peer in (("ours_EK0", "probdiffeq_TS0"), ("ours_EK1", "probdiffeq_TS1")):
            if "runs" in results[problem].get(ours_name, {}):
                ratios.append(ratio_entry(results, problem, ours_name, peer, "time_at_target",
                                          "<= 1", aim="<= 0.6667"))
                ratios.append(ratio_entry(results, problem, ours_name, peer, "compile_time_s", "<= 1"))
    for ours_name, peer in (("ours_EK0", "probdiffeq_TS0"), ("ours_EK1", "probdiffeq_TS1")):
        pairs = [(results[p][ours_name]["compile_time_s"], results[p][peer]["compile_time_s"])
                 for p in PROBLEMS
                 if "runs" in results[p].get(ours_name, {}) and "runs" in results[p].get(peer, {})]
        if not pairs:
            continue
        total = [sum(v) for v in zip(*pairs)]
        ratio = total[0] / total[1]
        ratios.append(dict(problem="all (summed)", ours=ours_name, peer=peer, quantity="compile_time_s",
                           target="<= 1", ours_value=total[0], peer_value=total[1], ratio=ratio,
                           target_met=bool(ratio <= 1)))
    for ours_name in ("ours_EK0", "ours_EK1"):
        ratios.append(ratio_entry(results, "lotka_volterra", ours_name, "diffrax_Tsit5",
                                  "time_at_target", "<= 3"))
    for problem in ("van_der_pol_mu1e3", "hires"):
        ratios.append(ratio_entry(results, problem, "ours_EK1", "diffrax_Kvaerno5",
                                  "time_at_target", "< 1"))
    memory = []
    for problem in PROBLEMS:
        for ours_name, peer in (("ours_EK0", "probdiffeq_TS0"), ("ours_EK1", "probdiffeq_TS1")):
            a, b = results[problem].get(ours_name, {}), results[problem].get(peer, {})
            if a.get("memory_bytes") and b.get("memory_bytes"):
                memory.append(dict(problem=problem, ours=ours_name, peer=peer,
                                   ratio=a["memory_bytes"]["temp"] / max(b["memory_bytes"]["temp"], 1)))
    per_contestant = {
        p: {c: dict(time_s=at_error(r)[0], accepted_steps=at_error(r, "num_steps")[0],
                    us_per_attempted_step=time_per_step_us(r), compile_time_s=r["compile_time_s"])
            for c, r in recs.items() if "runs" in r}
        for p, recs in results.items()
    }
    return dict(target_error=TARGET_ERROR, at_target_error=per_contestant, ratios=ratios,
                xla_temp_memory_ratios=memory)


# --------------------------------------------------------------------------- plotting

STYLE = {
    "ours_EK0": ("C0", "o", "-"), "ours_EK1": ("C3", "s", "-"),
    "probdiffeq_TS0": ("C0", "o", "--"), "probdiffeq_TS1": ("C3", "s", "--"),
    "diffrax_Tsit5": ("C2", "^", "-."), "diffrax_Kvaerno5": ("C2", "v", "-."),
    "scipy_DOP853": ("0.5", "x", ":"), "scipy_Radau": ("0.5", "+", ":"),
}


def plot(results, references, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(PROBLEMS)
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 7.2),
                             gridspec_kw=dict(height_ratios=[2.2, 1]), squeeze=False)
    handles = {}
    for col, problem in enumerate(names):
        ax, bar_ax = axes[0, col], axes[1, col]
        compile_names, compile_times = [], []
        for cname, rec in results[problem].items():
            if "runs" not in rec:
                continue
            color, marker, ls = STYLE[cname]
            ok = [r for r in rec["runs"] if r.get("status") == "ok"]
            if ok:
                (line,) = ax.loglog([r["error"] for r in ok], [r["time_s"] for r in ok],
                                    color=color, marker=marker, ls=ls, label=rec["label"])
                handles[rec["label"]] = line
            if rec["compile_time_s"] is not None:
                compile_names.append(cname)
                compile_times.append(rec["compile_time_s"])
        ax.axvline(TARGET_ERROR, color="k", lw=0.6, alpha=0.4)
        floor = references[problem]["estimated_error"]
        if floor > 0:
            ax.axvspan(ax.get_xlim()[0], floor, color="0.85", zorder=0)
        ax.set_title(problem)
        ax.set_xlabel("final error at t1 (RMS relative)")
        ax.grid(True, which="major", alpha=0.3)
        positions = np.arange(len(compile_names))
        bar_ax.bar(positions, compile_times, color=[STYLE[n][0] for n in compile_names],
                   hatch=None, alpha=0.8)
        for pos, n in zip(positions, compile_names):
            if n.startswith("probdiffeq"):
                bar_ax.patches[pos].set_hatch("//")
        bar_ax.set_xticks(positions, [n.replace("_", "\n", 1) for n in compile_names], fontsize=7)
        bar_ax.set_ylabel("compile time [s]" if col == 0 else "")
    axes[0, 0].set_ylabel("run time after compilation [s]")
    fig.legend(list(handles.values()), list(handles.keys()), loc="upper center", ncol=4, fontsize=8)
    fig.text(0.5, 0.005, f"vertical line: error {TARGET_ERROR:g} (where ratios are read off); grey band: "
             "below the reference solution's estimated accuracy; hatched bars: probdiffeq",
             ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.02, 1, 0.93))
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 tolerances, fewer repeats (< 3 min)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    parser.add_argument("--recompute-references", action="store_true")
    args = parser.parse_args(argv)
    tolerances = [1e-3, 1e-5, 1e-7, 1e-9] if args.quick else [10.0**-k for k in range(3, 11)]
    repeats, time_cap_s = (3, 2.0) if args.quick else (5, 15.0)
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()

    problems = {name: (make(), stiff) for name, (make, stiff) in PROBLEMS.items()}
    references = load_references(os.path.join(args.out, "ode_workprecision.references.json"),
                                 problems, args.recompute_references)
    results = {}
    for pname, (ivp, stiff) in problems.items():
        print(f"[{pname}] d={ivp.y0.shape[0]} t1={ivp.t1} stiff={stiff}", flush=True)
        y_ref = np.asarray(references[pname]["y1"])
        results[pname], contestants = {}, []
        for cname, (library, label, _, applies) in CONTESTANTS.items():
            if applies != "all" and (applies == "stiff") != stiff:
                results[pname][cname] = dict(library=library, label=label, skipped=(
                    "explicit-type method, not run on stiff problems" if stiff
                    else "stiff solver, not run on non-stiff problems"))
                continue
            try:
                contestants.append(Contestant(cname, ivp, y_ref, tolerances[0], time_cap_s))
            except Exception as e:  # noqa: BLE001 - a failed build/compile is a recorded result
                results[pname][cname] = dict(library=library, label=label,
                                             crashed=f"build/compile: {type(e).__name__}: {str(e)[:300]}")
                print(f"  {cname}: {results[pname][cname]['crashed']}", flush=True)
                continue
            results[pname][cname] = contestants[-1].record
        for tol in tolerances:
            run_interleaved(contestants, tol, repeats)

    summary = summarise(results)
    payload = dict(
        benchmark="ODE work-precision: probnum_jax vs probdiffeq vs diffrax vs scipy",
        mode="quick" if args.quick else "full",
        machine=machine_info(),
        settings=dict(
            tolerances=tolerances, atol_equals_rtol=True, num_derivatives=NUM_DERIVATIVES,
            max_steps=MAX_STEPS, repeats=repeats, timing="after compilation, one warm-up run, then "
            "the median of `repeats` samples (2 when the warm-up takes 0.3-1 s; the warm-up "
            "itself when it takes longer); a sample averages ceil(10 ms / warm-up time) calls; "
            "jax.block_until_ready on all outputs; time_min_s is the fastest sample",
            time_cap_s=time_cap_s, time_cap_rule="a contestant's tighter tolerances are skipped "
            "once one solve takes longer than time_cap_s (time_cap_s / 2 for scipy)",
            order="per problem: compile all contestants; then at each tolerance one run of each, "
            "then the repeated samples round-robin over the contestants",
            compile_time="wall time of jax.jit(solve).lower(y0, atol, rtol).compile() "
            "(tracing + XLA compilation); one compilation serves all tolerances",
            memory="XLA compiled.memory_analysis() temp_size_in_bytes (CPU buffer estimate)",
            error_definition="RMS over components of |y(t1) - y_ref(t1)| / (|y_ref(t1)| + 1e-5)",
            calibration_z_rms="RMS over components of (y(t1) - y_ref(t1)) / std(t1); "
            "about 1 when the reported std is calibrated, >> 1 overconfident, << 1 underconfident",
            reference_estimated_error="final-error measure between the reference and LSODA at the "
            "same tolerance: an upper bound on the reference's error when LSODA is the less "
            "accurate of the two (grey band in the plot)",
            f_evals_definition=F_EVALS_DEFINITION,
            probdiffeq_setup="state_space_model_{isotropic|dense}, constraint_ode_ts0|ts1 with "
            "jacobian_materialize, solver_dynamic(strategy_filter), error_residual_std, "
            "solve_adaptive_terminal_values (default integral controller), "
            "jetexpand_ode_padded_scan, dt0_adaptive; while_loop bounded by max_steps",
            skipped_on_stiff="EK0, TS0, Tsit5 and DOP853 are not run on hires and "
            "van_der_pol_mu1e3 (explicit-type methods need O(stiffness) steps)",
        ),
        problems={name: dict(dimension=int(ivp.y0.shape[0]), t0=ivp.t0, t1=ivp.t1, stiff=stiff,
                             args=None if ivp.args is None else np.asarray(ivp.args).tolist())
                  for name, (ivp, stiff) in problems.items()},
        references={name: {k: v for k, v in ref.items() if k != "key"}
                    for name, ref in references.items() if name in problems},
        results=results,
        summary=summary,
    )
    payload["total_wall_s"] = time.perf_counter() - started
    json_path = os.path.join(args.out, "ode_workprecision.json")
    with open(json_path, "w") as f:
        json.dump(payload, f, indent=1)
    plot(results, references, os.path.join(args.out, "ode_workprecision.png"))

    print(f"\nat final error {TARGET_ERROR:g}: run time, accepted steps, µs per attempted step, compile time")
    for problem, recs in summary["at_target_error"].items():
        for cname, v in recs.items():
            fmt = lambda x, spec: "n/a" if x is None else format(x, spec)  # noqa: E731
            print(f"  {problem:18s} {cname:17s} {fmt(v['time_s'], '.4f'):>8s} s {fmt(v['accepted_steps'], '.0f'):>6s} "
                  f"{fmt(v['us_per_attempted_step'], '.1f'):>7s} µs {fmt(v['compile_time_s'], '.1f'):>5s} s")
    print(f"\nratios at final error {TARGET_ERROR:g} (ours / peer):")
    for r in summary["ratios"]:
        value = "n/a" if r["ratio"] is None else f"{r['ratio']:.3f}"
        fastest = r.get("ratio_of_fastest_samples")
        fastest = "" if fastest is None else f"(fastest samples: {fastest:.3f})"
        print(f"  {r['problem']:18s} {r['quantity']:15s} {r['ours']:9s}/{r['peer']:17s} {value:>7s} "
              f"target {r['target']:5s} met={r['target_met']} {fastest} {r.get('note', '')}")
    print(f"wrote {json_path} ({payload['total_wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
