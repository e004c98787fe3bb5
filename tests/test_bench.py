"""sweep.bench: the formulas, the honesty of its baselines, its outputs. No timing is asserted here:
performance is reported by the benchmark, never tested."""
import csv
import json

import numpy as np
import pytest

from sweep import bench
from sweep.engine import init_params


@pytest.fixture(scope="module")
def reference():
    X, y = bench.load_reference()
    return X, y, bench.reference_split(X, y)


def test_reference_workload_is_all_of_breast_cancer_standardised(reference):
    X, y, _ = reference
    assert X.shape == (569, 30) and y.shape == (569,)
    assert set(np.unique(y)) == {0, 1}
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-12)


def test_flop_and_element_counts_on_a_hand_example():
    # n = 2 samples, d = 3 inputs, H = 4 hidden units.
    # forward: hidden 2*2*(3+1)*4 = 64, output 2*2*(4+1) = 20
    # backward: first-layer gradient 64, output gradient 20, delta to the hidden layer 2*2*4 = 16
    assert bench.flops_per_iteration(2, 3, 4) == 64 + 20 + 64 + 20 + 16 == 184
    # parameters: (3+1)*4 + 4 + 1 = 21; elementwise: 1*2*4 sigmoids + 2*2 output + 1*21 Adam = 33
    assert bench.n_params(3, 4) == 21
    assert bench.elements_per_iteration(2, 3, 4) == 8 + 4 + 21 == 33
    # floor: 10 iterations at 184 FLOP/s and 33 elements/s -> 10 * (1 + 1) s
    assert bench.floor_seconds(2, 3, 4, 10, 184.0, 33.0) == pytest.approx(20.0)


@pytest.mark.parametrize("H", [3, 32])
def test_numpy_reference_agrees_with_the_engine(reference, H):
    """Same initial weights, 20 iterations: the plain numpy loop is the engine's computation."""
    X, y, split = reference
    W0 = init_params(30, [H], 1, "xavier_normal", seeds=[7])
    res = bench.engine_train(split, W0, H, "float64", iterations=20)
    W1, w2, losses, acc = bench.numpy_reference_train(X, y, *bench.engine_to_reference(W0), iterations=20)
    assert losses.shape == (21,)
    assert np.max(np.abs(res.objective[:, 0] - losses)) <= 1e-10
    np.testing.assert_allclose(W1, res.params[0][0].T, atol=1e-10)
    np.testing.assert_allclose(w2, res.params[1][0, 0], atol=1e-10)
    assert acc == pytest.approx(res.diagnostics["train_acc"][0])


def test_engine_train_batches_n_networks_in_one_call(reference):
    _, _, split = reference
    W0 = init_params(30, [3], 1, "xavier_normal", seeds=range(4))
    res = bench.engine_train(split, W0, 3, "float32", iterations=5)
    assert res.params[0].shape == (4, 3, 31) and res.params[0].dtype == np.float32
    assert res.diagnostics["train_acc"].shape == (4,)


def test_sklearn_configuration_runs_every_iteration(reference):
    X, y, _ = reference
    clf = bench.sklearn_train(X, y, 3, iterations=30)
    assert clf.n_iter_ == 30
    p = clf.get_params()
    assert (p["tol"], p["alpha"], p["shuffle"], p["batch_size"], p["activation"], p["solver"]) == \
        (0.0, 0.0, False, 569, "logistic", "adam")
    assert p["n_iter_no_change"] > p["max_iter"] == 30


def test_torch_reference_if_installed(reference):
    pytest.importorskip("torch")
    X, y, _ = reference
    W0 = init_params(30, [3], 1, "xavier_normal", seeds=[0])
    acc = bench.torch_train(X, y, *bench.engine_to_reference(W0), "float64", iterations=3)
    assert 0.0 <= acc <= 1.0


def _case(impl, dtype, N, H, times, acc=0.9):
    c = bench.Case(impl, dtype, N, H, times=list(times), acc=acc)
    if impl == "sweep":
        c.accs = np.full(N, acc)
    return c


def test_table_writer_columns_and_ratios(tmp_path):
    cases = [_case("sklearn", "float64", 1, 3, [2.0, 2.2, 1.8]), _case("numpy", "float64", 1, 3, [1.0]),
             _case("sweep", "float64", 8, 3, [0.1, 0.2, 0.3]), _case("sweep", "float32", 8, 3, [0.05])]
    skipped = _case("sweep", "float64", 256, 3, [])
    skipped.skipped = "skipped: about 99 s per call"
    cases.append(skipped)
    floors = {("float64", 3): 0.05, ("float32", 3): 0.025}
    rows = bench.table_rows(cases, floors, {"cpu_model": "test cpu", "cores": 2, "blas": []})
    path = tmp_path / "bench.csv"
    bench.write_csv(path, rows)
    with open(path) as fh:
        reader = csv.DictReader(fh)
        got = list(reader)
        assert tuple(reader.fieldnames) == bench.CSV_COLUMNS
    for col in ("implementation", "dtype", "N", "hidden", "seconds_per_run", "vs_sklearn", "vs_floor"):
        assert col in bench.CSV_COLUMNS
    sweep8 = next(r for r in got if r["implementation"] == "sweep engine" and r["N"] == "8" and r["dtype"] == "float64")
    assert float(sweep8["seconds_per_run"]) == pytest.approx(0.2)         # the median
    assert float(sweep8["vs_sklearn"]) == pytest.approx(10.0)             # 2.0 / 0.2: > 1 = faster
    assert float(sweep8["vs_floor"]) == pytest.approx(4.0)                # 0.2 / 0.05
    assert next(r for r in got if r["N"] == "256")["note"].startswith("skipped")
    assert {r["dtype"] for r in got if r["implementation"] == "compute floor"} == {"float64", "float32"}
    assert all(r["cpu_model"] == "test cpu" for r in got)
    text = bench.format_table(rows, [3])
    assert "scikit-learn MLPClassifier" in text and "compute floor" in text and "skipped" in text


def test_target_lines_report_met_and_missed():
    cases = [_case("sklearn", "float64", 1, 3, [1.0]), _case("sweep", "float64", 64, 3, [0.04]),
             _case("sklearn", "float64", 1, 32, [1.0]), _case("sweep", "float64", 64, 32, [0.5]),
             _case("sweep", "float32", 64, 32, [0.25], acc=0.901)]
    lines = bench.target_lines(cases, None)
    assert lines[0].startswith("target >=20x sklearn at H=3") and "MET (25.0x" in lines[0]
    assert "MISSED (2.0x" in lines[1]
    assert "NOT MEASURED" in lines[2]
    assert lines[3].startswith("target float32 >=1.7x float64") and "MISSED" in lines[3]   # H=256 missing


def test_reference_spec_is_a_valid_960_run_study():
    from sweep import design
    from sweep.spec import parse_spec
    spec = parse_spec(bench.reference_spec(dtype="float32"))
    assert design.n_configs(spec) * len(spec.seeds.tuples()) == 960
    assert spec.train.iterations == 1000 and spec.train.dtype == "float32"
    assert spec.data.dataset == "breast_cancer"


def test_parse_run_output():
    text = ("960 runs in /tmp/x/out/runs.csv (48 trials trained now, 85.2 s wall, 160.4 s in the engine "
            "summed over workers)\nnext: sweep show /tmp/x/out\n")
    assert bench.parse_run_output(text) == {"runs": 960, "trials": 48, "runner_wall_s": 85.2, "engine_s": 160.4}
    more = text.replace("workers)", "workers, 4.1 s in storage calls)")       # a field added later
    assert bench.parse_run_output(more) == bench.parse_run_output(text)
    assert bench.parse_run_output("nothing") is None


def test_repeats_below_five_need_quick(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--repeats", "2", "--skip-sweep"])
    assert exc.value.code == 2


def test_main_quick_writes_the_csv(tmp_path, capsys):
    out = tmp_path / "bench"
    assert bench.main(["--quick", "--skip-sweep", "--repeats", "1", "--sizes", "3", "--iterations", "20",
                       "--no-torch", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "target >=20x sklearn at H=3" in printed and "x sklearn" in printed
    with open(out / "bench.csv") as fh:
        rows = list(csv.DictReader(fh))
    impls = {r["implementation"] for r in rows}
    assert {"scikit-learn MLPClassifier", "numpy, one at a time", "compute floor"} <= impls
    engine_rows = [r for r in rows if r["implementation"].startswith("sweep engine")]   # + " (fused)" etc.
    assert {(r["dtype"], r["N"]) for r in engine_rows} == {(dt, N) for dt in ("float64", "float32") for N in "1 64".split()}
    assert all(r["hidden"] == "3" for r in rows)
    assert all(float(r["seconds_per_run"]) > 0 for r in rows)
    machine = json.loads((out / "machine.json").read_text())
    assert machine["cores"] >= 1 and "blas" in machine and machine["iterations"] == 20
    assert (out / "report.txt").exists()
