"""The model and the loss factors of include/ngd, written once over a small `ops` adapter so that
every framework computes the same function with the same parameter layout; the structured
algorithm written by hand (the *_structured peers); the flops the peers execute and the choice of
Jacobian blocks. Only the standard library is needed to import it.
"""

# ---- the model and the loss factors, over an ops adapter ----------------------------------------
# ops provides: relu, tanh, gelu (exact), exp, log1p, abs, sqrt, einsum, logsumexp (last axis,
# keepdims), one_hot(labels, k), eye(k).


def softplus(ops, z):
    """log(1 + e^z) without overflow, exact to rounding (framework versions switch to z at 20)."""
    return ops.relu(z) + ops.log1p(ops.exp(-ops.abs(z)))


def activation(ops, name, z):
    if name == "identity":
        return z
    if name == "relu":
        return ops.relu(z)
    if name == "tanh":
        return ops.tanh(z)
    if name == "softplus":
        return softplus(ops, z)
    if name == "gelu":
        return ops.gelu(z)
    raise ValueError(f"unknown activation {name!r}")


def forward_sample(exp, ops, leaves, frozen, x, sel):
    """f(x) (k,) for one sample x (d,): z_l = w_l W_l a + b_l, a_l = act(z_l), f = scale * a_L;
    matrix factorization keeps the entry that the one-hot `sel` names."""
    a = x
    it = iter(leaves)
    for layer, const in zip(exp.layers, frozen):
        w, b = (next(it), next(it) if layer.bias else None) if const is None else const
        z = (w @ a) * layer.weight_multiplier
        if b is not None:
            z = z + b * layer.bias_multiplier
        a = activation(ops, layer.activation, z)
    f = a * exp.output_scale
    if sel is not None:
        f = (f * sel).sum(-1, keepdims=True)
    return f


def loss_factors(exp, ops, f, y):
    """(L, M, u) for outputs f (n x k): M is None (identity, squared) or n x k x k with block i =
    M_i; u is n x k; e_i = M_i u_i and H_i = M_i M_i^T (DESIGN.md section 1)."""
    n = f.shape[0]
    if exp.loss == "squared":
        u = f - y
        return (u * u).sum() / (2 * n), None, u
    if exp.loss == "logistic":
        s = 2 * y[:, None] - 1
        m = s * f
        sp_pos, sp_neg = softplus(ops, m), softplus(ops, -m)  # -log sig(m), -log sig(-m)
        value = sp_neg.sum() / n
        big_m = ops.exp(-0.5 * (sp_pos + sp_neg))  # sqrt(sig(m) sig(-m))
        u = -s * ops.exp(-0.5 * m)  # -s sqrt(sig(-m) / sig(m))
        return value, big_m[:, :, None], u
    k = f.shape[1]
    log_p = f - ops.logsumexp(f)
    p, sqrt_p = ops.exp(log_p), ops.exp(0.5 * log_p)
    onehot = ops.one_hot(y, k)
    value = -(onehot * log_p).sum() / n
    big_m = sqrt_p[:, :, None] * ops.eye(k) - p[:, :, None] * sqrt_p[:, None, :]
    return value, big_m, (p - onehot) / sqrt_p


def apply_mt(ops, big_m, jac):
    """A = M^T J per sample: jac (c x k x P) -> (c x k x P); M None is the identity."""
    if big_m is None:
        return jac
    return ops.einsum("nca,ncp->nap", big_m, jac)


def apply_m(ops, big_m, alpha):
    """M alpha per sample (n x k): the cotangent whose VJP is A^T alpha = J^T M alpha."""
    if big_m is None:
        return alpha
    return ops.einsum("nca,na->nc", big_m, alpha)


# ---- the structured algorithm, written by hand (the honest yardstick of DESIGN.md section 6) ----
# ops additionally provides: act_prime(name, z) (the activation's derivative, through the
# framework's own forward-mode AD) and ones(shape).


def forward_batch(exp, ops, leaves, frozen, x, sel):
    """f (n x k) for the batch x (n x d), and per layer (W_l, its input a_{l-1} (n x d_{l-1}), z_l
    (n x d_l)): the same function as forward_sample, batched by matmuls."""
    a, kept = x, []
    it = iter(leaves)
    for layer, const in zip(exp.layers, frozen):
        w, b = (next(it), next(it) if layer.bias else None) if const is None else const
        z = (a @ w.T) * layer.weight_multiplier
        if b is not None:
            z = z + b * layer.bias_multiplier
        kept.append((w, a, z))
        a = activation(ops, layer.activation, z)
    f = a * exp.output_scale
    if sel is not None:
        f = (f * sel).sum(-1, keepdims=True)
    return f, kept


def structured_gram(exp, ops, kept, sel, big_m):
    """K - n lambda I = A A^T by ngd's structured algorithm, both triangles: per trainable layer l
    the input Gram S_l = w_l^2 a_{l-1} a_{l-1}^T + b_l^2 (n x n) and the seed Gram D_l D_l^T
    (N x N, D_l = d(M^T f)/dz_l, N x d_l), their elementwise product (S_l expanded over the k x k
    blocks of a sample pair), summed over layers. J is never formed."""
    n, k = kept[0][1].shape[0], exp.k
    big_n = n * k
    # Seeds at the last layer, n x k x d_L: M^T d f / d z_L with f = scale a_L (or its row sel_i).
    z_last = kept[-1][2]
    if sel is not None:
        out = (exp.output_scale * sel)[:, None, :]
    else:
        out = exp.output_scale * ops.eye(k)[None, :, :] * ops.ones((n, 1, 1))
    seed = apply_mt(ops, big_m, out) * ops.act_prime(exp.layers[-1].activation, z_last)[:, None, :]
    gram = None
    for l in range(len(exp.layers) - 1, -1, -1):
        layer, (w, a_in, _) = exp.layers[l], kept[l]
        if layer.trainable:
            s = (layer.weight_multiplier**2) * (a_in @ a_in.T)
            if layer.bias:
                s = s + layer.bias_multiplier**2
            d = seed.reshape(big_n, layer.n_out)
            term = (s[:, None, :, None] * (d @ d.T).reshape(n, k, n, k)).reshape(big_n, big_n)
            gram = term if gram is None else gram + term
        if l > 0:
            z_prev = kept[l - 1][2]
            act = ops.act_prime(exp.layers[l - 1].activation, z_prev)
            seed = (seed @ w) * layer.weight_multiplier * act[:, None, :]
    return gram


def structured_cost(exp):
    """Flops of the hand-written structured step (a multiply-add is 2): per trainable layer the
    input Gram (2 n^2 d_{l-1}) and the seed Gram (2 N^2 d_l) as full matmuls, the Cholesky and the
    two triangular solves."""
    n, big_n = exp.n, exp.N
    gram = sum(
        2.0 * n * n * layer.n_in + 2.0 * big_n * big_n * layer.n_out
        for layer in exp.layers
        if layer.trainable
    )
    return {
        "chunk": n,
        "blocks": 1,
        "gram_flops": gram,
        "solve_flops": big_n**3 / 3 + 2.0 * big_n**2,
        "jacobian_rows": 0,
    }


# ---- Jacobian blocks and cost -------------------------------------------------------------------


def choose_chunk(exp, budget_bytes, forced=None):
    """Samples per Jacobian block: the largest divisor of n whose block of A (chunk k x p rows) fits
    three times (two resident blocks, one transient) in budget_bytes; `forced` must divide n."""
    n, k, p = exp.n, exp.k, exp.p_trainable
    if forced:
        if n % forced:
            raise ValueError(f"--chunk {forced} does not divide n = {n}")
        return forced
    rows = max(1, int(budget_bytes // (3 * k * p * exp.dtype.itemsize)))
    return max(c for c in range(1, min(n, rows) + 1) if n % c == 0)


def cost(exp, chunk):
    """Flops the peers execute (a multiply-add is 2): the explicit Gram over the computed blocks,
    the Cholesky, the two triangular solves; and the Jacobian rows computed."""
    n_blocks, rows = exp.n // chunk, chunk * exp.k
    pairs = n_blocks * (n_blocks + 1) // 2
    big_n, p = exp.N, exp.p_trainable
    jac_rows = big_n if n_blocks == 1 else pairs * rows + big_n  # + the VJP pass (as N rows)
    return {
        "chunk": chunk,
        "blocks": n_blocks,
        "gram_flops": 2.0 * pairs * rows * rows * p,
        "solve_flops": big_n**3 / 3 + 2.0 * big_n**2,
        "jacobian_rows": jac_rows,
    }


def too_costly(exp, chunk, max_flops):
    c = cost(exp, chunk)
    if c["gram_flops"] > max_flops:
        return f"explicit Gram {c['gram_flops']:.2e} flop > --max-gram-flops {max_flops:.0e}"
    return None
