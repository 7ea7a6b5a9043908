"""The step_export format, read by every peer: meta.json and its column-major arrays (Export,
load_export), and the parameter layout of include/ngd/model.hpp (theta <-> per-layer W_l, b_l; the
batch as sample-major arrays). Only numpy is needed to import it.
"""

import dataclasses
import json
import os

import numpy as np

FORMAT = "ngd-step-export/1"


@dataclasses.dataclass
class Layer:
    n_in: int
    n_out: int
    activation: str
    bias: bool
    trainable: bool
    weight_offset: int
    bias_offset: int
    weight_multiplier: float
    bias_multiplier: float


@dataclasses.dataclass
class Export:
    """One step_export folder: meta.json plus its arrays (column-major, as ngd holds them)."""

    folder: str
    meta: dict
    dtype: np.dtype
    layers: list
    arrays: dict  # name -> numpy array (rows x cols, Fortran order); missing files absent

    def __getattr__(self, name):
        meta = self.__dict__.get("meta", {})
        if name in meta:
            return meta[name]
        raise AttributeError(name)

    @property
    def precision(self):
        return self.meta["precision"]

    @property
    def last_width(self):
        return self.layers[-1].n_out


def load_export(folder):
    with open(os.path.join(folder, "meta.json")) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{folder}: not a {FORMAT} export (format {meta.get('format')!r})")
    dtype = np.dtype(meta["dtype"])
    arrays = {}
    for name, spec in meta["files"].items():
        file_dtype = np.dtype(spec.get("dtype", meta["dtype"]))
        path = os.path.join(folder, spec["file"])
        flat = np.fromfile(path, dtype=file_dtype)
        if flat.size != spec["rows"] * spec["cols"]:
            raise ValueError(
                f"{path}: {flat.size} values, expected {spec['rows']} x {spec['cols']}"
            )
        arrays[name] = flat.reshape((spec["rows"], spec["cols"]), order="F")
    layers = [Layer(**layer) for layer in meta["layers"]]
    return Export(folder=folder, meta=meta, dtype=dtype, layers=layers, arrays=arrays)


# ---- parameters: theta <-> per-layer arrays ------------------------------------------------------


def layer_arrays(exp):
    """[(W_l (n_out x n_in), b_l or None)] from theta, in the layout of include/ngd/model.hpp."""
    theta = exp.arrays["theta"][:, 0]
    out = []
    for layer in exp.layers:
        size = layer.n_out * layer.n_in
        w = theta[layer.weight_offset : layer.weight_offset + size]
        w = np.ascontiguousarray(w.reshape((layer.n_out, layer.n_in), order="F"))
        b = (
            theta[layer.bias_offset : layer.bias_offset + layer.n_out].copy()
            if layer.bias
            else None
        )
        out.append((w, b))
    return out


def trainable_leaves(exp):
    """What the peers differentiate: W_l then b_l of each trainable layer, in theta order."""
    leaves = []
    for layer, (w, b) in zip(exp.layers, layer_arrays(exp)):
        if layer.trainable:
            leaves.append(w)
            if b is not None:
                leaves.append(b)
    return leaves


def frozen_arrays(exp):
    """(W, b) of each frozen layer (None for trainable ones): constants of the peers' models."""
    return [None if layer.trainable else wb for layer, wb in zip(exp.layers, layer_arrays(exp))]


def leaves_to_theta(exp, leaves):
    """A p-vector (float64) in theta order from per-leaf arrays; frozen entries are zero."""
    theta = np.zeros(exp.meta["p"], dtype=np.float64)
    it = iter(leaves)
    for layer in exp.layers:
        if not layer.trainable:
            continue
        w = np.asarray(next(it), dtype=np.float64).reshape(layer.n_out, layer.n_in)
        theta[layer.weight_offset : layer.weight_offset + w.size] = w.ravel(order="F")
        if layer.bias:
            theta[layer.bias_offset : layer.bias_offset + layer.n_out] = np.asarray(
                next(it)
            ).ravel()
    return theta


def batch_arrays(exp):
    """Sample-major numpy arrays: X (n x d); Y: squared n x k, logistic n (0/1), softmax n (int);
    SEL: n x d_L one-hot output rows for matrix factorization, else None."""
    x = np.ascontiguousarray(exp.arrays["inputs"].T)
    t = exp.arrays["targets"]
    if exp.loss == "squared":
        y = np.ascontiguousarray(t.T)
    elif exp.loss == "logistic":
        y = np.ascontiguousarray(t[0])
    else:
        y = t[0].astype(np.int64)
    sel = None
    if exp.selects_output_row:
        rows = exp.arrays["output_rows"][0].astype(np.int64)
        sel = np.zeros((exp.n, exp.last_width), dtype=exp.dtype)
        sel[np.arange(exp.n), rows] = 1
    return x, y, sel
