"""JAX on CPU as a peer: N networks trained at once with ``jit`` + ``vmap``, the way a JAX user
trains many small networks (optional: ``pip install -e '.[jax]'``; never a dependency).

The whole budget is one ``lax.scan`` over the updates inside one compiled call for all N networks;
minibatches come as per-network row indices ``(N, updates, B)`` (the short last batch of an epoch
padded and masked, since XLA needs static shapes). Compiled ahead of the timing, once per
workload, N and dtype; one CPU thread (``peers.jax_import``).
"""
from __future__ import annotations

import math

import numpy as np

from .peers import jax_import
from .workloads import BETA1, BETA2, EPS, Workload


class JaxTrainer:
    """``run(W0, X, y, seed)`` trains the N networks of ``W0`` (the engine's layout) on the workload
    and returns their final training accuracies ``(N,)``; ``compile`` happens in ``__init__``."""

    def __init__(self, w: Workload, X: np.ndarray, y: np.ndarray, W0: list[np.ndarray], dtype: str):
        jax = jax_import()
        self.jax, self.w, self.dtype = jax, w, dtype
        self.n = X.shape[0]
        self.full = w.batch_size is None or w.batch_size >= self.n
        self.X = jax.device_put(X.astype(dtype))
        self.y = jax.device_put(y.astype(np.int32))
        self.binary = W0[-1].shape[1] == 1
        self.N = W0[0].shape[0]
        self.fn = jax.jit(jax.vmap(self._train_one, in_axes=(0, 0, None))).lower(
            self._params(W0), *self._order(0)).compile()

    # -- data order ------------------------------------------------------------------------------
    def _order(self, seed: int):
        """Row indices ``(N, updates, B)`` int32 and the batch mask ``(updates, B)``."""
        jnp = self.jax.numpy
        if self.full:
            return jnp.zeros((self.N, self.w.iterations, 1), jnp.int32), jnp.ones((self.w.iterations, 1), self.dtype)
        n, B = self.n, self.w.batch_size
        per_epoch = math.ceil(n / B)
        pad = per_epoch * B - n
        rng = np.random.default_rng(seed)
        idx = np.zeros((self.N, self.w.epochs, per_epoch * B), dtype=np.int32)
        for k in range(self.N):
            for e in range(self.w.epochs):
                idx[k, e, :n] = rng.permutation(n)
        mask = np.ones((self.w.epochs, per_epoch * B), dtype=self.dtype)
        if pad:
            mask[:, n:] = 0
        return (jnp.asarray(idx.reshape(self.N, self.w.epochs * per_epoch, B)),
                jnp.asarray(mask.reshape(self.w.epochs * per_epoch, B)))

    def _params(self, W0: list[np.ndarray]):
        jnp = self.jax.numpy
        return [(jnp.asarray(np.ascontiguousarray(w[:, :, 1:].transpose(0, 2, 1)), self.dtype),
                 jnp.asarray(w[:, :, 0], self.dtype)) for w in W0]

    # -- one network (vmapped) -------------------------------------------------------------------
    def _logits(self, params, Xb):
        jnp = self.jax.numpy
        act = {"sigmoid": self.jax.nn.sigmoid, "tanh": jnp.tanh, "relu": self.jax.nn.relu}[self.w.activation]
        A = Xb
        for k, (W, b) in enumerate(params):
            A = A @ W + b
            if k < len(params) - 1:
                A = act(A)
        return A

    def _loss(self, params, Xb, yb, mb):
        jnp = self.jax.numpy
        Z = self._logits(params, Xb)
        if self.binary:
            z = Z[:, 0]
            per = jnp.logaddexp(0.0, jnp.where(yb == 1, -z, z))
        else:
            per = self.jax.nn.logsumexp(Z, axis=1) - jnp.take_along_axis(Z, yb[:, None], axis=1)[:, 0]
        return jnp.mean(per) if mb is None else jnp.sum(per * mb) / jnp.sum(mb)

    def _train_one(self, params, idx, mask):
        jax, jnp, lr = self.jax, self.jax.numpy, self.w.lr
        grad = jax.grad(self._loss)
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)

        def step(carry, xs):
            p, m, v, t = carry
            i, mb = xs
            g = grad(p, self.X, self.y, None) if self.full else grad(p, self.X[i], self.y[i], mb)
            t = t + 1
            m = jax.tree_util.tree_map(lambda a, b: BETA1 * a + (1 - BETA1) * b, m, g)
            v = jax.tree_util.tree_map(lambda a, b: BETA2 * a + (1 - BETA2) * b * b, v, g)
            c1, c2 = 1 - BETA1 ** t, 1 - BETA2 ** t
            p = jax.tree_util.tree_map(lambda w, a, b: w - lr * (a / c1) / (jnp.sqrt(b / c2) + EPS), p, m, v)
            return (p, m, v, t), None

        (p, _, _, _), _ = jax.lax.scan(step, (params, zeros, zeros, jnp.asarray(0, self.dtype)), (idx, mask))
        Z = self._logits(p, self.X)
        pred = (Z[:, 0] > 0).astype(jnp.int32) if self.binary else jnp.argmax(Z, axis=1).astype(jnp.int32)
        return jnp.mean((pred == self.y).astype(self.dtype))

    def run(self, W0: list[np.ndarray], seed: int = 0) -> np.ndarray:
        """Train (data order drawn here, inside the timing) and return the accuracies ``(N,)``."""
        out = self.fn(self._params(W0), *self._order(seed))
        return np.asarray(out.block_until_ready(), dtype=float)
