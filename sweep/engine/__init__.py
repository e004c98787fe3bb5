"""The batched MLP engine: N networks with the same layer shapes train in one vectorised pass.

Typical use (shapes: ``W[l]`` is ``(N, fan_out, fan_in + 1)``, bias in column 0)::

    from sweep.engine import Arch, TrainConfig, init_params, train
    arch = Arch.for_data(split.X_train.shape[1], split.n_classes, hidden=[3], activation="sigmoid")
    W0 = init_params(arch.n_in, arch.hidden, arch.n_out, "xavier_normal", seeds=range(20))
    result = train(W0, split, arch, TrainConfig(iterations=1000), lr=0.01, order_seeds=range(20))
    result.diagnostics["val_acc"]          # (20,)

One network is N = 1; there is no separate single-network path.
"""
from .init import BIAS_SCHEMES, INIT_SCHEMES, init_params, layer_sizes, parse_scheme
from .layers import ACTIVATIONS, Arch, accuracy, add_ones_row, backward, forward, loss_and_grads, output_loss
from .optim import OPTIMIZERS, OptimConfig, Optimizer
from .train import Legacy, TrainConfig, TrainResult, auto_chunk, frozen_step, log_steps, stagnation_step, train

__all__ = [
    "ACTIVATIONS", "Arch", "BIAS_SCHEMES", "INIT_SCHEMES", "Legacy", "OPTIMIZERS", "OptimConfig",
    "Optimizer", "TrainConfig", "TrainResult", "accuracy", "add_ones_row", "auto_chunk", "backward",
    "forward", "frozen_step", "init_params", "layer_sizes", "log_steps", "loss_and_grads", "output_loss",
    "parse_scheme", "stagnation_step", "train",
]
