"""Forward and backward passes of N multilayer perceptrons at once.

Layout (the posted code's, with a leading network axis): samples run along the LAST axis.

* ``XT``: ``(d + 1, n)`` inputs with a leading row of ones, shared by all networks (full batch), or
  ``(N, d + 1, n)`` when each network sees its own minibatch.
* ``W[l]``: ``(N, fan_out, fan_in + 1)``; column 0 is the bias.
* ``acts[l]``: input of layer ``l`` with its row of ones, ``(N, fan_in + 1, n)`` (``acts[0] = XT``).
* ``logits``: ``(N, K, n)`` with ``K = 1`` for binary output (sigmoid + binary cross-entropy) and
  ``K = n_classes`` for softmax + cross-entropy.

With shared inputs the first layer of all N networks is ONE matrix product
``W0.reshape(N * H, d + 1) @ XT`` (the "wide" layout): no copy, since the layout already stacks
the networks' hidden units.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIVATIONS: tuple[str, ...] = ("sigmoid", "tanh", "relu")


@dataclass(frozen=True)
class Arch:
    """Shapes shared by every network of a batch: ``n_in`` inputs, ``hidden`` widths, ``n_out``."""

    n_in: int
    hidden: tuple[int, ...]
    n_out: int
    activation: str = "sigmoid"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; allowed: {', '.join(ACTIVATIONS)}")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden must list at least one layer width >= 1, got {self.hidden!r}")
        if self.n_in < 1 or self.n_out < 1:
            raise ValueError("n_in and n_out must be >= 1")

    @classmethod
    def for_data(cls, n_in: int, n_classes: int, hidden, activation: str = "sigmoid") -> "Arch":
        """Binary data (2 classes) gets one sigmoid output; more classes get a softmax of K outputs."""
        if n_classes < 2:
            raise ValueError(f"need at least 2 classes, got {n_classes}")
        return cls(int(n_in), tuple(int(h) for h in hidden), 1 if n_classes == 2 else int(n_classes), activation)


def add_ones_row(X: np.ndarray) -> np.ndarray:
    """``(n, d)`` samples -> ``(n, d + 1)`` C-contiguous with a leading column of ones."""
    out = np.empty((X.shape[0], X.shape[1] + 1), dtype=X.dtype)
    out[:, 0] = 1
    out[:, 1:] = X
    return out


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``1 / (1 + exp(-z))`` elementwise, exactly the posted ``g``; saturates to 0/1 without NaN."""
    out = np.negative(z, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


def _activate(Z: np.ndarray, activation: str, out: np.ndarray) -> None:
    if activation == "sigmoid":
        sigmoid(Z, out=out)
    elif activation == "tanh":
        np.tanh(Z, out=out)
    else:
        np.maximum(Z, 0, out=out)


def normalize_columns(Z: np.ndarray) -> np.ndarray:
    """Per-sample L2 normalisation over the hidden units, ``(N, H, n)``, as ``sklearn.preprocessing.
    normalize(z, axis=0)`` does to each network's ``(H, n)``: norms below 10 eps are left at 1."""
    norms = np.sqrt(np.einsum("...ij,...ij->...j", Z, Z))
    norms[norms < 10 * np.finfo(Z.dtype).eps] = 1.0
    return Z / norms[..., None, :]


def forward(W: list[np.ndarray], XT: np.ndarray, activation: str,
            normalize_hidden: bool = False, per_network: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits ``(N, K, n)`` and the augmented input of every layer ``acts`` (see module doc).

    ``normalize_hidden`` applies the posted code's per-sample normalisation to every hidden
    pre-activation (legacy quirk 3). ``per_network``: the shared-input first layer as one product
    per network instead of one for all (BLAS may sum a taller product in another order, so only
    this is bit for bit the same as one network alone; legacy mode uses it).
    """
    N = W[0].shape[0]
    acts = [XT]
    A = XT
    for layer, Wl in enumerate(W):
        if layer == 0 and A.ndim == 2 and per_network:
            Z = np.stack([w @ A for w in Wl])
        elif layer == 0 and A.ndim == 2:
            Z = (Wl.reshape(-1, Wl.shape[2]) @ A).reshape(N, Wl.shape[1], A.shape[1])
        else:
            Z = Wl @ A
        if layer == len(W) - 1:
            return Z, acts
        if normalize_hidden:
            Z = normalize_columns(Z)
        A = np.empty((N, Z.shape[1] + 1, Z.shape[2]), dtype=Z.dtype)
        A[:, 0, :] = 1
        _activate(Z, activation, A[:, 1:, :])
        acts.append(A)
    raise AssertionError("unreachable")


def softplus(u: np.ndarray) -> np.ndarray:
    """``log(1 + exp(u))`` without overflow: ``max(u, 0) + log1p(exp(-|u|))``."""
    return np.maximum(u, 0) + np.log1p(np.exp(-np.abs(u)))


def output_loss(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean cross-entropy per network, ``(N,)``, computed stably from logits ``(N, K, n)``.

    Binary (K = 1): softplus(-z) for y = 1, softplus(z) for y = 0 (no log(0), no overflow).
    Softmax: logsumexp(z) - z_y with the max subtracted first.
    """
    if logits.shape[1] == 1:
        z = logits[:, 0, :]
        return softplus(np.where(y.astype(bool), -z, z)).mean(axis=1)
    zmax = logits.max(axis=1, keepdims=True)
    lse = zmax[:, 0, :] + np.log(np.exp(logits - zmax).sum(axis=1))
    return (lse - np.take_along_axis(logits, _label_index(y, logits), axis=1)[:, 0, :]).mean(axis=1)


def _label_index(y: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Labels ``(n,)`` or ``(N, n)`` as an index ``(N, 1, n)`` into the class axis of ``logits``."""
    return np.broadcast_to(y.reshape(-1, 1, y.shape[-1]), (logits.shape[0], 1, logits.shape[2]))


def output_delta(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of the SUMMED cross-entropy w.r.t. the logits, ``(N, K, n)``: ``p - onehot(y)``.

    ``y`` is ``(n,)`` (shared) or ``(N, n)`` (one minibatch per network)."""
    if logits.shape[1] == 1:
        return sigmoid(logits) - (y if y.ndim == 1 else y[:, None, :])
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    idx = _label_index(y, logits)
    np.put_along_axis(p, idx, np.take_along_axis(p, idx, axis=1) - 1, axis=1)
    return p


def predict(logits: np.ndarray) -> np.ndarray:
    """Class labels ``(N, n)`` from logits ``(N, K, n)`` (binary: logit > 0, i.e. p > 0.5)."""
    if logits.shape[1] == 1:
        return (logits[:, 0, :] > 0).astype(np.int64)
    return logits.argmax(axis=1)


def accuracy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Share of correct predictions per network, ``(N,)``."""
    return (predict(logits) == y).mean(axis=1)


def backward(W: list[np.ndarray], acts: list[np.ndarray], delta: np.ndarray,
             activation: str, per_network: bool = False) -> list[np.ndarray]:
    """Gradients of the SUMMED loss, one ``(N, fan_out, fan_in + 1)`` array per layer.

    ``delta`` is ``output_delta`` ``(N, K, n)``. Hidden deltas follow the posted code's order of
    operations, ``(dA * a) * (1 - a)`` for sigmoid, so legacy runs can match it bit for bit. With the
    legacy normalisation on, the normalisation's own Jacobian is ignored, as in the posted code.
    ``per_network`` as in :func:`forward`.
    """
    N = W[0].shape[0]
    grads: list[np.ndarray] = [None] * len(W)  # type: ignore[list-item]
    D = delta
    for layer in range(len(W) - 1, -1, -1):
        A = acts[layer]
        if layer == 0 and A.ndim == 2 and per_network:
            grads[0] = np.stack([d @ A.T for d in D])
        elif layer == 0 and A.ndim == 2:
            # Wide layout: one product for all networks; A.T is the C-contiguous (n, d + 1) input.
            grads[0] = (D.reshape(-1, D.shape[2]) @ A.T).reshape(W[0].shape)
        else:
            grads[layer] = D @ A.transpose(0, 2, 1)
        if layer == 0:
            break
        dA = W[layer][:, :, 1:].transpose(0, 2, 1) @ D
        a = A[:, 1:, :]
        if activation == "sigmoid":
            D = dA * a * (1 - a)
        elif activation == "tanh":
            D = dA * (1 - a * a)
        else:
            D = dA * (a > 0)
    assert all(g.shape == w.shape for g, w in zip(grads, W)), N
    return grads


def l2_penalty(W: list[np.ndarray], *, sum_wtw: bool = False) -> np.ndarray:
    """Sum of squared weights (biases excluded) per network, ``(N,)``.

    ``sum_wtw`` reproduces the posted regulariser ``sum(W[:,1:].T @ W[:,1:])`` (legacy quirk 5): the
    sum of ALL entries of WᵀW, which is not the sum of squares.
    """
    total = 0.0
    for Wl in W:
        w = Wl[:, :, 1:]
        if sum_wtw:
            total = total + (w.transpose(0, 2, 1) @ w).sum(axis=(1, 2))
        else:
            total = total + np.einsum("nij,nij->n", w, w)
    return total


def loss_and_grads(W: list[np.ndarray], XT: np.ndarray, y: np.ndarray, activation: str, *,
                   l2: float | np.ndarray = 0.0, normalize_hidden: bool = False,
                   sum_wtw: bool = False, per_network: bool = False) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Objective ``mean CE + l2 / (2 m) * sum(W**2)`` per network ``(N,)``, its gradients and logits.

    ``m`` is the number of samples in ``XT``; gradients are ``(sum_i dCE_i/dW + l2 * W) / m`` with the
    bias column unpenalised: the posted code's (and scikit-learn's) convention.
    """
    logits, acts = forward(W, XT, activation, normalize_hidden, per_network)
    m = logits.shape[2]
    grads = backward(W, acts, output_delta(logits, y), activation, per_network)
    l2 = np.asarray(l2, dtype=W[0].dtype)
    loss = output_loss(logits, y)
    if np.any(l2 != 0):
        l2b = l2.reshape(-1, 1, 1) if l2.ndim else l2
        for g, Wl in zip(grads, W):
            g[:, :, 1:] += l2b * Wl[:, :, 1:]
        loss = loss + l2.reshape(-1) / (2 * m) * l2_penalty(W, sum_wtw=sum_wtw)
    for g in grads:
        g /= m
    return loss, grads, logits
