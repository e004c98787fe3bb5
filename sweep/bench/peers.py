"""What a user would otherwise reach for, doing the same work as sweep's engine on a workload.

* ``numpy_train``: a plain, clean numpy loop, one network at a time, float64;
* ``sklearn_train``: ``MLPClassifier`` with every epoch really run (``n_iter_`` checked);
* ``torch_train``: PyTorch CPU, one network at a time (optional: ``pip install -e '.[torch]'``);
* ``JaxTrainer``: JAX on CPU, ``jit`` + ``vmap`` over the networks of one call (optional:
  ``pip install -e '.[jax]'``), compiled ahead of the timing.

Every peer starts from the engine's initial weights (scikit-learn from its own), runs Adam with the
workload's learning rate and (0.9, 0.999, 1e-8), no L2, and returns the final training accuracy.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from .workloads import BETA1, BETA2, EPS, Workload

SKLEARN_ACT = {"sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}


def engine_to_layers(W0: list[np.ndarray], i: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Network ``i`` of the engine's ``[(N, fan_out, fan_in + 1)]`` as ``[(W (fan_in, fan_out), b
    (fan_out,))]`` float64."""
    return [(np.ascontiguousarray(w[i, :, 1:].T, dtype=np.float64), np.array(w[i, :, 0], dtype=np.float64))
            for w in W0]


def orders(w: Workload, n: int, seed: int = 0) -> list[np.ndarray] | None:
    """One permutation of the ``n`` samples per epoch (minibatch workloads), else None."""
    if w.batch_size is None or w.batch_size >= n:
        return None
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(w.epochs)]


def _activate(Z: np.ndarray, act: str) -> None:
    if act == "sigmoid":
        np.negative(Z, out=Z)
        np.exp(Z, out=Z)
        Z += 1.0
        np.reciprocal(Z, out=Z)
    elif act == "tanh":
        np.tanh(Z, out=Z)
    else:
        np.maximum(Z, 0.0, out=Z)


def _derivative(A: np.ndarray, act: str) -> np.ndarray:
    if act == "sigmoid":
        return A * (1.0 - A)
    if act == "tanh":
        return 1.0 - A * A
    return (A > 0).astype(A.dtype)


def _loss_and_delta(Z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of logits ``Z`` ``(m, K)`` and its gradient w.r.t. ``Z``."""
    m = Z.shape[0]
    if Z.shape[1] == 1:
        z = Z[:, 0]
        u = np.where(y == 1, -z, z)
        loss = float((np.maximum(u, 0) + np.log1p(np.exp(-np.abs(u)))).mean())
        return loss, ((1.0 / (1.0 + np.exp(-z)) - y) / m)[:, None]
    zmax = Z.max(axis=1, keepdims=True)
    e = np.exp(Z - zmax)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(m)
    loss = float((np.log(s[:, 0]) + zmax[:, 0] - Z[rows, y]).mean())
    e /= s
    e[rows, y] -= 1.0
    return loss, e / m


def numpy_train(X: np.ndarray, y: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], w: Workload,
                order: list[np.ndarray] | None = None) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, float]:
    """One network trained with Adam: plain numpy, float64, samples as rows, parameters in one flat
    buffer (Adam is a few whole-array operations). ``order``: one permutation per epoch (minibatch
    workloads). Returns the final layers, the loss of every update's batch before the update plus
    the final full-set loss ``(updates + 1,)``, and the final training accuracy."""
    n = X.shape[0]
    theta = np.concatenate([W.ravel() for W, _ in layers] + [b for _, b in layers])
    grad, mom, vel, tmp = (np.zeros_like(theta) for _ in range(4))
    Ws, bs, gWs, gbs, ofs = [], [], [], [], 0
    for W, _ in layers:
        Ws.append(theta[ofs:ofs + W.size].reshape(W.shape))
        gWs.append(grad[ofs:ofs + W.size].reshape(W.shape))
        ofs += W.size
    for _, b in layers:
        bs.append(theta[ofs:ofs + b.size])
        gbs.append(grad[ofs:ofs + b.size])
        ofs += b.size

    def forward(Xb):
        acts = [Xb]
        for k, (W, b) in enumerate(zip(Ws, bs)):
            Z = acts[-1] @ W
            Z += b
            if k < len(Ws) - 1:
                _activate(Z, w.activation)
            acts.append(Z)
        return acts

    if order is None:
        batches = [np.arange(n)] * w.iterations
    else:
        B = w.batch_size
        batches = [p[a:a + B] for p in order for a in range(0, n, B)]
    losses = np.empty(len(batches) + 1)
    for t, idx in enumerate(batches, start=1):
        Xb, yb = (X, y) if order is None else (X[idx], y[idx])
        acts = forward(Xb)
        losses[t - 1], D = _loss_and_delta(acts[-1], yb)
        for k in range(len(Ws) - 1, -1, -1):
            np.matmul(acts[k].T, D, out=gWs[k])
            np.sum(D, axis=0, out=gbs[k])
            if k > 0:
                D = (D @ Ws[k].T) * _derivative(acts[k], w.activation)
        mom *= BETA1
        np.multiply(grad, 1.0 - BETA1, out=tmp)
        mom += tmp
        vel *= BETA2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1.0 - BETA2
        vel += tmp
        c2 = np.sqrt(1.0 - BETA2 ** t)
        np.sqrt(vel, out=tmp)
        tmp += EPS * c2
        np.divide(mom, tmp, out=tmp)
        tmp *= w.lr * c2 / (1.0 - BETA1 ** t)
        theta -= tmp
    Z = forward(X)[-1]
    losses[-1], _ = _loss_and_delta(Z, y)
    pred = (Z[:, 0] > 0).astype(np.int64) if Z.shape[1] == 1 else Z.argmax(axis=1)
    return [(W.copy(), b.copy()) for W, b in zip(Ws, bs)], losses, float((pred == y).mean())


def sklearn_classifier(w: Workload, n: int, seed: int = 0):
    """``MLPClassifier`` doing the workload's work: its epochs (full batch: its iterations, one batch
    per epoch), its batch size, no early stopping (``tol=0``, ``n_iter_no_change`` beyond the budget),
    no L2; minibatches shuffled each epoch (its own order)."""
    from sklearn.neural_network import MLPClassifier
    full = w.batch_size is None or w.batch_size >= n
    budget = w.iterations if full else w.epochs
    return MLPClassifier(hidden_layer_sizes=w.hidden, activation=SKLEARN_ACT[w.activation], solver="adam",
                         batch_size=n if full else w.batch_size, max_iter=budget, tol=0.0,
                         n_iter_no_change=budget + 1, learning_rate_init=w.lr, alpha=0.0, shuffle=not full,
                         early_stopping=False, beta_1=BETA1, beta_2=BETA2, epsilon=EPS, random_state=seed)


def sklearn_train(X: np.ndarray, y: np.ndarray, w: Workload, seed: int = 0):
    """Fit one ``MLPClassifier``; raise if it did not run its whole budget."""
    from sklearn.exceptions import ConvergenceWarning
    clf = sklearn_classifier(w, X.shape[0], seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    if clf.n_iter_ != clf.max_iter:
        raise RuntimeError(f"scikit-learn ran {clf.n_iter_} epochs, not {clf.max_iter}: the benchmark would "
                           "compare unequal work")
    return clf


def available(module: str) -> bool:
    try:
        __import__(module)
    except Exception:
        return False
    return True


def torch_train(X: np.ndarray, y: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], w: Workload,
                dtype: str, seed: int = 0) -> float:
    """PyTorch CPU: ``nn.Linear`` layers and activations, Adam (fused where the build has it),
    minibatches from ``torch.randperm`` per epoch; final training accuracy."""
    import torch
    from torch import nn
    tdt = torch.float64 if dtype == "float64" else torch.float32
    Xt = torch.as_tensor(X, dtype=tdt)
    mods = []
    for k, (W, b) in enumerate(layers):
        lin = nn.Linear(W.shape[0], W.shape[1], dtype=tdt)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(W.T))
            lin.bias.copy_(torch.as_tensor(b))
        mods.append(lin)
        if k < len(layers) - 1:
            mods.append({"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}[w.activation]())
    model = nn.Sequential(*mods)
    binary = layers[-1][0].shape[1] == 1
    yt = torch.as_tensor(y, dtype=tdt) if binary else torch.as_tensor(y, dtype=torch.long)
    loss_fn = nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss()
    try:
        opt = torch.optim.Adam(model.parameters(), lr=w.lr, betas=(BETA1, BETA2), eps=EPS, fused=True)
    except (RuntimeError, TypeError, ValueError):
        opt = torch.optim.Adam(model.parameters(), lr=w.lr, betas=(BETA1, BETA2), eps=EPS, foreach=True)

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        out = model(xb)
        loss = loss_fn(out[:, 0] if binary else out, yb)
        loss.backward()
        opt.step()

    n = X.shape[0]
    if w.batch_size is None or w.batch_size >= n:
        for _ in range(w.iterations):
            step(Xt, yt)
    else:
        gen = torch.Generator().manual_seed(seed)
        for _ in range(w.epochs):
            perm = torch.randperm(n, generator=gen)
            for a in range(0, n, w.batch_size):
                idx = perm[a:a + w.batch_size]
                step(Xt[idx], yt[idx])
    with torch.no_grad():
        out = model(Xt)
        pred = (out[:, 0] > 0).long() if binary else out.argmax(dim=1)
        return float((pred == torch.as_tensor(y)).double().mean())


def jax_import():
    """Import JAX for one CPU thread and float64 (its flags must be set before the first import)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1").strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    jax.config.update("jax_enable_x64", True)
    return jax
