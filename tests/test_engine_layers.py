"""Forward/backward of the batched MLP: gradients against central finite differences."""
import itertools

import numpy as np
import pytest

from sweep.engine import Arch, add_ones_row, init_params, loss_and_grads, output_loss
from sweep.engine.layers import output_delta

INITS = ["xavier_normal", "xavier_uniform", "he_normal", "he_uniform", "lecun_normal",
         "normal:0.5", "uniform:0.7", "posted"]


def _fd_check(arch, scheme, n_classes, l2, seed, normalize=False):
    """Max over layers of ||analytic - numeric||_inf / ||analytic||_inf, for 2 networks at once."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((9, arch.n_in))
    y = np.arange(9) % n_classes
    XT = add_ones_row(X).T
    W = init_params(arch.n_in, arch.hidden, arch.n_out, scheme, [seed, seed + 100], bias_init="normal:0.3")
    loss, grads, _ = loss_and_grads(W, XT, y, arch.activation, l2=l2, normalize_hidden=normalize)
    h = 1e-5
    worst = 0.0
    for Wl, gl in zip(W, grads):
        num = np.zeros_like(gl)
        for idx in np.ndindex(Wl.shape[1:]):
            orig = Wl[(slice(None),) + idx].copy()
            Wl[(slice(None),) + idx] = orig + h
            lp = loss_and_grads(W, XT, y, arch.activation, l2=l2, normalize_hidden=normalize)[0]
            Wl[(slice(None),) + idx] = orig - h
            lm = loss_and_grads(W, XT, y, arch.activation, l2=l2, normalize_hidden=normalize)[0]
            Wl[(slice(None),) + idx] = orig
            num[(slice(None),) + idx] = (lp - lm) / (2 * h)
        for n in range(gl.shape[0]):
            worst = max(worst, np.abs(gl[n] - num[n]).max() / np.abs(gl[n]).max())
    return worst


@pytest.mark.parametrize("activation,n_classes,hidden", list(itertools.product(
    ["sigmoid", "tanh", "relu"], [2, 3], [(5,), (4, 3), (3, 4, 3)])))
def test_gradients_match_finite_differences(activation, n_classes, hidden):
    arch = Arch.for_data(4, n_classes, hidden, activation)
    for k, scheme in enumerate(INITS):
        err = _fd_check(arch, scheme, n_classes, l2=0.3, seed=k)
        assert err < 1e-6, (scheme, err)


def test_legacy_normalisation_gradient_is_wrong_on_purpose():
    """Quirk 3: the posted backprop ignores the normalisation, so its 'gradient' is not the gradient."""
    arch = Arch.for_data(4, 2, (3,), "sigmoid")
    assert _fd_check(arch, "posted", 2, l2=0.0, seed=1, normalize=True) > 1e-2


def test_loss_is_stable_for_huge_logits():
    logits = np.array([[[1e4, -1e4, 0.0, 800.0]]])
    y = np.array([1, 0, 1, 0])
    loss = output_loss(logits, y)
    # only the last sample is wrong by a margin of 800; the zero logit costs log 2
    assert loss[0] == pytest.approx((np.log(2) + 800.0) / 4)
    assert np.isfinite(output_delta(logits, y)).all()
    logits3 = np.array([[[1e4, 0.0], [-1e4, 0.0], [0.0, 0.0]]])  # 3 classes, 2 samples
    loss3 = output_loss(logits3, np.array([0, 2]))
    assert loss3[0] == pytest.approx(np.log(3) / 2)


def test_binary_and_softmax_agree_for_two_classes():
    """A 2-unit softmax with logits (0, z) is a sigmoid with logit z: same loss."""
    z = np.array([[[-3.0, 0.5, 2.0, 40.0]]])
    y = np.array([0, 1, 1, 0])
    soft = np.concatenate([np.zeros_like(z), z], axis=1)
    assert output_loss(z, y)[0] == pytest.approx(output_loss(soft, y)[0], rel=1e-12)


def test_one_network_equals_its_slice_of_a_batch():
    arch = Arch.for_data(4, 3, (5, 4), "tanh")
    W = init_params(4, arch.hidden, arch.n_out, ["he_normal", "xavier_uniform", "normal:0.1"], [1, 2, 3])
    X = np.random.default_rng(0).standard_normal((11, 4))
    y = np.arange(11) % 3
    loss, grads, _ = loss_and_grads(W, add_ones_row(X).T, y, "tanh", l2=0.1)
    for i in range(3):
        l1, g1, _ = loss_and_grads([w[i:i + 1] for w in W], add_ones_row(X).T, y, "tanh", l2=0.1)
        assert abs(l1[0] - loss[i]) <= 1e-14
        for a, b in zip(g1, grads):
            assert np.abs(a[0] - b[i]).max() <= 1e-14
