"""Optimizers updating N networks' parameters in place, each network with its own learning rate.

Every optimizer works on the list of layer arrays ``W[l]`` of shape ``(N, fan_out, fan_in + 1)``
(bias in column 0) with gradients of the same shapes; ``lr`` is ``(N,)``. Formulas (``g`` gradient,
``t`` = 1, 2, ... the update count):

* ``sgd``:      w -= lr g
* ``momentum``: v = mu v + g; w -= lr v  (Nesterov: w -= lr (g + mu v))
* ``adam``:     m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
                w -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)       (Kingma & Ba)
* ``adamw``:    w -= lr wd w (weights only, not biases), then the Adam step
* ``rmsprop``:  s = rho s + (1-rho) g^2; w -= lr g / (sqrt(s) + eps)

Legacy Adam quirks of the posted code (switches, for ablation):

* ``compounding_bias_correction`` (quirk 1): ``m = m / (1 - b1^i)`` written back into the moment
  estimates, skipped at i = 0 and using the 0-based ``i`` instead of ``t = i + 1``: the corrections
  compound, ``v`` outgrows ``m`` and the steps shrink towards zero.
* ``update_times_grad`` (quirk 2): the step ``lr m / (sqrt(v) + eps)`` multiplied by ``g`` again.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "adam", "adamw", "rmsprop")


@dataclass(frozen=True)
class OptimConfig:
    """Hyperparameters shared by the networks of one call (the learning rate is per network)."""

    name: str = "adam"
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    momentum: float = 0.9
    nesterov: bool = False
    rho: float = 0.9
    weight_decay: float = 0.01
    compounding_bias_correction: bool = False
    update_times_grad: bool = False

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.name!r}; allowed: {', '.join(OPTIMIZERS)}")
        if (self.compounding_bias_correction or self.update_times_grad) and self.name != "adam":
            raise ValueError("the legacy Adam quirks need optimizer 'adam', got " + repr(self.name))
        for field, value in (("beta1", self.beta1), ("beta2", self.beta2), ("momentum", self.momentum),
                             ("rho", self.rho)):
            if not 0 <= value < 1:
                raise ValueError(f"{field} must be in [0, 1), got {value!r}")
        if self.eps <= 0 or self.weight_decay < 0:
            raise ValueError("eps must be > 0 and weight_decay >= 0")


class Optimizer:
    """State (moments) for a list of parameter arrays; ``step`` updates them in place."""

    def __init__(self, config: OptimConfig, params: list[np.ndarray], lr: np.ndarray):
        self.c = config
        dtype = params[0].dtype
        self.lr = np.asarray(lr, dtype=dtype).reshape(-1, 1, 1)
        self.t = 0
        n_slots = {"sgd": 0, "momentum": 1, "rmsprop": 1, "adam": 2, "adamw": 2}[config.name]
        self.state = [[np.zeros_like(p) for p in params] for _ in range(n_slots)]

    def step(self, params: list[np.ndarray], grads: list[np.ndarray],
             frozen: np.ndarray | None = None) -> None:
        """One update of every network; networks where ``frozen`` (N,) is True are left unchanged."""
        c, lr, i = self.c, self.lr, self.t
        self.t += 1
        t = self.t
        for k, (w, g) in enumerate(zip(params, grads)):
            if c.name == "sgd":
                upd = lr * g
            elif c.name == "momentum":
                v = self.state[0][k]
                v *= c.momentum
                v += g
                upd = lr * (g + c.momentum * v) if c.nesterov else lr * v
            elif c.name == "rmsprop":
                s = self.state[0][k]
                s *= c.rho
                s += (1 - c.rho) * (g * g)
                upd = lr * g / (np.sqrt(s) + c.eps)
            else:
                m, v = self.state[0][k], self.state[1][k]
                # Written as the posted code writes it (b*m + (1-b)*g), so legacy runs match bit for bit.
                m[...] = c.beta1 * m + (1 - c.beta1) * g
                v[...] = c.beta2 * v + (1 - c.beta2) * (g ** 2)
                if c.compounding_bias_correction:
                    if i != 0:
                        m[...] = m / (1 - c.beta1 ** i)
                        v[...] = v / (1 - c.beta2 ** i)
                    upd = lr * m / (np.sqrt(v) + c.eps)
                else:
                    mhat = m / (1 - c.beta1 ** t)
                    vhat = v / (1 - c.beta2 ** t)
                    upd = lr * mhat / (np.sqrt(vhat) + c.eps)
                if c.update_times_grad:
                    upd = upd * g
                if c.name == "adamw" and c.weight_decay:
                    decay = np.zeros_like(w)
                    decay[:, :, 1:] = (lr * c.weight_decay) * w[:, :, 1:]
                    upd = upd + decay
            if frozen is not None:
                upd = np.where(frozen.reshape(-1, 1, 1), 0, upd)
            w -= upd
