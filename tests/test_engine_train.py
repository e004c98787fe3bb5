"""The training loop: batched equals one at a time, determinism, divergence, diagnostics."""
import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sweep.engine import (Arch, Legacy, OptimConfig, TrainConfig, frozen_step, init_params, log_steps, stagnation_step,
                          train)


def _batch_vs_alone(data, arch, config, schemes, seeds, lrs, orders):
    W0 = init_params(arch.n_in, arch.hidden, arch.n_out, schemes, seeds)
    batch = train(W0, data, arch, config, lr=lrs, order_seeds=orders)
    worst = 0.0
    for i in range(len(seeds)):
        alone = train([w[i:i + 1] for w in W0], data, arch, config, lr=lrs[i], order_seeds=[orders[i]])
        for a, b in zip(alone.params, batch.params):
            worst = max(worst, np.abs(a[0] - b[i]).max())
        for key in batch.curves:
            worst = max(worst, np.nanmax(np.abs(alone.curves[key][:, 0] - batch.curves[key][:, i]), initial=0))
        worst = max(worst, np.abs(alone.objective[:, 0] - batch.objective[:, i]).max())
        for key, val in batch.diagnostics.items():
            assert np.array_equal(alone.diagnostics[key][0], val[i], equal_nan=True) or \
                abs(alone.diagnostics[key][0] - val[i]) <= 1e-12, key
    return batch, worst


@pytest.mark.parametrize("opt,batch_size", [("adam", None), ("adam", 64), ("momentum", 50), ("rmsprop", None),
                                            ("adamw", 32), ("sgd", 100)])
def test_batched_equals_one_at_a_time_binary(cancer, opt, batch_size):
    arch = Arch.for_data(30, 2, (8, 4), "tanh")
    cfg = TrainConfig(OptimConfig(opt), iterations=60, batch_size=batch_size, l2=0.01, clip_norm=5.0, log_points=12)
    batch, worst = _batch_vs_alone(cancer, arch, cfg, ["xavier_normal", "he_uniform", "normal:0.3", "posted"],
                                   [3, 4, 5, 6], [0.01, 0.003, 0.05, 0.02], [10, 11, 12, 13])
    assert worst <= 1e-12
    # and the networks really differ (different lr, init, order), so the test could fail
    assert len(set(np.round(batch.diagnostics["train_loss"], 10))) == 4


def test_batched_equals_one_at_a_time_multiclass(blobs3):
    arch = Arch.for_data(4, 3, (6,), "relu")
    cfg = TrainConfig(OptimConfig("adam"), epochs=5, batch_size=16, log_every=4)
    _, worst = _batch_vs_alone(blobs3, arch, cfg, "he_normal", [1, 2, 3], [0.05, 0.01, 0.02], [7, 8, 9])
    assert worst <= 1e-12


def test_order_seed_changes_only_minibatch_runs(cancer):
    arch = Arch.for_data(30, 2, (4,))
    W0 = init_params(30, (4,), 1, "xavier_normal", [0, 0])
    mini = train(W0, cancer, arch, TrainConfig(iterations=30, batch_size=32), lr=0.01, order_seeds=[1, 2])
    assert not np.array_equal(mini.params[0][0], mini.params[0][1])
    full = train(W0, cancer, arch, TrainConfig(iterations=30), lr=0.01, order_seeds=[1, 2])
    assert np.array_equal(full.params[0][0], full.params[0][1])


_SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    sys.path.insert(0, "tests")
    from conftest import make_split
    from sweep.engine import Arch, TrainConfig, init_params, train
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X[:400].mean(0)) / X[:400].std(0)
    d = make_split(X[:400], y[:400], X[400:], y[400:])
    arch = Arch.for_data(30, 2, (5,))
    W0 = init_params(30, (5,), 1, ["he_normal", "xavier_normal", "posted"], [4, 5, 6])
    r = train(W0, d, arch, TrainConfig(iterations=40, batch_size=50), lr=[0.01, 0.02, 0.03], order_seeds=[1, 2, 3])
    h = hashlib.sha256()
    for a in r.params + [r.objective] + [r.curves[k] for k in sorted(r.curves)]:
        h.update(np.ascontiguousarray(a).tobytes())
    print(h.hexdigest())
""")


def test_bit_identical_in_one_process_and_across_processes():
    namespace = {}
    digests = []
    for _ in range(2):
        import io
        import contextlib
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(_SCRIPT, namespace)
        digests.append(buf.getvalue().strip())
    other = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True)
    assert digests[0] == digests[1] == other.stdout.strip()
    assert len(digests[0]) == 64


def test_divergence_is_recorded_not_raised(cancer):
    arch = Arch.for_data(30, 2, (16,), "relu")
    W0 = init_params(30, (16,), 1, "he_normal", [1, 2])
    cfg = TrainConfig(OptimConfig("sgd"), iterations=200)
    r = train(W0, cancer, arch, cfg, lr=[1e3, 0.05])
    d = r.diagnostics
    assert d["diverged"].tolist() == [True, False]
    assert 0 <= d["diverged_step"][0] < 200 and np.isnan(d["diverged_step"][1])
    alone = train([w[1:] for w in W0], cancer, arch, cfg, lr=0.05)
    assert np.array_equal(alone.params[0][0], r.params[0][1])   # the healthy neighbour is untouched
    assert d["train_acc"][1] > 0.95


def test_all_diverged_stops_early(cancer):
    arch = Arch.for_data(30, 2, (8,), "relu")
    W0 = init_params(30, (8,), 1, "he_normal", [1])
    r = train(W0, cancer, arch, TrainConfig(OptimConfig("sgd"), iterations=5000), lr=1e4)
    assert r.diagnostics["diverged"][0] and r.diagnostics["diverged_step"][0] < 100


def test_untrained_network_diagnostics(cancer):
    arch = Arch.for_data(30, 2, (3,))
    W0 = init_params(30, (3,), 1, "xavier_normal", [0])
    r = train(W0, cancer, arch, TrainConfig(iterations=20), lr=0.0)
    d = r.diagnostics
    assert d["train_acc"][0] == d["init_train_acc"][0]
    assert d["rel_weight_change"][0] == 0.0
    assert d["stagnation_step"][0] == 0.0
    assert d["grad_norm_first"][0] == pytest.approx(d["grad_norm_last"][0])


def test_trained_network_diagnostics(cancer):
    arch = Arch.for_data(30, 2, (3,))
    W0 = init_params(30, (3,), 1, "xavier_normal", [0])
    r = train(W0, cancer, arch, TrainConfig(iterations=300), lr=0.01)
    d = r.diagnostics
    assert d["train_acc"][0] > 0.97 and d["val_acc"][0] > 0.9
    assert d["rel_weight_change"][0] > 0.1
    assert d["grad_norm_last"][0] < d["grad_norm_first"][0]
    assert np.isnan(d["stagnation_step"][0])      # still improving at the end
    assert not d["single_class"][0] and not d["diverged"][0]
    assert np.isnan(d["dead_frac"][0]) and 0 <= d["saturated_frac"][0] <= 1


def test_single_class_saturation_and_dead_units(cancer):
    arch = Arch.for_data(30, 2, (6,))
    zero = train(init_params(30, (6,), 1, "zeros", [0]), cancer, arch, TrainConfig(iterations=1), lr=0.0)
    assert zero.diagnostics["single_class"][0]
    big = train(init_params(30, (6,), 1, "normal:50", [0]), cancer, arch, TrainConfig(iterations=1), lr=0.0)
    assert big.diagnostics["saturated_frac"][0] == 1.0
    relu = Arch.for_data(30, 2, (6,), "relu")
    dead = train(init_params(30, (6,), 1, "he_normal", [0], bias_init="const:-100"), cancer, relu,
                 TrainConfig(iterations=1), lr=0.0)
    assert dead.diagnostics["dead_frac"][0] == 1.0 and np.isnan(dead.diagnostics["saturated_frac"][0])


def test_curve_steps_and_epoch_budget(cancer):
    assert log_steps(1000, points=5).tolist() == [0, 1, 10, 100, 1000]
    assert log_steps(10, every=4).tolist() == [0, 4, 8, 10]
    arch = Arch.for_data(30, 2, (3,))
    W0 = init_params(30, (3,), 1, "xavier_normal", [0])
    r = train(W0, cancer, arch, TrainConfig(epochs=3, batch_size=64, log_every=5), lr=0.01, order_seeds=[0])
    assert r.diagnostics["steps"][0] == 3 * 7      # 400 samples / 64 -> 7 minibatches per epoch
    assert r.steps[0] == 0 and r.steps[-1] == 21
    assert r.objective_steps.tolist() == [7, 14, 21]
    assert np.isfinite(r.curves["val_acc"]).all() and np.isfinite(r.curves["train_loss"]).all()


def test_stagnation_step_definition():
    flat_after_3 = np.array([5.0, 4.0, 3.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    improving = np.linspace(3, 1, 11)
    flat_at_end_only = np.array([9.0, 8, 7, 6, 5, 4, 3, 2, 1.5, 1.2, 1.2])   # tail of 2 points < 10%? no: 2 >= 2
    obj = np.stack([flat_after_3, improving, flat_at_end_only], axis=1)
    got = stagnation_step(obj, np.arange(11) * 10, 1e-6)
    assert got[0] == 30 and np.isnan(got[1]) and got[2] == 90


def test_frozen_step_definition():
    """Exactly equal floats from a step to the end; a change in the last bit is not frozen."""
    a, eps = 0.9731081811619041, np.finfo(float).eps
    frozen_from_2 = [5.0, 4.0, a, a, a, a]
    last_bit = [5.0, 4.0, a, np.nextafter(a, 1), a, a]      # back and forth in the last bit: frozen from 4
    never = [5.0, 4.0, 3.0, 2.0, 1.0, 0.5]
    creeping = [5.0, 4.0, 1.0, 1.0 + eps, 1.0 + 2 * eps, 1.0 + 3 * eps]   # stagnant by 1e-6, never frozen
    obj = np.array([frozen_from_2, last_bit, never, creeping, [a] * 6]).T
    got = frozen_step(obj, np.arange(6) * 10)
    assert got[0] == 20 and got[1] == 40 and np.isnan(got[2]) and np.isnan(got[3]) and got[4] == 0
    assert stagnation_step(obj, np.arange(6) * 10, 1e-6)[3] == 20
    assert np.isnan(frozen_step(np.array([[1.0, 2.0]]), np.array([0]))).all()   # one row: the last point alone


def test_frozen_step_never_for_non_finite_objectives():
    nan, inf = np.nan, np.inf
    obj = np.array([[1.0, 2.0, inf, inf, inf], [1.0, 2.0, nan, nan, nan], [1.0, inf, -inf, -inf, -inf]]).T
    assert np.isnan(frozen_step(obj, np.arange(5))).all()


def test_frozen_step_in_training(cancer):
    """lr 0 freezes from step 0, a training network never; a network diverged by the factor has a
    constant (frozen-in-place) objective but is not "frozen"."""
    arch = Arch.for_data(30, 2, (4,), "relu")
    W0 = init_params(30, (4,), 1, "he_normal", [5, 6, 7])
    cfg = TrainConfig(OptimConfig("sgd"), iterations=50, divergence_factor=2.0)
    r = train(W0, cancer, arch, cfg, lr=[0.0, 0.01, 20.0], engine="numpy")
    d = r.diagnostics
    assert d["diverged"].tolist() == [False, False, True] and np.isfinite(r.objective).all()
    k = int(d["diverged_step"][2])
    assert np.all(r.objective[k:, 2] == r.objective[-1, 2])
    assert frozen_step(r.objective, r.objective_steps)[2] == k     # would be "frozen" without the flag
    assert d["frozen_step"][0] == 0 and np.isnan(d["frozen_step"][1]) and np.isnan(d["frozen_step"][2])


def test_float32_close_to_float64(cancer):
    arch = Arch.for_data(30, 2, (16,))
    W0 = init_params(30, (16,), 1, "xavier_normal", [0, 1, 2])
    r64 = train(W0, cancer, arch, TrainConfig(iterations=300), lr=0.01)
    r32 = train(W0, cancer, arch, TrainConfig(iterations=300, dtype="float32"), lr=0.01)
    assert r32.params[0].dtype == np.float32
    assert np.abs(r32.diagnostics["train_acc"] - r64.diagnostics["train_acc"]).max() <= 0.005


def test_bad_shapes_and_config():
    with pytest.raises(ValueError, match="exactly one of iterations or epochs, not both"):
        TrainConfig(iterations=10, epochs=2)
    with pytest.raises(ValueError, match="dtype"):
        TrainConfig(dtype="float16")
    with pytest.raises(ValueError, match="clip_typo needs clip_threshold"):
        Legacy(clip_typo=True)
    with pytest.raises(ValueError, match="do not match"):
        import types
        d = types.SimpleNamespace(X_train=np.zeros((4, 2)), y_train=np.array([0, 1, 0, 1]))
        train(init_params(3, (2,), 1, "zeros", [0]), d, Arch(2, (2,), 1), TrainConfig(iterations=1), lr=0.1)


def test_chunking_does_not_change_results(cancer):
    arch = Arch.for_data(30, 2, (5,))
    W0 = init_params(30, (5,), 1, "xavier_normal", range(7))
    cfg = TrainConfig(iterations=30, batch_size=100)
    one = train(W0, cancer, arch, cfg, lr=np.linspace(0.001, 0.05, 7), order_seeds=range(7), chunk=7)
    three = train(W0, cancer, arch, cfg, lr=np.linspace(0.001, 0.05, 7), order_seeds=range(7), chunk=3)
    for a, b in zip(one.params, three.params):
        assert np.abs(a - b).max() <= 1e-12
    for k in one.diagnostics:
        np.testing.assert_allclose(one.diagnostics[k], three.diagnostics[k], rtol=0, atol=1e-12)
    np.testing.assert_allclose(one.curves["val_loss"], three.curves["val_loss"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("engine", ["numpy", "fused"])
def test_logging_fewer_steps_gives_the_same_curves_there(cancer, engine):
    """``log_at`` evaluates only the steps a study stores: their values, the objective, weights and
    diagnostics are those of a run logging every step."""
    arch = Arch.for_data(30, 2, (5, 3), "tanh")
    W0 = init_params(30, (5, 3), 1, "xavier_normal", [1, 2])
    every = TrainConfig(OptimConfig("adam"), epochs=3, batch_size=64, log_every=1)
    some = TrainConfig(OptimConfig("adam"), epochs=3, batch_size=64, log_at=(4, 9, 17))
    a = train(W0, cancer, arch, every, lr=0.01, order_seeds=[3, 4], engine=engine)
    b = train(W0, cancer, arch, some, lr=0.01, order_seeds=[3, 4], engine=engine)
    assert list(b.steps) == [0, 4, 9, 17, 21]
    rows = np.searchsorted(a.steps, b.steps)
    for key in a.curves:
        assert np.array_equal(a.curves[key][rows], b.curves[key])
    assert np.array_equal(a.objective, b.objective) and all(np.array_equal(p, q) for p, q in zip(a.params, b.params))
    for key in a.diagnostics:
        assert np.array_equal(a.diagnostics[key], b.diagnostics[key], equal_nan=True), key
