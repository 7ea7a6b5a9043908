"""PyTorch models as ngd models: an nn.Sequential of Linear layers and supported activations maps
to an ngd.Mlp and its theta (and back), so that the structured Gram serves PyTorch models without
forming J. For any other nn.Module, bring your own Jacobian (python/examples/torch_jacobian.py).

    model, theta = ngd.torch.from_sequential(net)      # theta: NumPy, the parameters' dtype
    ... ngd.NaturalGradient(...).step(ctx, model, theta, x, y, loss) ...
    ngd.torch.load_theta(net, model, theta)            # write theta back into net

Supported: nn.Linear (with or without bias), each followed by at most one of nn.ReLU, nn.Tanh,
nn.Softplus (beta 1: PyTorch's linear branch above `threshold` agrees to rounding), nn.GELU
(approximate="none") or nn.Identity. Anything else raises InvalidArgument.
"""

from __future__ import annotations

import numpy as np

from . import _ngd


def _activations():
    import torch.nn as nn

    return {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Softplus: "softplus", nn.GELU: "gelu",
            nn.Identity: "identity"}


def _activation_name(module) -> str:
    import torch.nn as nn

    name = _activations().get(type(module))
    if name is None:
        raise _ngd.InvalidArgument(
            f"ngd.torch: {type(module).__name__} has no ngd counterpart (supported: Linear, ReLU, "
            "Tanh, Softplus, GELU, Identity)")
    if isinstance(module, nn.Softplus) and module.beta != 1:
        raise _ngd.InvalidArgument("ngd.torch: Softplus needs beta = 1")
    if isinstance(module, nn.GELU) and module.approximate != "none":
        raise _ngd.InvalidArgument("ngd.torch: GELU needs approximate='none' (ngd's gelu is exact)")
    return name


def _linears(net):
    """[(Linear, activation name)] of an nn.Sequential."""
    import torch.nn as nn

    pairs = []
    for module in net:
        if isinstance(module, nn.Linear):
            pairs.append([module, "identity"])
        elif not pairs:
            raise _ngd.InvalidArgument(
                f"ngd.torch: the Sequential must start with a Linear layer, not "
                f"{type(module).__name__}")
        elif pairs[-1][1] != "identity" or isinstance(module, nn.Identity):
            if not isinstance(module, nn.Identity):
                raise _ngd.InvalidArgument(
                    "ngd.torch: at most one activation may follow each Linear layer")
        else:
            pairs[-1][1] = _activation_name(module)
    if not pairs:
        raise _ngd.InvalidArgument("ngd.torch: the Sequential has no Linear layer")
    return pairs


def from_sequential(net):
    """(ngd.Mlp, theta) for an nn.Sequential: theta is a NumPy vector in ngd's order with the
    parameters' dtype (float32 or float64); frozen layers (requires_grad False) stay frozen."""
    pairs = _linears(net)
    layers = []
    for lin, act in pairs:
        trainable = lin.weight.requires_grad
        layers.append(_ngd.Layer(lin.out_features, act, bias=lin.bias is not None,
                                 trainable=trainable))
    model = _ngd.Mlp(pairs[0][0].in_features, layers)
    dtype = np.dtype(str(pairs[0][0].weight.dtype).replace("torch.", ""))
    theta = np.zeros(model.n_params, dtype=dtype)
    _write_theta(model, theta, [lin for lin, _ in pairs])
    return model, theta


def _write_theta(model, theta, linears):
    for l, lin in enumerate(linears):
        w = lin.weight.detach().cpu().numpy()  # (n_out, n_in), row-major
        off = model.weight_offset(l)
        theta[off:off + w.size] = w.T.reshape(-1)  # ngd: column-major n_out x n_in
        if lin.bias is not None:
            b = model.bias_offset(l)
            theta[b:b + w.shape[0]] = lin.bias.detach().cpu().numpy()


def load_theta(net, model, theta) -> None:
    """Writes theta (ngd's order) into the Linear layers of `net` (the Sequential it came from)."""
    import torch

    theta = np.asarray(theta.detach().cpu() if isinstance(theta, torch.Tensor) else theta)
    linears = [lin for lin, _ in _linears(net)]
    if len(linears) != model.n_layers or theta.shape != (model.n_params,):
        raise _ngd.InvalidArgument("ngd.torch.load_theta: net, model and theta do not match")
    with torch.no_grad():
        for l, lin in enumerate(linears):
            n_out, n_in = lin.out_features, lin.in_features
            off = model.weight_offset(l)
            w = theta[off:off + n_out * n_in].reshape(n_in, n_out).T * model.weight_multiplier(l)
            lin.weight.copy_(torch.as_tensor(w, dtype=lin.weight.dtype))
            if lin.bias is not None:
                b = model.bias_offset(l)
                lin.bias.copy_(torch.as_tensor(theta[b:b + n_out], dtype=lin.bias.dtype))


def to_sequential(model, theta, dtype=None):
    """An nn.Sequential computing the same function as (model, theta). NTK weights are folded in
    (W / sqrt(n_in)); output_scale must be 1 and matrix-factorization models are not supported."""
    import torch
    import torch.nn as nn

    if model.output_scale != 1.0 or model.selects_output_row:
        raise _ngd.InvalidArgument(
            "ngd.torch.to_sequential: needs output_scale 1 and no output-row selection")
    modules = []
    types = {v: k for k, v in _activations().items()}
    theta_np = np.asarray(theta)
    dtype = dtype or getattr(torch, theta_np.dtype.name)
    for l, layer in enumerate(model.layers):
        modules.append(nn.Linear(model.fan_in(l), layer.n_out, bias=layer.bias, dtype=dtype))
        if layer.activation.name != "identity":
            modules.append(types[layer.activation.name]())
    net = nn.Sequential(*modules)
    load_theta(net, model, theta_np)
    for l, layer in enumerate(model.layers):
        lin = [m for m in net if isinstance(m, nn.Linear)][l]
        for p in lin.parameters():
            p.requires_grad_(layer.trainable)
    return net
