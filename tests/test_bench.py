"""sweep.bench: the formulas, the honesty of its baselines, its outputs. No timing is asserted here:
performance is reported by the benchmark, never tested."""
import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from sweep import bench
from sweep.bench import e2e, harness, peers, report, workloads
from sweep.bench.workloads import WORKLOADS, Workload
from sweep.engine import Arch, init_params, train
from sweep.seeding import stream


@pytest.fixture(scope="module")
def cancer_all():
    return workloads.load(WORKLOADS["ref3"])


def test_reference_workload_is_all_of_breast_cancer_standardised(cancer_all):
    X, y = cancer_all
    assert X.shape == (569, 30) and y.shape == (569,)
    assert set(np.unique(y)) == {0, 1}
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-12)


def test_study_workloads_use_the_default_training_split():
    X, y = workloads.load(WORKLOADS["digits"])
    assert X.shape == (1079, 64) and set(np.unique(y)) == set(range(10))
    X, y = workloads.load(WORKLOADS["deep"])
    assert X.shape == (341, 30)


def test_flop_and_element_counts_on_hand_examples():
    # d = 3 inputs, H = 4 hidden units, binary: per sample forward 2*4*4 + 2*5*1, gradient the same,
    # delta back to the hidden layer 2*4*1: 32 + 10 + 32 + 10 + 8 = 92; two samples = 184 per step
    assert workloads.flops_per_sample([3, 4, 1]) == 92
    assert workloads.n_params([3, 4, 1]) == 21
    assert workloads.elements_per_sample([3, 4, 1], "sigmoid") == 4 + 2
    w = Workload("t", "t", "x", "all", (4,), "sigmoid", 0.1, iterations=10)
    flops, elems = workloads.work(w, 2, 3, 2)
    assert flops == 10 * 184 and elems == 10 * (2 * 6 + 21)
    assert workloads.floor_seconds(flops, elems, 184.0, 33.0) == pytest.approx(20.0)
    # two hidden layers, softmax of 5 classes: layer 1 4*4*4; layer 2 4*5*2 + 2*4*2; layer 3 4*3*5 + 2*2*5
    assert workloads.flops_per_sample([3, 4, 2, 5]) == 64 + 56 + 80
    assert workloads.elements_per_sample([3, 4, 2, 5], "tanh") == 6 + 6
    assert workloads.elements_per_sample([3, 4, 2, 5], "relu") == 6
    # minibatches: 10 rows in batches of 4 -> 3 updates per epoch (4, 4, 2); 2 epochs
    mb = Workload("t", "t", "x", "train", (4,), "sigmoid", 0.1, epochs=2, batch_size=4)
    assert workloads.steps(mb, 10) == (6, [4, 4, 2])
    flops, elems = workloads.work(mb, 10, 3, 2)
    assert flops == 20 * 92 and elems == 20 * 6 + 6 * 21


def _engine(w, X, y, W0):
    arch = Arch.for_data(X.shape[1], int(y.max()) + 1, w.hidden, w.activation)
    return train(W0, workloads.as_split(X, y), arch, harness.engine_config(w, "float64"), lr=w.lr,
                 order_seeds=[0], chunk=1, engine="numpy")


@pytest.mark.parametrize("key", ["ref3", "ref32", "deep"])
def test_numpy_reference_agrees_with_the_engine_full_batch(key):
    """Same initial weights, 20 iterations: the plain numpy loop is the engine's computation."""
    w = replace(WORKLOADS[key], iterations=20)
    X, y = workloads.load(w)
    W0 = init_params(X.shape[1], w.hidden, 1, "xavier_normal", seeds=[7])
    res = _engine(w, X, y, W0)
    layers, losses, acc = peers.numpy_train(X, y, peers.engine_to_layers(W0), w)
    assert losses.shape == (21,)
    assert np.max(np.abs(res.objective[:, 0] - losses)) <= 1e-10
    for (W, b), Wl in zip(layers, res.params):
        np.testing.assert_allclose(W, Wl[0, :, 1:].T, atol=1e-10)
        np.testing.assert_allclose(b, Wl[0, :, 0], atol=1e-10)
    assert acc == pytest.approx(res.diagnostics["train_acc"][0])


def test_numpy_reference_agrees_with_the_engine_softmax_minibatches():
    """Given the engine's data order, the numpy loop's minibatch run is the engine's run."""
    w = replace(WORKLOADS["digits"], epochs=2)
    X, y = workloads.load(w)
    W0 = init_params(64, w.hidden, 10, "xavier_normal", seeds=[3])
    res = _engine(w, X, y, W0)
    rng = stream("order", 0, 0)
    layers, losses, acc = peers.numpy_train(X, y, peers.engine_to_layers(W0), w,
                                            [rng.permutation(len(y)) for _ in range(2)])
    for (W, b), Wl in zip(layers, res.params):
        np.testing.assert_allclose(W, Wl[0, :, 1:].T, atol=1e-10)
        np.testing.assert_allclose(b, Wl[0, :, 0], atol=1e-10)
    assert losses[-1] == pytest.approx(res.diagnostics["train_loss"][0], abs=1e-10)
    assert acc == pytest.approx(res.diagnostics["train_acc"][0])


@pytest.mark.parametrize("key,budget", [("ref3", 30), ("mini", 3)])
def test_sklearn_configuration_runs_every_epoch(key, budget):
    w = WORKLOADS[key]
    w = replace(w, iterations=budget) if w.iterations else replace(w, epochs=budget)
    X, y = workloads.load(w)
    clf = peers.sklearn_train(X, y, w)
    assert clf.n_iter_ == budget
    p = clf.get_params()
    assert (p["tol"], p["alpha"], p["early_stopping"], p["solver"]) == (0.0, 0.0, False, "adam")
    assert p["batch_size"] == (len(y) if w.batch_size is None else w.batch_size)
    assert p["shuffle"] == (w.batch_size is not None)
    assert p["n_iter_no_change"] > p["max_iter"] == budget


@pytest.mark.parametrize("key", ["ref3", "digits"])
def test_torch_peer_if_installed(key):
    pytest.importorskip("torch")
    w = WORKLOADS[key].scaled(0.02)
    X, y = workloads.load(w)
    W0 = init_params(X.shape[1], w.hidden, 1 if key == "ref3" else 10, "xavier_normal", seeds=[0])
    acc = peers.torch_train(X, y, peers.engine_to_layers(W0), w, "float64")
    assert 0.0 <= acc <= 1.0


def test_jax_peer_if_installed_does_the_same_full_batch_work():
    """JAX (vmap over 3 networks) from the engine's weights: the numpy reference's accuracies."""
    pytest.importorskip("jax")
    from sweep.bench.jaxpeer import JaxTrainer
    w = replace(WORKLOADS["ref3"], iterations=25)
    X, y = workloads.load(w)
    W0 = init_params(30, w.hidden, 1, "xavier_normal", seeds=range(3))
    accs = JaxTrainer(w, X, y, W0, "float64").run(W0)
    want = [peers.numpy_train(X, y, peers.engine_to_layers(W0, i), w)[2] for i in range(3)]
    np.testing.assert_allclose(accs, want, atol=1e-12)
    mb = WORKLOADS["mini"].scaled(0.05)
    Xm, ym = workloads.load(mb)
    W0m = init_params(30, mb.hidden, 1, "xavier_normal", seeds=range(2))
    assert JaxTrainer(mb, Xm, ym, W0m, "float32").run(W0m).shape == (2,)


def _case(impl, dtype, N, key, times, acc=0.9):
    c = harness.Case(impl, dtype, N, key, times=list(times), acc=acc)
    if impl in ("sweep", "jax"):
        c.accs = np.full(N, acc)
    return c


def test_table_writer_columns_and_ratios(tmp_path):
    cases = [_case("sklearn", "float64", 1, "ref3", [2.0, 2.2, 1.8]), _case("numpy", "float64", 1, "ref3", [1.0]),
             _case("sweep", "float64", 8, "ref3", [0.1, 0.2, 0.3]), _case("sweep", "float32", 8, "ref3", [0.05])]
    skipped = _case("sweep", "float64", 256, "ref3", [])
    skipped.skipped = "skipped: about 99 s per call"
    cases.append(skipped)
    floors = {("float64", "ref3"): 0.05, ("float32", "ref3"): 0.025}
    rows = report.table_rows(cases, floors, {"cpu_model": "test cpu", "cores": 2, "blas": []})
    path = tmp_path / "bench.csv"
    report.write_csv(path, rows)
    with open(path) as fh:
        reader = csv.DictReader(fh)
        got = list(reader)
        assert tuple(reader.fieldnames) == report.CSV_COLUMNS
    sweep8 = next(r for r in got if r["implementation"] == "sweep engine" and r["N"] == "8" and r["dtype"] == "float64")
    assert float(sweep8["seconds_per_run"]) == pytest.approx(0.2)         # the median
    assert float(sweep8["vs_sklearn"]) == pytest.approx(10.0)             # 2.0 / 0.2: > 1 = faster
    assert float(sweep8["vs_floor"]) == pytest.approx(4.0)                # 0.2 / 0.05
    assert next(r for r in got if r["N"] == "256")["note"].startswith("skipped")
    assert {r["dtype"] for r in got if r["implementation"] == "compute floor"} == {"float64", "float32"}
    assert all(r["cpu_model"] == "test cpu" for r in got)
    text = report.format_table(rows, ["ref3"])
    assert "scikit-learn MLPClassifier" in text and "compute floor" in text and "skipped" in text


def test_target_lines_report_met_and_missed():
    cases = [_case("sklearn", "float64", 1, "ref3", [1.0]), _case("sweep", "float64", 64, "ref3", [0.04]),
             _case("sweep", "float32", 64, "ref3", [0.025], acc=0.9),
             _case("jax", "float64", 64, "ref3", [0.05]), _case("jax", "float32", 64, "ref3", [0.02]),
             _case("sklearn", "float64", 1, "mini", [1.0]), _case("sweep", "float64", 8, "mini", [0.4])]
    floors = {("float64", "ref3"): 0.03, ("float32", "ref3"): 0.01, ("float64", "mini"): 0.1, ("float32", "mini"): 0.05}
    lines = report.target_lines(cases, floors, ["ref3", "mini"])
    assert lines[0].startswith("target >=20x sklearn on reference H=3") and "MET (25.0x" in lines[0]
    assert "MISSED by 140% (2.5x" in lines[1]                       # mini: 2.5x of 6x
    assert "MET (1.33x" in lines[2] and "MISSED by 150% (4.00x" in lines[3]
    assert "MISSED by 6% (1.60x" in lines[4]                         # float32 only 1.6x faster
    assert "NOT MEASURED" in lines[5]
    assert "MISSED" in lines[6] and "ref3 float64 1.25x" in lines[6] and "ref3 float32 0.80x" in lines[6]


def test_reference_spec_is_a_valid_960_run_study():
    from sweep import design
    from sweep.spec import parse_spec
    spec = parse_spec(e2e.reference_spec(dtype="float32"))
    assert design.n_configs(spec) * len(spec.seeds.tuples()) == 960
    assert spec.train.iterations == 1000 and spec.train.dtype == "float32"
    assert spec.data.dataset == "breast_cancer"


def test_the_sweep_summary_comes_from_sweep_run_json():
    spec = e2e.reference_spec(iterations=5, lrs=(0.01,), hidden=(3,), inits=("xavier_normal",), seeds=2)
    row = e2e.run_sweep(spec, 1)
    assert row["ok"], row.get("note")
    assert row["runs"] == 2 and row["engine_s"] > 0 and 0 <= row["outside_share"] < 1
    assert e2e.parse_summary('progress\n{"n_runs": 3, "engine_s": 1.5}\n') == {"n_runs": 3, "engine_s": 1.5}
    assert e2e.parse_summary("960 runs in x (2 trials trained now)") is None


def test_repeats_below_five_need_quick():
    with pytest.raises(SystemExit) as exc:
        bench.main(["--repeats", "2", "--skip-sweep"])
    assert exc.value.code == 2


def test_main_quick_writes_the_csv(tmp_path, capsys):
    out = tmp_path / "bench"
    assert bench.main(["--quick", "--skip-sweep", "--repeats", "1", "--workloads", "ref3,mini", "--scale", "0.02",
                       "--no-torch", "--no-jax", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "target >=20x sklearn on reference H=3" in printed and "x sklearn" in printed
    with open(out / "bench.csv") as fh:
        rows = list(csv.DictReader(fh))
    impls = {r["implementation"] for r in rows}
    assert {"scikit-learn MLPClassifier", "numpy, one at a time", "compute floor"} <= impls
    assert "sweep engine (fused wide)" in impls and "sweep engine (fused net)" in impls
    engine_rows = [r for r in rows if r["implementation"].startswith("sweep engine")]
    assert {(r["dtype"], r["N"], r["workload"]) for r in engine_rows} == \
        {(dt, N, k) for dt in ("float64", "float32") for N in ("1", "16") for k in ("ref3", "mini")}
    assert all(float(r["seconds_per_run"]) > 0 for r in rows)
    machine = json.loads((out / "machine.json").read_text())
    assert machine["cores"] >= 1 and "blas" in machine and machine["scale"] == 0.02
    assert (out / "report.txt").exists()
