"""Optimizer steps against values worked out by hand."""
import math

import numpy as np
import pytest

from sweep.engine import OptimConfig, Optimizer


def _run(cfg, grads, w0=0.5, lr=0.1):
    w = [np.full((1, 1, 2), w0)]      # column 0 is a bias, column 1 a weight
    opt = Optimizer(cfg, w, np.array([lr]))
    out = []
    for g in grads:
        opt.step(w, [np.full((1, 1, 2), g)])
        out.append(w[0][0, 0, 1])
    return out


def test_adam_first_three_steps_by_hand():
    # lr 0.1, b1 .9, b2 .999, eps 1e-8, w0 0.5, gradients 0.2, -0.1, 0.4
    # t=1: m=.02 v=.00004 -> mhat=.2 vhat=.04 -> step .1*.2/(.2+1e-8)
    w1 = 0.5 - 0.1 * 0.2 / (0.2 + 1e-8)
    # t=2: m=.9*.02+.1*(-.1)=.008; v=.999*.00004+.001*.01=.00004996
    w2 = w1 - 0.1 * (0.008 / (1 - 0.81)) / (math.sqrt(0.00004996 / (1 - 0.998001)) + 1e-8)
    # t=3: m=.9*.008+.1*.4=.0472; v=.999*.00004996+.001*.16=.00020991004
    w3 = w2 - 0.1 * (0.0472 / (1 - 0.729)) / (math.sqrt(0.00020991004 / (1 - 0.997002999)) + 1e-8)
    got = _run(OptimConfig("adam"), [0.2, -0.1, 0.4])
    assert got[0] == pytest.approx(0.40000000499999975, abs=1e-15)
    assert got == pytest.approx([w1, w2, w3], abs=1e-14)
    # rounded by hand: step 2 = .1 * .042105 / .158090 = .026634; step 3 = .1 * .174170 / .264651 = .065811
    assert got == pytest.approx([0.400000, 0.373366, 0.307555], abs=2e-6)


def test_sgd_momentum_nesterov_rmsprop_adamw():
    assert _run(OptimConfig("sgd"), [0.2, -0.1]) == pytest.approx([0.48, 0.49])
    # v1=.2 w=.48; v2=.9*.2-.1=.08 w=.472
    assert _run(OptimConfig("momentum"), [0.2, -0.1]) == pytest.approx([0.48, 0.472])
    # nesterov: w -= lr (g + mu v): v1=.2 -> .5-.1*(.2+.18)=.462; v2=.08 -> .462-.1*(-.1+.072)=.4648
    assert _run(OptimConfig("momentum", nesterov=True), [0.2, -0.1]) == pytest.approx([0.462, 0.4648])
    # rmsprop: s=.1*.04=.004 -> .5-.1*.2/(sqrt(.004)+1e-8)
    assert _run(OptimConfig("rmsprop"), [0.2])[0] == pytest.approx(0.5 - 0.02 / (math.sqrt(0.004) + 1e-8))
    # adamw: decay lr*wd*w = .1*.01*.5 on the weight, none on the bias
    w = [np.full((1, 1, 2), 0.5)]
    Optimizer(OptimConfig("adamw", weight_decay=0.01), w, np.array([0.1])).step(w, [np.full((1, 1, 2), 0.2)])
    assert w[0][0, 0, 1] == pytest.approx(0.5 - 0.0005 - 0.1 * 0.2 / (0.2 + 1e-8))
    assert w[0][0, 0, 0] == pytest.approx(0.5 - 0.1 * 0.2 / (0.2 + 1e-8))


def test_legacy_adam_quirks_by_hand():
    # quirk 1: i=0 no correction: m=.02 v=.00004 -> step .1*.02/(sqrt(.00004)+1e-8)
    w1 = 0.5 - 0.1 * 0.02 / (math.sqrt(0.00004) + 1e-8)
    # i=1: m=(.9*.02+.1*.2)/(1-.9)=.38, v=(.999*.00004+.001*.04)/(1-.999)=.07996
    w2 = w1 - 0.1 * 0.38 / (math.sqrt(0.07996) + 1e-8)
    got = _run(OptimConfig("adam", compounding_bias_correction=True), [0.2, 0.2])
    assert got == pytest.approx([w1, w2], abs=1e-14)
    # quirk 2: the step multiplied by g once more
    got2 = _run(OptimConfig("adam", update_times_grad=True), [0.2])
    assert got2[0] == pytest.approx(0.5 - 0.1 * 0.2 / (0.2 + 1e-8) * 0.2, abs=1e-15)


def test_per_network_learning_rates_and_frozen():
    w = [np.full((3, 1, 2), 1.0)]
    opt = Optimizer(OptimConfig("sgd"), w, np.array([0.1, 0.2, 0.3]))
    opt.step(w, [np.full((3, 1, 2), 1.0)], frozen=np.array([False, True, False]))
    assert w[0][:, 0, 1].tolist() == pytest.approx([0.9, 1.0, 0.7])


@pytest.mark.parametrize("kw,match", [
    ({"name": "lbfgs"}, "allowed: sgd, momentum, adam, adamw, rmsprop"),
    ({"name": "sgd", "update_times_grad": True}, "need optimizer 'adam'"),
    ({"beta1": 1.0}, "beta1"),
])
def test_bad_optimizer_config(kw, match):
    with pytest.raises(ValueError, match=match):
        OptimConfig(**kw)
