"""Train an MLP on scikit-learn's handwritten digits (1797 8x8 images, shipped with scikit-learn,
no download) with ngd's exact damped natural gradient, against Adam and plain gradient descent on
the same mini-batches, and plot the training loss against steps and against time.

    pip install ./python scikit-learn matplotlib tqdm
    python python/examples/digits.py --plot digits.png

Every optimizer starts from the same theta and sees the same batches; the loss on the whole training
set is evaluated every --eval-every steps (not counted in the time). Adam uses ngd.gradient.
"""

import argparse
import time

import ngd
import numpy as np


def load(seed):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    return (x[:1500], y[:1500]), (x[1500:], y[1500:])


class Adam:
    """Adam (Kingma and Ba) on ngd.gradient."""

    def __init__(self, learning_rate=3e-2, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps = learning_rate, beta1, beta2, eps
        self.m = self.v = None
        self.t = 0

    def step(self, ctx, model, theta, x, y, loss):
        g = ngd.gradient(ctx, model, theta, x, y, loss)
        if self.m is None:
            self.m, self.v = np.zeros_like(g), np.zeros_like(g)
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        mhat = self.m / (1 - self.b1**self.t)
        vhat = self.v / (1 - self.b2**self.t)
        theta -= self.lr * mhat / (np.sqrt(vhat) + self.eps)


def train(name, opt, ctx, model, theta0, train_set, batches, eval_every, progress):
    theta = theta0.copy()
    x, y = train_set
    loss = "softmax_cross_entropy"
    steps, seconds, losses = [0], [0.0], [ngd.loss(ctx, model, theta, x, y, loss)]
    elapsed = 0.0
    bar = progress(total=len(batches), desc=f"{name:>4}", leave=True)
    for t, idx in enumerate(batches, start=1):
        start = time.perf_counter()
        opt.step(ctx, model, theta, x[idx], y[idx], loss)
        elapsed += time.perf_counter() - start
        if t % eval_every == 0 or t == len(batches):
            steps.append(t)
            seconds.append(elapsed)
            losses.append(ngd.loss(ctx, model, theta, x, y, loss))
            bar.set_postfix(loss=f"{losses[-1]:.3e}")
        bar.update(1)
    bar.close()
    return theta, np.array(steps), np.array(seconds), np.array(losses)


def accuracy(ctx, model, theta, data):
    x, y = data
    return float(np.mean(np.argmax(ngd.forward(ctx, model, theta, x), axis=1) == y))


def plot(path, curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for name, (steps, seconds, losses) in curves.items():
        ax1.semilogy(steps, losses, marker=".", label=name)
        ax2.loglog(seconds[1:], losses[1:], marker=".", label=name)
    ax1.set_xlabel("step")
    ax2.set_xlabel("seconds (training only, log scale)")
    for ax in (ax1, ax2):
        ax.set_ylabel("training loss (cross-entropy, 1500 digits)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("MLP 64-32(tanh)-10 on scikit-learn digits, mini-batches of the same samples")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--ngd-lr", type=float, default=0.5)
    parser.add_argument("--damping", type=float, default=0.1, help="NGD's lambda")
    parser.add_argument("--adam-lr", type=float, default=3e-2)
    parser.add_argument("--gd-lr", type=float, default=0.5)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="digits.png", help="output PNG ('' for none)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    train_set, test_set = load(args.seed)
    model = ngd.Mlp(64, [ngd.Layer(args.width, "tanh"), ngd.Layer(10, "identity")])
    theta0 = model.init(seed=args.seed)
    rng = np.random.default_rng(args.seed + 1)
    batches = [rng.choice(len(train_set[1]), args.batch, replace=False) for _ in range(args.steps)]
    ctx = ngd.Context.best()
    print(f"{model.describe()} on {ctx.description}; {args.steps} steps of {args.batch} samples")

    if args.no_progress:
        from contextlib import nullcontext

        def progress(**kw):
            bar = nullcontext()
            bar.set_postfix = lambda **k: None
            bar.update = lambda n: None
            bar.close = lambda: None
            return bar
    else:
        from tqdm import tqdm as progress

    optimizers = {
        "NGD": ngd.NaturalGradient(learning_rate=args.ngd_lr, damping=args.damping),
        "Adam": Adam(learning_rate=args.adam_lr),
        "GD": ngd.GradientDescent(learning_rate=args.gd_lr),
    }
    curves = {}
    for name, opt in optimizers.items():
        theta, steps, seconds, losses = train(name, opt, ctx, model, theta0, train_set, batches,
                                              args.eval_every, progress)
        curves[name] = (steps, seconds, losses)
        print(f"{name:>4}: training loss {losses[0]:.3f} -> {losses[-1]:.2e} in {seconds[-1]:.2f} s,"
              f" test accuracy {accuracy(ctx, model, theta, test_set):.3f}")
    if args.plot:
        plot(args.plot, curves)
        print(f"plot written to {args.plot}")
    return curves


if __name__ == "__main__":
    main()
