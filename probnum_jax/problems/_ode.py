"""A small zoo of ordinary differential equation (ODE) test problems.

Every factory returns an :class:`InitialValueProblem` whose vector field follows
the diffrax convention ``f(t, y, args) -> dy/dt``. All vector fields are pure
``jax.numpy`` code, so they can be jitted, vmapped and differentiated, and they
return arrays with the same shape and dtype as ``y`` (float32 or float64).

References used throughout:

* [HNW93] E. Hairer, S. P. Nørsett, G. Wanner. *Solving Ordinary Differential
  Equations I: Nonstiff Problems*, 2nd ed., Springer, 1993.
* [HW96] E. Hairer, G. Wanner. *Solving Ordinary Differential Equations II:
  Stiff and Differential-Algebraic Problems*, 2nd ed., Springer, 1996.
* [MM08] F. Mazzia, C. Magherini. *Test Set for Initial Value Problem Solvers*,
  release 2.4, University of Bari, 2008. https://archimede.uniba.it/~testset/
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PyTree

__all__ = [
    "InitialValueProblem",
    "fitzhugh_nagumo",
    "hires",
    "logistic",
    "lorenz63",
    "lotka_volterra",
    "pleiades",
    "robertson",
    "van_der_pol",
]


class InitialValueProblem(eqx.Module):
    """An initial value problem ``y' = f(t, y, args)``, ``y(t0) = y0`` on ``[t0, t1]``.

    Attributes:
        vector_field: The right-hand side ``f(t, y, args)`` (diffrax convention).
            It returns an array with the same shape and dtype as ``y``.
        y0: The initial value, shape ``[d]``.
        t0: The initial time.
        t1: The final time.
        args: Parameters that are passed to ``vector_field`` as ``args``
            (a tuple of floats or arrays), or ``None``.
        name: A short human-readable identifier of the problem.
        solution: The closed-form solution ``t -> y(t)`` for the given ``y0``,
            ``t0`` and ``args`` where one exists, else ``None``. A scalar ``t``
            maps to an array of shape ``[d]``; the function works under
            ``jax.vmap``.
        stiff: Whether the problem is considered stiff (i.e. explicit solvers
            are inefficient on it).

    Example:
        >>> import jax.numpy as jnp
        >>> import probnum_jax as pnx
        >>> ivp = pnx.problems.InitialValueProblem(
        ...     vector_field=lambda t, y, args: -args[0] * y,
        ...     y0=jnp.ones((1,)),
        ...     t0=0.0,
        ...     t1=1.0,
        ...     args=(2.0,),
        ...     name="decay",
        ... )
        >>> ivp.vector_field(ivp.t0, ivp.y0, ivp.args).tolist()
        [-2.0]
    """

    vector_field: Callable = eqx.field(static=True)
    y0: jax.Array
    t0: float = eqx.field(static=True)
    t1: float = eqx.field(static=True)
    args: PyTree
    name: str = eqx.field(static=True)
    solution: Callable | None = eqx.field(static=True, default=None)
    stiff: bool = eqx.field(static=True, default=False)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _as_initial_value(y0: Sequence[float] | jax.Array) -> jax.Array:
    """Convert an initial value to a 1-D array of the default float dtype."""
    y0 = jnp.asarray(y0, dtype=jnp.result_type(float))
    return jnp.reshape(y0, (-1,))


def _stack_like(components: Sequence[jax.Array], y: jax.Array) -> jax.Array:
    """Stack scalar components into a vector with the dtype of ``y``."""
    return jnp.stack(components).astype(y.dtype)


# ---------------------------------------------------------------------------
# Vector fields (module-level functions, so that they are hashable and stable
# static fields of the InitialValueProblem)
# ---------------------------------------------------------------------------


def _lotka_volterra_vf(t, y, args):
    del t
    a, b, c, d = args
    prey, predator = y[0], y[1]
    return _stack_like(
        [a * prey - b * prey * predator, -c * predator + d * prey * predator], y
    )


def _van_der_pol_vf(t, y, args):
    del t
    (mu,) = args
    u, v = y[0], y[1]
    return _stack_like([v, mu * ((1.0 - u**2) * v) - u], y)


def _fitzhugh_nagumo_vf(t, y, args):
    del t
    a, b, c = args
    v, r = y[0], y[1]
    return _stack_like([c * (v - v**3 / 3.0 + r), -(v - a + b * r) / c], y)


def _lorenz63_vf(t, y, args):
    del t
    sigma, rho, beta = args
    u, v, w = y[0], y[1], y[2]
    return _stack_like(
        [sigma * (v - u), u * (rho - w) - v, u * v - beta * w], y
    )


def _logistic_vf(t, y, args):
    del t
    r, k = args
    return (r * y * (1.0 - y / k)).astype(y.dtype)


def _pleiades_vf(t, y, args):
    del t, args
    x, z = y[0:7], y[7:14]
    vx, vz = y[14:21], y[21:28]
    masses = jnp.arange(1, 8, dtype=y.dtype)
    # dx[i, j] = x_j - x_i (same for z).
    dx = x[None, :] - x[:, None]
    dz = z[None, :] - z[:, None]
    dist_sq = dx**2 + dz**2
    diagonal = jnp.eye(7, dtype=bool)
    # Guard the diagonal so that neither the values nor the derivatives
    # (jacfwd/jacrev) produce NaNs from the zero self-distances.
    safe_dist_sq = jnp.where(diagonal, 1.0, dist_sq)
    weights = jnp.where(diagonal, 0.0, masses[None, :] / safe_dist_sq**1.5)
    ax = jnp.sum(weights * dx, axis=1)
    az = jnp.sum(weights * dz, axis=1)
    return jnp.concatenate([vx, vz, ax, az]).astype(y.dtype)


def _hires_vf(t, y, args):
    del t, args
    y1, y2, y3, y4, y5, y6, y7, y8 = (y[i] for i in range(8))
    reaction = 280.0 * y6 * y8
    return _stack_like(
        [
            -1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007,
            1.71 * y1 - 8.75 * y2,
            -10.03 * y3 + 0.43 * y4 + 0.035 * y5,
            8.32 * y2 + 1.71 * y3 - 1.12 * y4,
            -1.745 * y5 + 0.43 * y6 + 0.43 * y7,
            -reaction + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7,
            reaction - 1.81 * y7,
            -reaction + 1.81 * y7,
        ],
        y,
    )


def _robertson_vf(t, y, args):
    del t
    k1, k2, k3 = args
    y1, y2, y3 = y[0], y[1], y[2]
    fast = k3 * y2 * y3
    very_fast = k2 * y2**2
    return _stack_like(
        [-k1 * y1 + fast, k1 * y1 - fast - very_fast, very_fast], y
    )


# ---------------------------------------------------------------------------
# Factories
# ---------------------------------------------------------------------------


def lotka_volterra(
    *,
    t0: float = 0.0,
    t1: float = 20.0,
    y0: Sequence[float] | jax.Array = (20.0, 20.0),
    args: tuple = (0.5, 0.05, 0.5, 0.05),
) -> InitialValueProblem:
    r"""The Lotka–Volterra predator–prey model.

    With ``args = (a, b, c, d)`` and ``y = (prey, predator)``,

    .. math::
        y_0' = a y_0 - b y_0 y_1, \qquad y_1' = -c y_1 + d y_0 y_1.

    The solution is periodic; the quantity
    ``d * y_0 - c * log(y_0) + b * y_1 - a * log(y_1)`` is conserved.

    Defaults: ``y0 = (20, 20)``, ``args = (0.5, 0.05, 0.5, 0.05)``, ``t`` in
    ``[0, 20]`` (a configuration commonly used to benchmark probabilistic ODE
    solvers).

    References:
        A. J. Lotka, *Elements of Physical Biology*, 1925;
        V. Volterra, *Variazioni e fluttuazioni del numero d'individui in specie
        animali conviventi*, 1926;
        E. Hairer, C. Lubich, G. Wanner, *Geometric Numerical Integration*,
        2nd ed., Springer, 2006, Section I.1.1.

    Example:
        >>> import probnum_jax as pnx
        >>> ivp = pnx.problems.lotka_volterra()
        >>> ivp.vector_field(ivp.t0, ivp.y0, ivp.args).shape
        (2,)
    """
    return InitialValueProblem(
        vector_field=_lotka_volterra_vf,
        y0=_as_initial_value(y0),
        t0=t0,
        t1=t1,
        args=tuple(args),
        name="lotka_volterra",
    )


def van_der_pol(
    *,
    mu: float = 1.0,
    t0: float = 0.0,
    t1: float | None = None,
    y0: Sequence[float] | jax.Array = (2.0, 0.0),
) -> InitialValueProblem:
    r"""The van der Pol oscillator (unscaled form).

    With ``args = (mu,)``,

    .. math::
        y_0' = y_1, \qquad y_1' = \mu (1 - y_0^2) y_1 - y_0.

    The initial value ``y0 = (2, 0)`` lies (approximately) on the limit cycle.
    The problem becomes stiff as ``mu`` grows; ``stiff`` is ``True`` for
    ``mu >= 100``.

    Default final time (``t1=None``):

    * ``mu < 100``: ``t1 = 6.3``, about one period for ``mu = 1``
      (the period is roughly 6.66).
    * ``mu >= 100``: ``t1 = 2.0``, a short stiff interval. In this unscaled
      form the first fast transition happens only around ``t ≈ 0.8 mu``, so
      ``[0, 2]`` stays on the slow manifold (the solution barely moves, but the
      Jacobian has an eigenvalue of about ``-3 mu``, so explicit solvers need
      ``O(mu)`` steps). The VDPOL benchmark of [MM08] integrates the rescaled
      form ``t -> t / mu`` on ``[0, 2]``, which corresponds to ``t1 = 2 * mu``
      here (about one and a quarter relaxation cycles); pass ``t1=2 * mu`` to
      reproduce that horizon.

    References:
        B. van der Pol, *On relaxation-oscillations*, Phil. Mag. 2, 1926;
        E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II*,
        2nd ed., Springer, 1996, Section IV.1 (and the VDPOL problem of the
        test set of F. Mazzia, C. Magherini, 2008, which uses a rescaled form).

    Example:
        >>> import probnum_jax as pnx
        >>> ivp = pnx.problems.van_der_pol()
        >>> ivp.vector_field(ivp.t0, ivp.y0, ivp.args).shape
        (2,)
        >>> pnx.problems.van_der_pol(mu=1e3).stiff
        True
    """
    stiff = bool(float(mu) >= 100.0)
    if t1 is None:
        t1 = 2.0 if stiff else 6.3
    return InitialValueProblem(
        vector_field=_van_der_pol_vf,
        y0=_as_initial_value(y0),
        t0=t0,
        t1=t1,
        args=(mu,),
        name="van_der_pol",
        stiff=stiff,
    )


def fitzhugh_nagumo(
    *,
    t0: float = 0.0,
    t1: float = 20.0,
    y0: Sequence[float] | jax.Array = (-1.0, 1.0),
    args: tuple = (0.2, 0.2, 3.0),
) -> InitialValueProblem:
    r"""The FitzHugh–Nagumo model of neuronal excitation.

    With ``args = (a, b, c)`` and ``y = (V, R)`` (voltage and recovery),

    .. math::
        y_0' = c (y_0 - y_0^3 / 3 + y_1), \qquad
        y_1' = -\frac{1}{c} (y_0 - a + b y_1).

    Defaults: ``a = b = 0.2``, ``c = 3``, ``y0 = (-1, 1)``, ``t`` in ``[0, 20]``
    (the parameter-estimation benchmark of Ramsay et al., 2007).

    References:
        R. FitzHugh, *Impulses and physiological states in theoretical models
        of nerve membrane*, Biophys. J. 1, 1961;
        J. Nagumo, S. Arimoto, S. Yoshizawa, *An active pulse transmission line
        simulating nerve axon*, Proc. IRE 50, 1962;
        J. O. Ramsay, G. Hooker, D. Campbell, J. Cao, *Parameter estimation for
        differential equations: a generalized smoothing approach*,
        J. R. Stat. Soc. B 69, 2007.

    Example:
        >>> import probnum_jax as pnx
        >>> ivp = pnx.problems.fitzhugh_nagumo()
        >>> ivp.vector_field(ivp.t0, ivp.y0, ivp.args).shape
        (2,)
    """
    return InitialValueProblem(
        vector_field=_fitzhugh_nagumo_vf,
        y0=_as_initial_value(y0),
        t0=t0,
        t1=t1,
        args=tuple(args),
        name="fitzhugh_nagumo",
    )


def lorenz63(
    *,
    t0: float = 0.0,
    t1: float = 20.0,
    y0: Sequence[float] | jax.Array = (0.0, 1.0, 1.05),
    args: tuple = (10.0, 28.0, 8.0 / 3.0),
) -> InitialValueProblem:
    r"""The Lorenz-63 system, a chaotic model of atmospheric convection.

    With ``args = (sigma, rho, beta)``,

    .. math::
        y_0' = \sigma (y_1 - y_0), \qquad
        y_1' = y_0 (\rho - y_2) - y_1, \qquad
        y_2' = y_0 y_1 - \beta y_2.

    Defaults: Lorenz' classical parameters ``sigma = 10``, ``rho = 28``,
    ``beta = 8/3``, the initial value ``y0 = (0, 1, 1.05)`` (a point near the
    unstable origin that is quickly attracted to the butterfly attractor), and
    ``t`` in ``[0, 20]``. The problem is chaotic: errors grow roughly like
    ``exp(0.9 t)``, so long horizons are not reproducible to high accuracy.

    References:
        E. N. Lorenz, *Deterministic nonperiodic flow*, J. Atmos. Sci. 20, 1963;
        E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential
        Equations I*, 2nd ed., Springer, 1993, Section I.16.

    Example:
        >>> import probnum_jax as pnx
        >>> ivp = pnx.problems.lorenz63()
        >>> ivp.vector_field(ivp.t0, ivp.y0, ivp.args).shape
        (3,)
    """
    return InitialValueProblem(
        vector_field=_lorenz63_vf,
        y0=_as_initial_value(y0),
        t0=t0,
        t1=t1,
        args=tuple(args),
        name="lorenz63",
    )


def logistic(
    *,
    t0: float = 0.0,
    t1: float = 10.0,
    y0: Sequence[float] | jax.Array = (0.1,),
    args: tuple = (1.0, 1.0),
) -> InitialValueProblem:
    r"""The logistic growth equation, which has a closed-form solution.

    With ``args = (r, K)`` (growth rate and carrying capacity),

    .. math::
        y' = r y (1 - y / K), \qquad
        y(t) = \frac{K y_0 e^{r (t - t_0)}}{K + y_0 (e^{r (t - t_0)} - 1)}.

    Defaults: ``r = K = 1``, ``y0 = 0.1``, ``t`` in ``[0, 10]``; over this
    interval the solution traverses the whole sigmoid from 0.1 to about 0.9996.
    ``solution`` holds the closed form for the given ``y0``, ``t0`` and
    ``args``; a scalar ``t`` maps to shape ``[1]`` (and ``t`` of shape ``[n]``
    to shape ``[n, 1]``).

    References:
        P.-F. Verhulst, *Notice sur la loi que la population suit dans son
        accroissement*, Corresp. Math. Phys. 10, 1838.

    Example:
        >>> import probnum_jax as pnx
        >>> ivp = pnx.problems.logistic()
        >>> ivp.vector_field(ivp.t0, ivp.y0, ivp.args).shape
        (1,)
        >>> ivp.solution(ivp.t0).tolist()  # doctest: +ELLIPSIS
        [0.1...]
    """
    y0_arr = _as_initial_value(y0)
    if y0_arr.shape != (1,):
        raise ValueError(f"The logistic equation is scalar; got y0 of shape {y0_arr.shape}.")
    r, k = args

    def solution(t):
        t = jnp.asarray(t, dtype=y0_arr.dtype)
        growth = jnp.exp(r * (t[..., None] - t0))
        return (k * y0_arr * growth) / (k + y0_arr * (growth - 1.0))

    return InitialValueProblem(
        vector_field=_logistic_vf,
        y0=y0_arr,
        t0=t0,
        t1=t1,
        args=tuple(args),
        name="logistic",
        solution=solution,
    )


_PLEIADES_Y0 = (
    # x-positions
    3.0, 3.0, -1.0, -3.0, 2.0, -2.0, 2.0,
    # y-positions
    3.0, -3.0, 2.0, 0.0, 0.0, -4.0, 4.0,
    # x-velocities
    0.0, 0.0, 0.0, 0.0, 0.0, 1.75, -1.5,
    # y-velocities
    0.0, 0.0, 0.0, -1.25, 1.0, 0.0, 0.0,
)  # fmt: skip


def pleiades(*, t0: float = 0.0, t1: float = 3.0) -> InitialValueProblem:
    r"""The Pleiades problem: seven stars moving in a plane under gravity.

    Star ``i`` (``i = 1, ..., 7``) has mass ``m_i = i`` and position
    ``(x_i, y_i)``; with unit gravitational constant,

    .. math::
        x_i'' = \sum_{j \neq i} m_j \frac{x_j - x_i}{r_{ij}^{3/2}}, \qquad
        y_i'' = \sum_{j \neq i} m_j \frac{y_j - y_i}{r_{ij}^{3/2}}, \qquad
        r_{ij} = (x_i - x_j)^2 + (y_i - y_j)^2.

    The state is the 28-dimensional first-order form
    ``(x_1..x_7, y_1..y_7, x_1'..x_7', y_1'..y_7')``. The standard initial values
    are ``x = (3, 3, -1, -3, 2, -2, 2)``, ``y = (3, -3, 2, 0, 0, -4, 4)``,
    ``x' = (0, 0, 0, 0, 0, 1.75, -1.5)``, ``y' = (0, 0, 0, -1.25, 1, 0, 0)``,
    integrated over ``[0, 3]``. ``args`` is ``None``.

    References:
        E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential
        Equations I*, 2nd ed., Springer, 1993, Section II.10;
        F. Mazzia, C. Magherini, *Test Set for Initial Value Problem Solvers*,
        release 2.4, 2008 (problem PLEI, with a reference solution at ``t = 3``).

    Example:
        >>> import probnum_jax as pnx
        >>> ivp = pnx.problems.pleiades()
        >>> ivp.vector_field(ivp.t0, ivp.y0, ivp.args).shape
        (28,)
    """
    return InitialValueProblem(
        vector_field=_pleiades_vf,
        y0=_as_initial_value(_PLEIADES_Y0),
        t0=t0,
        t1=t1,
        args=None,
        name="pleiades",
    )


def hires(*, t0: float = 0.0, t1: float = 321.8122) -> InitialValueProblem:
    r"""The HIRES problem ("High Irradiance RESponse") from plant physiology.

    An 8-dimensional stiff chemical reaction system describing how light
    triggers photomorphogenesis in plants:

    .. math::
        \begin{aligned}
        y_1' &= -1.71 y_1 + 0.43 y_2 + 8.32 y_3 + 0.0007, \\
        y_2' &= 1.71 y_1 - 8.75 y_2, \\
        y_3' &= -10.03 y_3 + 0.43 y_4 + 0.035 y_5, \\
        y_4' &= 8.32 y_2 + 1.71 y_3 - 1.12 y_4, \\
        y_5' &= -1.745 y_5 + 0.43 y_6 + 0.43 y_7, \\
        y_6' &= -280 y_6 y_8 + 0.69 y_4 + 1.71 y_5 - 0.43 y_6 + 0.69 y_7, \\
        y_7' &= 280 y_6 y_8 - 1.81 y_7, \\
        y_8' &= -280 y_6 y_8 + 1.81 y_7.
        \end{aligned}

    Standard initial value ``y0 = (1, 0, 0, 0, 0, 0, 0, 0.0057)`` on
    ``[0, 321.8122]``. ``args`` is ``None`` and ``stiff`` is ``True``.

    References:
        E. Schäfer, *A new approach to explain the "high irradiance responses"
        of photomorphogenesis on the basis of phytochrome*, J. Math. Biology 2,
        1975;
        E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II*,
        2nd ed., Springer, 1996, Section IV.10;
        F. Mazzia, C. Magherini, *Test Set for Initial Value Problem Solvers*,
        release 2.4, 2008 (problem HIRES, with a reference solution at
        ``t = 321.8122``).

    Example:
        >>> import probnum_jax as pnx
        >>> ivp = pnx.problems.hires()
        >>> ivp.vector_field(ivp.t0, ivp.y0, ivp.args).shape
        (8,)
    """
    return InitialValueProblem(
        vector_field=_hires_vf,
        y0=_as_initial_value((1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0057)),
        t0=t0,
        t1=t1,
        args=None,
        name="hires",
        stiff=True,
    )


def robertson(
    *,
    t0: float = 0.0,
    t1: float = 1e2,
    y0: Sequence[float] | jax.Array = (1.0, 0.0, 0.0),
    args: tuple = (0.04, 3e7, 1e4),
) -> InitialValueProblem:
    r"""Robertson's autocatalytic chemical reaction, a classic stiff problem.

    With ``args = (k1, k2, k3)``,

    .. math::
        \begin{aligned}
        y_1' &= -k_1 y_1 + k_3 y_2 y_3, \\
        y_2' &= k_1 y_1 - k_3 y_2 y_3 - k_2 y_2^2, \\
        y_3' &= k_2 y_2^2.
        \end{aligned}

    The total concentration ``y_1 + y_2 + y_3`` is conserved. Standard values:
    ``k1 = 0.04``, ``k2 = 3e7``, ``k3 = 1e4``, ``y0 = (1, 0, 0)``. The
    literature integrates up to ``t = 1e11`` [MM08] (or ``t = 40`` in [HW96]);
    the default here is ``t1 = 100``, which contains the fast initial transient
    and the slow decay but keeps tests cheap. ``stiff`` is ``True``.

    References:
        H. H. Robertson, *The solution of a set of reaction rate equations*,
        in J. Walsh (ed.), Numerical Analysis: An Introduction, 1966;
        E. Hairer, G. Wanner, *Solving Ordinary Differential Equations II*,
        2nd ed., Springer, 1996, Section IV.1;
        F. Mazzia, C. Magherini, *Test Set for Initial Value Problem Solvers*,
        release 2.4, 2008 (problem ROBER).

    Example:
        >>> import probnum_jax as pnx
        >>> ivp = pnx.problems.robertson()
        >>> ivp.vector_field(ivp.t0, ivp.y0, ivp.args).shape
        (3,)
    """
    return InitialValueProblem(
        vector_field=_robertson_vf,
        y0=_as_initial_value(y0),
        t0=t0,
        t1=t1,
        args=tuple(args),
        name="robertson",
        stiff=True,
    )
