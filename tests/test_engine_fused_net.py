"""The per-network fused kernel (softmax, minibatches, deeper networks) against the numpy reference.

Tolerances as in ``test_engine_fused.py`` (float64: curves and objective <= 1e-10, weights <= 1e-9);
every network gathers its own minibatch rows from the same order streams as the numpy loop, so the
runs are the same runs, not just statistically alike.
"""
import numpy as np
import pytest

pytest.importorskip("numba")

from conftest import make_split  # noqa: E402
from engine_compare import _both, _compare, _max_abs  # noqa: E402
from sweep.engine import Arch, OptimConfig, TrainConfig, init_params, train  # noqa: E402
from sweep.engine.loop import prepare  # noqa: E402

LRS = {"sgd": [0.3, 1.0, 3.0], "momentum": [0.03, 0.1, 0.3], "adam": [0.003, 0.01, 0.03],
       "adamw": [0.003, 0.01, 0.03], "rmsprop": [0.0005, 0.001, 0.003]}


@pytest.fixture(scope="module")
def digits():
    """Standardised digits (64 features, 10 classes): 500 training rows, 200 validation, 100 test."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = (X - X[:500].mean(0)) / (X[:500].std(0) + 1.0)
    return make_split(X[:500], y[:500], X[500:700], y[500:700], X[700:800], y[700:800])


def _nets(arch, schemes, seeds):
    return init_params(arch.n_in, arch.hidden, arch.n_out, schemes, seeds)


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("hidden,batch_size", [((12,), None), ((12,), 64), ((10, 6), 48), ((8, 8, 5), None)])
def test_softmax_equals_numpy(digits, act, hidden, batch_size):
    """Softmax output with cross-entropy, full batch and minibatches (500 = 7 x 64 + 52: a short last
    batch), one to three hidden layers."""
    arch = Arch.for_data(64, 10, hidden, act)
    W0 = _nets(arch, ["xavier_normal", "he_uniform", "normal:0.3"], [3, 4, 5])
    cfg = TrainConfig(OptimConfig("adam"), iterations=40, batch_size=batch_size, l2=0.05, clip_norm=0.5,
                      log_every=7)
    ref, got = _both(digits, arch, cfg, W0, LRS["adam"], order_seeds=[7, 8, 9])
    _compare(ref, got)
    assert len(set(np.round(got.diagnostics["train_loss"], 8))) == 3


@pytest.mark.parametrize("opt", ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"])
@pytest.mark.parametrize("act", ["sigmoid", "relu"])
def test_binary_minibatch_every_optimizer(cancer, opt, act):
    name = "momentum" if opt == "nesterov" else opt
    arch = Arch.for_data(30, 2, (9,), act)
    W0 = _nets(arch, ["xavier_normal", "he_uniform", "normal:0.3"], [3, 4, 5])
    cfg = TrainConfig(OptimConfig(name, nesterov=opt == "nesterov"), epochs=3, batch_size=64, l2=0.05,
                      clip_norm=0.3, log_points=9)
    ref, got = _both(cancer, arch, cfg, W0, LRS[name], order_seeds=[1, 2, 3])
    _compare(ref, got)
    assert (got.diagnostics["grad_norm_first"] > 0.3).any()


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu"])
def test_deep_binary_full_batch(cancer, act):
    arch = Arch.for_data(30, 2, (16, 12, 8), act)
    W0 = _nets(arch, "he_normal", [1, 2])
    cfg = TrainConfig(OptimConfig("adamw", weight_decay=0.01), iterations=60, log_points=15)
    ref, got = _both(cancer, arch, cfg, W0, [0.003, 0.01])
    _compare(ref, got)
    assert got.diagnostics["train_acc"].min() > 0.9


def test_budget_not_a_whole_number_of_epochs(cancer):
    """An iteration budget that ends inside an epoch (400 rows, batches of 64: 7 per epoch)."""
    arch = Arch.for_data(30, 2, (6, 4), "tanh")
    W0 = _nets(arch, "xavier_normal", [1, 2])
    cfg = TrainConfig(OptimConfig("momentum"), iterations=25, batch_size=64, log_every=4)
    ref, got = _both(cancer, arch, cfg, W0, [0.05, 0.1], order_seeds=[5, 6])
    _compare(ref, got)
    assert list(got.objective_steps) == [7, 14, 21, 25]


@pytest.mark.parametrize("hidden,batch_size,lrs", [((16,), 32, [0.01, 300.0, 0.03]),
                                                   ((12, 8), None, [0.01, 1e3, 0.003]),
                                                   ((8,), 50, [1e4, 3e4, 1e5])])
def test_divergence_and_freezing(digits, hidden, batch_size, lrs):
    """Same diverged flags and steps; frozen networks keep their weights (a minibatch objective still
    moves with the batches); when every network diverged the loop stops there."""
    arch = Arch.for_data(64, 10, hidden, "relu")
    W0 = _nets(arch, "he_normal", [1, 2, 3])
    cfg = TrainConfig(OptimConfig("sgd"), iterations=80, batch_size=batch_size, log_points=20)
    ref, got = _both(digits, arch, cfg, W0, lrs, order_seeds=[4, 5, 6])
    _compare(ref, got)
    assert got.diagnostics["diverged"][1]


def test_float32_close_to_numpy_float32(digits):
    arch = Arch.for_data(64, 10, (16, 8), "tanh")
    W0 = _nets(arch, "xavier_normal", [0, 1, 2])
    cfg = TrainConfig(epochs=4, batch_size=32, dtype="float32", l2=0.01)
    ref, got = _both(digits, arch, cfg, W0, [0.003, 0.01, 0.03], order_seeds=[0, 1, 2])
    assert got.params[0].dtype == np.float32
    assert _max_abs(ref.objective, got.objective) <= 1e-4
    assert _max_abs(ref.curves["val_loss"], got.curves["val_loss"]) <= 1e-3
    assert np.abs(ref.diagnostics["val_acc"] - got.diagnostics["val_acc"]).max() <= 0.01


def test_batched_equals_one_at_a_time_and_chunks(digits):
    """A network's run does not depend on its neighbours: bit for bit (the same products, the same
    shapes, one network at a time), whatever the chunk."""
    arch = Arch.for_data(64, 10, (12, 6), "sigmoid")
    W0 = _nets(arch, ["xavier_normal", "he_uniform", "posted", "normal:0.1"], [3, 4, 5, 6])
    cfg = TrainConfig(OptimConfig("adam"), epochs=2, batch_size=40, l2=0.01, clip_norm=1.0, log_every=5)
    lrs, orders = [0.01, 0.003, 0.05, 0.02], [10, 11, 12, 13]
    batch = train(W0, digits, arch, cfg, lr=lrs, order_seeds=orders, engine="fused")
    split = train(W0, digits, arch, cfg, lr=lrs, order_seeds=orders, engine="fused", chunk=3)
    for i in range(4):
        alone = train([w[i:i + 1] for w in W0], digits, arch, cfg, lr=lrs[i], order_seeds=[orders[i]],
                      engine="fused")
        for res, j in ((alone, 0), (split, i)):
            assert all(np.array_equal(a[j], b[i]) for a, b in zip(res.params, batch.params))
            assert np.array_equal(res.objective[:, j], batch.objective[:, i])
            for key in batch.curves:
                assert np.array_equal(res.curves[key][:, j], batch.curves[key][:, i], equal_nan=True)


def test_epochs_drawn_in_several_calls_give_the_same_run(digits):
    """The permutations are drawn ahead a bounded number of epochs at a time: one call or many, the
    same run."""
    from sweep.engine import fused_net
    from sweep.engine.train import finish
    arch = Arch.for_data(64, 10, (8,), "tanh")
    W0 = _nets(arch, "xavier_normal", [1, 2])
    cfg = TrainConfig(OptimConfig("adam"), epochs=5, batch_size=64, log_every=6)
    runs = []
    for budget in (fused_net.PERM_BUDGET, 2 * 500 * 2):      # everything at once; two epochs per call
        b = prepare(W0, digits, arch, cfg, np.array([0.01, 0.02]), [3, 4], 0)
        runs.append(finish(b, fused_net.run_net(b, perm_budget=budget)))
    assert all(np.array_equal(a, b) for a, b in zip(runs[0].params, runs[1].params))
    assert np.array_equal(runs[0].objective, runs[1].objective)
    ref = train(W0, digits, arch, cfg, lr=[0.01, 0.02], order_seeds=[3, 4], engine="numpy")
    _compare(ref, runs[1])


@pytest.mark.parametrize("act,scheme,bias", [("sigmoid", "normal:30", "zeros"), ("tanh", "normal:30", "zeros"),
                                             ("relu", "he_normal", "const:-3")])
def test_final_evaluation_flags_saturated_dead_and_single_class(digits, act, scheme, bias):
    """The kernel's own final evaluation (saturated and dead units, one-class predictions) equals
    numpy's, on networks built to show them."""
    arch = Arch.for_data(64, 10, (10, 6), act)
    W0 = init_params(64, (10, 6), 10, scheme, [1, 2, 3], bias_init=bias)
    cfg = TrainConfig(OptimConfig("sgd"), epochs=1, batch_size=100, log_points=3)
    ref, got = _both(digits, arch, cfg, W0, [1e-4, 1e-3, 1e-2], order_seeds=[1, 2, 3])
    _compare(ref, got)
    d = got.diagnostics
    assert (d["dead_frac"] > 0).any() if act == "relu" else (d["saturated_frac"] > 0).any()


def test_wide_softmax_output_goes_through_blas(digits):
    """More than ``SMALL_OUT`` classes: the output layer's products run through BLAS."""
    from sweep.engine.fused_layers import SMALL_OUT
    y = digits.y_train * 2 + (digits.X_train[:, 20] > 0)
    yv = digits.y_val * 2 + (digits.X_val[:, 20] > 0)
    data = make_split(digits.X_train, y, digits.X_val, yv)
    assert data.n_classes == 20 > SMALL_OUT
    arch = Arch.for_data(64, 20, (12, 9), "tanh")
    W0 = _nets(arch, "xavier_normal", [1, 2])
    cfg = TrainConfig(OptimConfig("adam"), epochs=2, batch_size=64, l2=0.01, log_every=5)
    ref, got = _both(data, arch, cfg, W0, [0.01, 0.003], order_seeds=[5, 6])
    _compare(ref, got)


@pytest.mark.parametrize("act,batch_size", [("sigmoid", None), ("relu", 16), ("tanh", 25)])
def test_small_softmax_output_in_the_fused_passes(blobs3, act, batch_size):
    """Three classes (up to ``SMALL_OUT``): the logits are summed in the last hidden layer's pass."""
    arch = Arch.for_data(4, 3, (6, 5), act)
    W0 = _nets(arch, ["xavier_normal", "he_uniform"], [1, 2])
    cfg = TrainConfig(OptimConfig("rmsprop"), iterations=40, batch_size=batch_size, l2=0.02, clip_norm=0.8,
                      log_every=6)
    ref, got = _both(blobs3, arch, cfg, W0, [0.003, 0.01], order_seeds=[3, 4])
    _compare(ref, got)
