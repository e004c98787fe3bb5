"""A straightforward port of the posted code (../shared/origin/question.md), one network at a time.

The body of ``Cost``/``Train`` is the posted code; the only changes: globals (X, y, m) became
arguments, the learning rate / clipping threshold / lambda are parameters with the posted defaults,
and instead of printing the cost each iteration we collect it. ``norm`` is
``sklearn.preprocessing.normalize``. ``y`` is 1-D (with ``y`` of shape (1, m) the posted cost would
broadcast to an m x m sum; the gradients would be the same).
"""
import numpy as np
from sklearn.preprocessing import normalize as norm


def posted_init(rng, n, hid=3, no_out=1):
    """The posted Xavier initialisation (bias column inside), drawn from ``rng``."""
    w1 = rng.standard_normal((hid, n + 1)) * np.sqrt(2 / (hid + n + 1))
    w2 = rng.standard_normal((no_out, hid + 1)) * np.sqrt(2 / (no_out + hid + 1))
    return w1, w2


def g(x):
    sig = 1 / (1 + np.exp(-x))
    return sig


def frwrd_prop(X, w1, w2, normalize=True):
    z2 = w1 @ X.T
    if normalize:
        z2 = norm(z2, axis=0)
    a2 = np.insert(g(z2), 0, 1, axis=0)
    h = g((w2 @ a2))
    return (h, a2)


def Cost(X, y, w1, w2, lmbda=0, normalize=True, thr=4.5):
    m = X.shape[0]
    J = 0
    dw1 = np.zeros(w1.shape)
    dw2 = np.zeros(w2.shape)
    h, a2 = frwrd_prop(X, w1, w2, normalize)
    J = -(np.sum(y.T * np.log(h) + (1 - y).T * np.log(1 - h))
          - lmbda / 2 * (np.sum(np.sum(w1[:, 1:].T @ w1[:, 1:])) + np.sum(w2[:, 1:].T @ w2[:, 1:]))) / m
    D3 = h - y
    D2 = (w2.T @ D3) * a2 * (1 - a2)
    dw1[:, 0] = (D2[1:] @ X)[:, 0] / m
    dw2[:, 0] = (D3 @ a2.T)[:, 0] / m
    dw1[:, 1:] = ((D2[1:] @ X)[:, 1:] + lmbda * w1[:, 1:]) / m
    dw2[:, 1:] = ((D3 @ a2.T)[:, 1:] + lmbda * w2[:, 1:]) / m
    if (abs(np.linalg.norm(dw1)) > thr):
        dw1 = dw1 * thr / (np.linalg.norm(dw1))
    if (abs(np.linalg.norm(dw2)) > thr):
        dw1 = dw1 * thr / (np.linalg.norm(dw2))
    return (J, dw1, dw2)


def Train(X, y, w1, w2, maxIter=50, a=0.001, lmbda=0, thr=4.5):
    """Returns final (w1, w2) and the cost printed at each iteration."""
    b1, b2, e = 0.9, 0.999, 10 ** (-8)
    V1 = np.zeros(w1.shape)
    V2 = np.zeros(w2.shape)
    S1 = np.zeros(w1.shape)
    S2 = np.zeros(w2.shape)
    costs = []
    for i in range(maxIter):
        J, dw1, dw2 = Cost(X, y, w1, w2, lmbda=lmbda, thr=thr)
        V1 = b1 * V1 + (1 - b1) * dw1
        S1 = b2 * S1 + (1 - b2) * (dw1 ** 2)
        V2 = b1 * V2 + (1 - b1) * dw2
        S2 = b2 * S2 + (1 - b2) * (dw2 ** 2)
        if i != 0:
            V1 = V1 / (1 - b1 ** i)
            S1 = S1 / (1 - b2 ** i)
            V2 = V2 / (1 - b1 ** i)
            S2 = S2 / (1 - b2 ** i)
        w1 = w1 - a * V1 / (np.sqrt(S1) + e) * dw1
        w2 = w2 - a * V2 / (np.sqrt(S2) + e) * dw2
        costs.append(J)
    return (w1, w2), np.array(costs)
