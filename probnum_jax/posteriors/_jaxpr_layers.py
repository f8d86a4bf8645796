"""Dense and convolution layers of a model, found in its jaxpr.

A *layer* is a ``dot_general`` or a ``conv_general_dilated`` whose kernel
operand is a parameter leaf, possibly reshaped, transposed or cast on the way.
Finding layers in the jaxpr rather than by module type makes the same code
work for equinox, flax (linen and nnx) and plain functional models.

Every layer application (a *site*) is written in a canonical matrix form,

    outputs[T, d_out] = rows[T, d_in] @ kernel[d_in, d_out],

where ``T`` counts the positions that share the kernel (1 for a dense layer on
one sample, the output pixels of a convolution, the tokens of a sequence).
For a convolution the rows are the im2col patches (Grosse & Martens, 2016).
The gradient of a loss with respect to the kernel is then ``rows.T @ deltas``
with ``deltas`` the gradient with respect to the outputs, which is what
BackPACK (Dangel et al., 2020) and KFAC (Martens & Grosse, 2015) build on.

:class:`LayerGraph` holds the jaxpr of the model on one sample and its sites;
:meth:`LayerGraph.evaluate` runs the model while recording each site's rows
and adding a perturbation to each site's outputs, so that the gradient with
respect to the perturbation is the per-sample ``deltas``.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jex

from ._layer_sites import View, axes_permutation, conv_site, dense_site

# Primitives that only rearrange or cast a kernel: a parameter seen through
# them is still the same parameter.
_VIEW_PRIMITIVES = frozenset({"convert_element_type", "transpose", "reshape", "squeeze", "copy", "copy_p"})
_LAYER_PRIMITIVES = frozenset({"dot_general", "conv_general_dilated"})
_CALL_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _sub_jaxpr(eqn):
    """The (jaxpr, consts) an inlinable call primitive wraps, else ``None``."""
    for name in _CALL_PARAMS:
        sub = eqn.params.get(name)
        if isinstance(sub, jex.ClosedJaxpr):
            return sub.jaxpr, sub.consts
        if isinstance(sub, jex.Jaxpr):
            return sub, ()
    return None


def _is_view_op(eqn) -> bool:
    name = eqn.primitive.name
    if name == "broadcast_in_dim":  # only inserting unit axes, in order
        dims = eqn.params["broadcast_dimensions"]
        size_in = math.prod(eqn.invars[0].aval.shape)
        return size_in == math.prod(eqn.params["shape"]) and list(dims) == sorted(dims)
    return name in _VIEW_PRIMITIVES


def _layer_kernel_pos(eqn, views):
    """Which operand of a layer primitive is a parameter view (or ``None``)."""
    if eqn.primitive.name not in _LAYER_PRIMITIVES:
        return None
    has_view = [not isinstance(v, jex.Literal) and v in views for v in eqn.invars[:2]]
    if has_view.count(True) != 1:
        return None
    return has_view.index(True)


class _Analysis:
    """Structural pass: number the candidate layers, note other parameter uses.

    Also notes, for each candidate, a parameter leaf added to its output (a
    bias), so that ``subset="last_layer"`` can take the kernel and its bias.
    """

    _PASS_THROUGH = frozenset({"transpose", "reshape", "convert_element_type", "copy", "squeeze"})

    def __init__(self, leaf_shapes):
        self.leaf_shapes = leaf_shapes
        self.candidates = []  # Site or None (unsupported layer form), in walk order
        self.other_use = set()
        self.bias_of = {}  # candidate number -> leaf
        self._site_output = {}  # var -> candidate number (through pass-through ops)
        self._broadcast_leaf = {}  # var -> leaf, for broadcasts of a parameter

    def run(self, jaxpr, views):
        for eqn in jaxpr.eqns:
            in_views = [None if isinstance(v, jex.Literal) else views.get(v) for v in eqn.invars]
            kpos = _layer_kernel_pos(eqn, views)
            if kpos is not None:
                view = in_views[kpos]
                make = dense_site if eqn.primitive.name == "dot_general" else conv_site
                site = make(self.leaf_shapes[view.leaf], view, eqn, kpos)
                if site is None:
                    self.other_use.add(view.leaf)
                self._site_output[eqn.outvars[0]] = len(self.candidates)
                self.candidates.append(site)
            elif any(in_views):
                if _is_view_op(eqn) and len(eqn.invars) == 1:
                    views[eqn.outvars[0]] = View(in_views[0].leaf, in_views[0].ops + (eqn,))
                elif (sub := _sub_jaxpr(eqn)) is not None:
                    sub_jaxpr, _ = sub
                    sub_views = {sv: vw for sv, vw in zip(sub_jaxpr.invars, in_views) if vw is not None}
                    self.run(sub_jaxpr, sub_views)
                    self._mark_outputs(sub_jaxpr, sub_views)
                else:
                    self.other_use.update(vw.leaf for vw in in_views if vw is not None)
                    if eqn.primitive.name == "broadcast_in_dim":
                        self._broadcast_leaf[eqn.outvars[0]] = in_views[0].leaf
                    self._note_bias(eqn, views)
            else:
                self._note_bias(eqn, views)
                first = eqn.invars[0] if eqn.invars else None
                if (
                    eqn.primitive.name in self._PASS_THROUGH
                    and not isinstance(first, jex.Literal)
                    and first in self._site_output
                ):
                    self._site_output[eqn.outvars[0]] = self._site_output[eqn.invars[0]]
        return views

    def _note_bias(self, eqn, views):
        if eqn.primitive.name != "add":
            return
        a, b = eqn.invars
        for out_var, other in ((a, b), (b, a)):
            if isinstance(out_var, jex.Literal) or isinstance(other, jex.Literal):
                continue
            if out_var in self._site_output:
                leaf = views[other].leaf if other in views else self._broadcast_leaf.get(other)
                if leaf is not None:
                    self.bias_of.setdefault(self._site_output[out_var], leaf)

    def _mark_outputs(self, jaxpr, views):
        for v in jaxpr.outvars:
            if not isinstance(v, jex.Literal) and v in views:
                self.other_use.add(views[v].leaf)


def _bind(eqn, invals):
    params = eqn.primitive.get_bind_params(eqn.params)
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*invals, **params)
    return out if eqn.primitive.multiple_results else [out]


class _Evaluation:
    """Evaluation pass: run the model, record rows and perturb outputs of active sites."""

    def __init__(self, site_of_candidate, perturbations):
        self.site_of_candidate = site_of_candidate  # candidate number -> (site number, Site)
        self.perturbations = perturbations  # site number -> [T, d_out]
        self.rows = {}
        self.count = 0

    def run(self, jaxpr, consts, args, views):
        env = {}

        def read(v):
            return v.val if isinstance(v, jex.Literal) else env[v]

        for v, val in zip(jaxpr.constvars, consts):
            env[v] = val
        for v, val in zip(jaxpr.invars, args):
            env[v] = val
        for eqn in jaxpr.eqns:
            invals = [read(v) for v in eqn.invars]
            in_views = [None if isinstance(v, jex.Literal) else views.get(v) for v in eqn.invars]
            kpos = _layer_kernel_pos(eqn, views)
            if kpos is not None:
                outvals = _bind(eqn, invals)
                number = self.count
                self.count += 1
                if number in self.site_of_candidate:
                    s, site = self.site_of_candidate[number]
                    self.rows[s] = site.input_to_rows(invals[1 - kpos])
                    delta = site.rows_to_output(self.perturbations[s])
                    outvals = [outvals[0] + delta.astype(outvals[0].dtype)]
            elif any(in_views) and _is_view_op(eqn) and len(eqn.invars) == 1:
                outvals = _bind(eqn, invals)
                views[eqn.outvars[0]] = View(in_views[0].leaf, in_views[0].ops + (eqn,))
            elif any(in_views) and (sub := _sub_jaxpr(eqn)) is not None:
                sub_jaxpr, sub_consts = sub
                sub_views = {sv: vw for sv, vw in zip(sub_jaxpr.invars, in_views) if vw is not None}
                outvals = self.run(sub_jaxpr, sub_consts, invals, sub_views)
            else:
                outvals = _bind(eqn, invals)
            for v, val in zip(eqn.outvars, outvals):
                env[v] = val
        return [read(v) for v in jaxpr.outvars]


@dataclasses.dataclass(frozen=True, eq=False)
class LayerGraph:
    """A model on one sample, with its layers in canonical form.

    Attributes:
        jaxpr: closed jaxpr of ``leaves, x[None] -> model_fn(params, x[None])``.
        sites: the layer applications whose kernel leaf is used only as a kernel.
        leaf_sites: for each leaf, the numbers of its sites (empty: not a layer kernel).
        leaf_index: for each leaf, ``[d_in, d_out]`` flat indices of its canonical
            matrix; for a leaf that is not a layer kernel, ``arange(size)[None]``.
        leaf_perm: for each leaf, axes ``perm`` with ``canonical =
            transpose(leaf, perm).reshape(d_in, d_out)`` if there is one, else ``None``
            (then the canonical matrix is a gather).
    """

    jaxpr: object
    leaf_shapes: tuple
    sites: tuple
    leaf_sites: tuple
    leaf_index: tuple
    site_of_candidate: dict
    last_dense: tuple  # leaves of the last dense layer: (kernel,) or (kernel, bias)
    leaf_perm: tuple

    def is_layer(self, leaf: int) -> bool:
        return bool(self.leaf_sites[leaf])

    def evaluate(self, leaves, x_single, perturbations):
        """Run the model on one sample ``x_single`` (no batch axis).

        ``perturbations`` maps site numbers to ``[T, d_out]`` arrays added to
        those sites' outputs; sites not in it are evaluated plainly. Returns
        the output (batch axis removed) and the rows ``[T, d_in]`` of the
        perturbed sites.
        """
        active = {c: v for c, v in self.site_of_candidate.items() if v[0] in perturbations}
        ev = _Evaluation(active, perturbations)
        views = {v: View(i) for i, v in enumerate(self.jaxpr.jaxpr.invars[: len(leaves)])}
        (out,) = ev.run(self.jaxpr.jaxpr, self.jaxpr.consts, list(leaves) + [x_single[None]], views)
        return out[0], ev.rows


def _analyse(model_fn, treedef, leaf_avals, x_aval):
    def single(leaves, x):
        return model_fn(jax.tree.unflatten(treedef, leaves), x)

    closed = jax.make_jaxpr(single)(list(leaf_avals), x_aval)
    leaf_shapes = tuple(a.shape for a in leaf_avals)
    analysis = _Analysis(leaf_shapes)
    views = {v: View(i) for i, v in enumerate(closed.jaxpr.invars[: len(leaf_avals)])}
    analysis.run(closed.jaxpr, views)
    analysis._mark_outputs(closed.jaxpr, views)

    # A leaf is a layer kernel if every use is as a kernel, in one canonical layout.
    by_leaf = {}
    for number, site in enumerate(analysis.candidates):
        if site is not None:
            by_leaf.setdefault(site.leaf, []).append((number, site))
    kernel_leaves = {}
    for leaf, uses in by_leaf.items():
        first = uses[0][1]
        same = all(np.array_equal(s.kernel_index, first.kernel_index) for _, s in uses)
        if leaf not in analysis.other_use and same:
            kernel_leaves[leaf] = uses
    sites, leaf_sites, site_of_candidate = [], [], {}
    for leaf in range(len(leaf_avals)):
        numbers = []
        for candidate, site in kernel_leaves.get(leaf, []):
            site_of_candidate[candidate] = (len(sites), site)
            numbers.append(len(sites))
            sites.append(site)
        leaf_sites.append(tuple(numbers))
    leaf_index = tuple(
        kernel_leaves[leaf][0][1].kernel_index if leaf in kernel_leaves else np.arange(math.prod(shape))[None, :]
        for leaf, shape in enumerate(leaf_shapes)
    )
    leaf_perm = tuple(axes_permutation(shape, index) for shape, index in zip(leaf_shapes, leaf_index))
    last_dense = ()
    for candidate in sorted(site_of_candidate, reverse=True):
        site = site_of_candidate[candidate][1]
        if site.kind == "dense":
            bias = analysis.bias_of.get(candidate)
            last_dense = (site.leaf,) if bias is None or bias == site.leaf else (site.leaf, bias)
            break
    return LayerGraph(
        closed, leaf_shapes, tuple(sites), tuple(leaf_sites), leaf_index, site_of_candidate, last_dense, leaf_perm
    )


@functools.lru_cache(maxsize=64)
def _analyse_cached(model_fn, treedef, leaf_avals, x_aval):
    return _analyse(model_fn, treedef, leaf_avals, x_aval)


def layer_graph(model_fn, params, x) -> LayerGraph:
    """Trace ``model_fn`` on one sample of ``x`` and find its layers (cached)."""
    leaves, treedef = jax.tree.flatten(params)
    leaf_avals = tuple(jax.ShapeDtypeStruct(jnp.shape(leaf), jnp.result_type(leaf)) for leaf in leaves)
    x_aval = jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), x.dtype)
    try:
        return _analyse_cached(model_fn, treedef, leaf_avals, x_aval)
    except TypeError:  # model_fn not hashable
        return _analyse(model_fn, treedef, leaf_avals, x_aval)
