"""Legacy mode against a straightforward port of the posted code (tests/posted_port.py)."""
import numpy as np
import pytest

from posted_port import Train, posted_init
from sweep.data import load_dataset, split_dataset
from sweep.engine import Arch, Legacy, TrainConfig, add_ones_row, init_params, train
from sweep.seeding import stream

DATASETS = ["breast_cancer", "moons", "xor"]
SEEDS = [0, 1, 2, 3, 4]


def _split(name):
    return split_dataset(load_dataset(name, n_samples=300, noise=0.2), val_size=0.2, test_size=0.2, seed=3)


def _engine(split, legacy=None, seeds=SEEDS, iterations=50, lr=0.001, l2=0.0, hidden=3):
    arch = Arch.for_data(split.X_train.shape[1], 2, (hidden,), "sigmoid")
    legacy = Legacy.posted() if legacy is None else legacy
    W0 = init_params(arch.n_in, arch.hidden, 1, "posted" if legacy.posted_init else "xavier_normal", seeds)
    return train(W0, split, arch, TrainConfig(iterations=iterations, l2=l2, legacy=legacy), lr=lr)


@pytest.mark.parametrize("name", DATASETS)
def test_legacy_matches_posted_code_bit_for_bit(name):
    split = _split(name)
    Xb = add_ones_row(split.X_train)
    batch = _engine(split)                      # five seeds trained together
    for i, seed in enumerate(SEEDS):
        w1, w2 = posted_init(stream("init", seed), split.X_train.shape[1])
        (f1, f2), costs = Train(Xb, split.y_train, w1, w2)
        alone = _engine(split, seeds=[seed])    # and each alone
        for r, k in ((batch, i), (alone, 0)):
            assert np.array_equal(r.params[0][k], f1) and np.array_equal(r.params[1][k], f2)
            # the cost is computed stably here and with np.log(h) in the posted code: equal to rounding
            assert np.abs(r.objective[:50, k] - costs).max() <= 1e-12


def test_posted_symptom_weights_freeze_and_accuracy_stays_at_its_start():
    """What the asker saw, from the engine: the cost stops changing within a few iterations and the
    trained accuracy is (nearly always) the untrained one."""
    r = _engine(_split("breast_cancer"), seeds=list(range(20)))
    d = r.diagnostics
    assert np.all(d["stagnation_step"] <= 15)
    assert np.mean(d["train_acc"] == d["init_train_acc"]) >= 0.8
    assert np.all(d["rel_weight_change"] < 1e-2)


@pytest.mark.parametrize("switch", ["compounding_bias_correction", "update_times_grad", "normalize_hidden",
                                    "posted_init"])
def test_each_active_switch_changes_the_training(switch):
    split = _split("breast_cancer")
    on = _engine(split)
    off = _engine(split, Legacy.posted(**{switch: False}))
    for k in range(len(SEEDS)):
        assert not np.array_equal(on.params[0][k], off.params[0][k])
    assert np.abs(on.objective[-1] - off.objective[-1]).max() > 1e-6


def test_clip_typo_is_inert_as_posted_and_live_below_the_gradient_norm():
    """Quirk 4. As posted it never fires: the last layer's gradient is mean_i (h_i - y_i) a_i with
    |h - y| < 1 and a in [0, 1]^(H+1) (the bias row is 1), so its norm is below sqrt(H + 1) = 2 < 4.5,
    and the first layer's stays far below 4.5 on standardised inputs. With a threshold under the
    observed norms the typo (dw1 rescaled by |dw2|) changes the training."""
    split = _split("breast_cancer")
    on = _engine(split)
    off = _engine(split, Legacy.posted(clip_typo=False))
    assert np.all(on.diagnostics["grad_norm_first"] < 2.0)
    assert np.array_equal(on.params[0], off.params[0]) and np.array_equal(on.params[1], off.params[1])
    low_on = _engine(split, Legacy(**{s: True for s in Legacy.SWITCHES}, clip_threshold=1e-3))
    low_off = _engine(split, Legacy(**{s: True for s in Legacy.SWITCHES if s != "clip_typo"},
                                    clip_threshold=1e-3))
    assert not np.array_equal(low_on.params[0], low_off.params[0])
    assert not np.array_equal(low_on.params[1], low_off.params[1])   # typo: the last layer is never clipped


def test_clip_typo_matches_the_port_when_it_fires():
    split = _split("moons")
    Xb = add_ones_row(split.X_train)
    r = _engine(split, Legacy(**{s: True for s in Legacy.SWITCHES}, clip_threshold=1e-3), seeds=[0, 1])
    for k, seed in enumerate([0, 1]):
        w1, w2 = posted_init(stream("init", seed), 2)
        (f1, f2), _ = Train(Xb, split.y_train, w1, w2, thr=1e-3)
        assert np.array_equal(r.params[0][k], f1) and np.array_equal(r.params[1][k], f2)


def test_sum_wtw_regulariser_changes_only_the_cost():
    """Quirk 5. Inert as posted (lambda = 0). With lambda > 0 it changes the reported cost, which the
    stagnation diagnostic reads, but not the weights: the gradient uses lambda * W either way."""
    split = _split("breast_cancer")
    assert np.array_equal(_engine(split).objective, _engine(split, Legacy.posted(sum_wtw_regularizer=False)).objective)
    on = _engine(split, l2=5.0)
    off = _engine(split, Legacy.posted(sum_wtw_regularizer=False), l2=5.0)
    assert np.array_equal(on.params[0], off.params[0])
    assert np.abs(on.objective - off.objective).max() > 1e-4
    # and with lambda > 0 the engine still matches the port (whose cost has the quirk)
    w1, w2 = posted_init(stream("init", 0), 30)
    (f1, _), costs = Train(add_ones_row(split.X_train), split.y_train, w1, w2, lmbda=5.0)
    assert np.array_equal(on.params[0][0], f1)
    assert np.abs(on.objective[:50, 0] - costs).max() <= 1e-12


def test_all_switches_off_is_a_correct_network():
    split = _split("breast_cancer")
    r = _engine(split, Legacy(), iterations=500, lr=0.01)
    assert np.all(r.diagnostics["train_acc"] > 0.95)
