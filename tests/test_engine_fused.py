"""The fused numba path against the numpy reference: same curves, objective, weights and diagnostics.

Tolerances (float64): curves and objective <= 1e-10, weights <= 1e-9, diagnostics <= 1e-10 (flags and
steps exactly). The two paths sum in different orders (BLAS vs numpy's pairwise sums, written-out
exp/log1p), so they agree to rounding, and the runs are kept short and non-chaotic enough that
rounding does not grow (RMSprop at a large learning rate, for one, amplifies a 1-ulp change of the
initial weights to 1e-1 within 100 steps, on the numpy path alone).
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("numba")

from sweep.engine import Arch, Legacy, OptimConfig, TrainConfig, init_params, train  # noqa: E402
from sweep.engine.train import resolve_engine  # noqa: E402
from engine_compare import _both, _compare, _max_abs  # noqa: E402

# Learning rates per optimizer: three networks each, from gentle to brisk (per-network rates).
LRS = {"sgd": [0.3, 1.0, 3.0], "momentum": [0.03, 0.1, 0.3], "adam": [0.003, 0.01, 0.03],
       "adamw": [0.003, 0.01, 0.03], "rmsprop": [0.0005, 0.001, 0.003]}


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("opt", ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"])
def test_fused_equals_numpy(cancer, opt, act):
    name = "momentum" if opt == "nesterov" else opt
    arch = Arch.for_data(30, 2, (7,), act)
    W0 = init_params(30, (7,), 1, ["xavier_normal", "he_uniform", "normal:0.3"], [3, 4, 5])
    cfg = TrainConfig(OptimConfig(name, nesterov=opt == "nesterov"), iterations=60, l2=0.05, clip_norm=0.3,
                      log_every=7)
    ref, got = _both(cancer, arch, cfg, W0, LRS[name])
    _compare(ref, got)
    # the networks really train and differ, and the clipping really bit at the start
    assert len(set(np.round(got.diagnostics["train_loss"], 8))) == 3
    assert (got.diagnostics["grad_norm_first"] > 0.3).any()


@pytest.mark.parametrize("hidden,N,dtype_lr", [(1, 1, 0.05), (3, 1, 0.02), (32, 4, 0.01), (64, 2, 0.005)])
def test_fused_equals_numpy_plain_adam(cancer, hidden, N, dtype_lr):
    """The default configuration (no l2, no clipping, 50 log-spaced points), N = 1 and N > 1."""
    arch = Arch.for_data(30, 2, (hidden,))
    W0 = init_params(30, (hidden,), 1, "xavier_normal", range(N))
    ref, got = _both(cancer, arch, TrainConfig(iterations=150), W0, dtype_lr)
    _compare(ref, got)
    assert got.diagnostics["train_acc"].min() > 0.9


def test_adamw_without_decay_and_no_validation_data(cancer):
    import types
    data = types.SimpleNamespace(**{**vars(cancer), "X_val": cancer.X_val[:0], "y_val": cancer.y_val[:0]})
    arch = Arch.for_data(30, 2, (5,), "tanh")
    W0 = init_params(30, (5,), 1, "he_normal", [1, 2])
    cfg = TrainConfig(OptimConfig("adamw", weight_decay=0.0), iterations=40, divergence_factor=None, log_points=9)
    ref, got = _both(data, arch, cfg, W0, [0.01, 0.02])
    _compare(ref, got)
    assert np.isnan(got.curves["val_loss"]).all() and np.isnan(got.diagnostics["val_acc"]).all()


@pytest.mark.parametrize("act,opt,lrs", [("relu", "sgd", [0.3, 30.0, 3.7]),
                                         ("sigmoid", "momentum", [0.1, 1e4, 0.3]),
                                         ("tanh", "adam", [0.01, 300.0, 0.03]),
                                         ("relu", "rmsprop", [0.001, 50.0, 0.003]),
                                         ("sigmoid", "adamw", [0.01, 1e3, 0.003])])
def test_diverging_networks_are_frozen_alike(cancer, act, opt, lrs):
    """Same diverged flags and steps; the diverged network is frozen, its neighbours train on."""
    arch = Arch.for_data(30, 2, (16,), act)
    W0 = init_params(30, (16,), 1, "he_normal", [1, 2, 3])
    cfg = TrainConfig(OptimConfig(opt), iterations=120, log_points=20)
    ref, got = _both(cancer, arch, cfg, W0, lrs)
    _compare(ref, got)
    d = got.diagnostics
    assert d["diverged"][1] and not d["diverged"][0]
    for k in np.flatnonzero(d["diverged"]):
        tail = got.objective[int(d["diverged_step"][k]):, k]    # frozen: the objective stays put
        assert _max_abs(np.full_like(tail, tail[0]), tail) <= 1e-14
    assert d["train_acc"][0] > 0.9


def test_every_network_diverged_stops_early(cancer):
    arch = Arch.for_data(30, 2, (8,), "relu")
    W0 = init_params(30, (8,), 1, "he_normal", [1, 2])
    cfg = TrainConfig(OptimConfig("sgd"), iterations=3000)
    ref, got = _both(cancer, arch, cfg, W0, [1e4, 3e4])
    _compare(ref, got)
    assert got.diagnostics["diverged"].all() and got.diagnostics["diverged_step"].max() < 100


def test_divergence_by_factor_on_a_finite_loss(cancer):
    """A loss that blows up past 100x its start but stays finite (stable softplus) is divergence too."""
    arch = Arch.for_data(30, 2, (4,), "relu")
    W0 = init_params(30, (4,), 1, "he_normal", [5, 6])
    cfg = TrainConfig(OptimConfig("sgd"), iterations=50, divergence_factor=2.0)
    ref, got = _both(cancer, arch, cfg, W0, [0.01, 20.0])
    _compare(ref, got)
    assert got.diagnostics["diverged"].tolist() == [False, True]
    assert np.isfinite(got.objective).all()


@pytest.mark.parametrize("act,opt", [("sigmoid", "adam"), ("relu", "sgd"), ("tanh", "rmsprop")])
def test_frozen_step_alike(cancer, act, opt):
    """Networks whose weights never move (lr 0, an Adam step far below the weights' last bit, a
    gradient clipped to nothing) are frozen from step 0 on both paths; a training one never is, a
    diverged one (its objective held constant) is not "frozen"."""
    arch = Arch.for_data(30, 2, (6,), act)
    W0 = init_params(30, (6,), 1, "he_normal", [1, 2, 3, 4])
    lrs = [0.0, 1e-30 if opt == "adam" else 0.0, LRS[opt][1], 1e4]
    cfg = TrainConfig(OptimConfig(opt), iterations=40, divergence_factor=2.0, log_points=10)
    ref, got = _both(cancer, arch, cfg, W0, lrs)
    _compare(ref, got)     # frozen_step exactly equal
    for r in (ref, got):
        d = r.diagnostics
        assert d["frozen_step"][:2].tolist() == [0.0, 0.0] and np.isnan(d["frozen_step"][2:]).all()
        assert not d["diverged"][2] and d["diverged"][3]
    clipped = TrainConfig(OptimConfig("sgd"), iterations=30, clip_norm=1e-300)
    ref, got = _both(cancer, arch, clipped, [w[:1] for w in W0], 1.0)
    _compare(ref, got)
    assert ref.diagnostics["frozen_step"][0] == got.diagnostics["frozen_step"][0] == 0


def test_float32_close_to_numpy_float32(cancer):
    arch = Arch.for_data(30, 2, (16,))
    W0 = init_params(30, (16,), 1, "xavier_normal", [0, 1, 2])
    cfg = TrainConfig(iterations=300, dtype="float32", l2=0.01)
    ref, got = _both(cancer, arch, cfg, W0, [0.003, 0.01, 0.03])
    assert got.params[0].dtype == np.float32
    assert _max_abs(ref.objective, got.objective) <= 1e-4
    assert _max_abs(ref.curves["val_loss"], got.curves["val_loss"]) <= 1e-3
    assert np.abs(ref.diagnostics["train_acc"] - got.diagnostics["train_acc"]).max() <= 0.005
    assert np.abs(ref.diagnostics["val_acc"] - got.diagnostics["val_acc"]).max() <= 0.005


@pytest.mark.parametrize("act,opt", [("sigmoid", "adamw"), ("tanh", "nesterov"), ("relu", "rmsprop")])
def test_padding_and_blocks_agree_with_numpy(cancer, act, opt):
    """The kernel pads the samples (here 397 -> 400) and the parameter rows with zeros and runs the
    products in blocks of at most 1e6 / (400 * 32) = 78 rows: 12 networks of 7 units take two
    blocks, one network of 100 units two pieces. Same results as numpy, padding leaks nowhere."""
    from conftest import make_split
    name = "momentum" if opt == "nesterov" else opt
    data = make_split(cancer.X_train[:397], cancer.y_train[:397], cancer.X_val, cancer.y_val)
    for hidden, N in ((7, 12), (100, 1)):
        arch = Arch.for_data(30, 2, (hidden,), act)
        W0 = init_params(30, (hidden,), 1, "xavier_normal", range(N))
        cfg = TrainConfig(OptimConfig(name, nesterov=opt == "nesterov", weight_decay=0.01), iterations=40,
                          l2=0.05, clip_norm=0.3, log_every=9)
        lrs = np.resize(LRS[name], N)
        ref, got = _both(data, arch, cfg, W0, lrs, chunk=N)
        _compare(ref, got)


@pytest.mark.parametrize("hidden", [5, 40])
def test_chunking_does_not_change_fused_results(cancer, hidden):
    """Each network's loop touches only its own rows; BLAS may sum a row's products in another
    order for another matrix height, hence a tolerance rather than bit identity."""
    arch = Arch.for_data(30, 2, (hidden,))
    W0 = init_params(30, (hidden,), 1, "xavier_normal", range(7))
    cfg = TrainConfig(iterations=80, clip_norm=0.5, l2=0.01)
    lrs = np.linspace(0.001, 0.05, 7)
    runs = [train(W0, cancer, arch, cfg, lr=lrs, chunk=c, engine="fused") for c in (7, 3, 1)]
    for other in runs[1:]:
        for a, b in zip(runs[0].params, other.params):
            assert np.abs(a - b).max() <= 1e-12
        assert _max_abs(runs[0].objective, other.objective) <= 1e-12
        for k in runs[0].diagnostics:
            np.testing.assert_allclose(runs[0].diagnostics[k], other.diagnostics[k], rtol=0, atol=1e-12)


_SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    sys.path.insert(0, "tests")
    from conftest import make_split
    from sweep.engine import Arch, OptimConfig, TrainConfig, init_params, train
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X[:400].mean(0)) / X[:400].std(0)
    d = make_split(X[:400], y[:400], X[400:], y[400:])
    h = hashlib.sha256()
    y3 = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)         # three classes
    d3 = make_split(X[:400], y3[:400], X[400:], y3[400:])
    cases = [(dt, c) for dt in ("float64", "float32") for c in ((d, (6,), None), (d, (6, 4), 50), (d3, (5,), 64))]
    for dtype, (data, hidden, batch_size) in cases:
        arch = Arch.for_data(30, data.n_classes, hidden, "tanh")
        W0 = init_params(30, hidden, arch.n_out, ["he_normal", "xavier_normal", "posted"], [4, 5, 6], dtype=dtype)
        cfg = TrainConfig(OptimConfig("adam"), iterations=50, batch_size=batch_size, l2=0.01, clip_norm=1.0,
                          dtype=dtype)
        r = train(W0, data, arch, cfg, lr=[0.01, 0.02, 0.03], order_seeds=[1, 2, 3], engine="fused")
        for a in r.params + [r.objective] + [r.curves[k] for k in sorted(r.curves)] + \\
                [r.diagnostics[k] for k in sorted(r.diagnostics)]:
            h.update(np.ascontiguousarray(a).tobytes())
    print(h.hexdigest())
""")


def test_bit_identical_in_one_process_and_across_processes():
    import contextlib
    import io
    digests = []
    for _ in range(2):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(_SCRIPT, {})
        digests.append(buf.getvalue().strip())
    other = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True)
    assert digests[0] == digests[1] == other.stdout.strip()
    assert len(digests[0]) == 64


def test_engine_choice(cancer, monkeypatch):
    from sweep.engine.fused import kernel
    arch = Arch.for_data(30, 2, (4,))
    cfg = TrainConfig(iterations=5)
    assert resolve_engine("auto", arch, cfg, 400) == "fused"
    assert resolve_engine("numpy", arch, cfg, 400) == "numpy"
    monkeypatch.setenv("SWEEP_ENGINE", "numpy")
    assert resolve_engine("auto", arch, cfg, 400) == "numpy"
    assert resolve_engine("fused", arch, cfg, 400) == "fused"     # an explicit choice wins
    monkeypatch.setenv("SWEEP_ENGINE", "auto")
    unsupported = [
        (arch, TrainConfig(iterations=5, legacy=Legacy(normalize_hidden=True)), "legacy"),
        (arch, TrainConfig(iterations=5, legacy=Legacy(clip_threshold=4.5)), "clip_threshold"),
    ]
    for a, c, why in unsupported:
        assert resolve_engine("auto", a, c, 400) == "numpy"
        with pytest.raises(ValueError, match=why):
            resolve_engine("fused", a, c, 400)
    with pytest.raises(ValueError, match="unknown engine"):
        resolve_engine("torch", arch, cfg, 400)
    # deeper networks, softmax and minibatches run fused too, on the per-network kernel
    for a, c in [(Arch.for_data(30, 2, (4, 3)), cfg), (Arch.for_data(30, 3, (4,)), cfg),
                 (arch, TrainConfig(iterations=5, batch_size=64))]:
        assert resolve_engine("auto", a, c, 400) == "fused" and kernel(a, c, 400) == "net"
    # a batch_size covering the whole training set is full batch; the posted init is no loop quirk
    assert kernel(arch, TrainConfig(iterations=5, batch_size=400), 400) == "wide"
    assert resolve_engine("auto", arch, TrainConfig(iterations=5, legacy=Legacy(posted_init=True)), 400) == "fused"


def test_auto_and_env_var_pick_the_expected_path(cancer, monkeypatch):
    arch = Arch.for_data(30, 2, (4,))
    W0 = init_params(30, (4,), 1, "xavier_normal", [0, 1])
    for cfg in (TrainConfig(iterations=30), TrainConfig(iterations=10, batch_size=50)):
        ref = train(W0, cancer, arch, cfg, lr=0.01, order_seeds=[1, 2], engine="numpy")
        fused = train(W0, cancer, arch, cfg, lr=0.01, order_seeds=[1, 2], engine="fused")
        auto = train(W0, cancer, arch, cfg, lr=0.01, order_seeds=[1, 2])
        assert all(np.array_equal(a, b) for a, b in zip(auto.params, fused.params))
        monkeypatch.setenv("SWEEP_ENGINE", "numpy")
        forced = train(W0, cancer, arch, cfg, lr=0.01, order_seeds=[1, 2])
        assert all(np.array_equal(a, b) for a, b in zip(forced.params, ref.params))
        monkeypatch.delenv("SWEEP_ENGINE")


def test_elementary_functions_match_numpy():
    """The written-out exp, expm1 and log1p (vectorisable) against numpy, float64 and float32."""
    from sweep.engine import vmath as F
    rng = np.random.default_rng(0)
    x = np.concatenate([-np.geomspace(1e-300, 760, 1500), -rng.uniform(0, 40, 500), [0.0, -0.0, -np.inf]])
    t = np.concatenate([np.geomspace(1e-300, 1, 1500), rng.uniform(0, 1, 500), [0.0, 0.41421356, 1.0]])
    for f, ref, arg, tol64, tol32 in [(F.vexp_neg, np.exp, x, 2, 3), (F.vexpm1_neg, np.expm1, x, 3, 4),
                                      (F.vlog1p_unit, np.log1p, t, 3, 4)]:
        run = F.njit(lambda a, f=f: np.array([f(v) for v in a]))
        for dtype, tol in ((np.float64, tol64), (np.float32, tol32)):
            a = arg.astype(dtype)
            got, want = run(a), ref(a)
            assert got.dtype == dtype
            tiny = np.abs(want) < np.finfo(dtype).tiny          # subnormal results are flushed to 0
            ulp = np.spacing(np.abs(want).astype(dtype))
            err = np.abs(got - want)[~tiny] / ulp[~tiny]
            assert err.max() <= tol, (f, dtype, err.max())
            assert np.all(np.abs(got[tiny]) <= np.finfo(dtype).tiny)
        nan = run(np.array([np.nan]))
        assert np.isnan(nan).all()
