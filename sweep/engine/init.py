"""Initial weights for a batch of networks, one ``init`` stream per network.

Parameters use the posted code's layout, with a leading network axis: layer ``l`` is one array
``W[l]`` of shape ``(N, fan_out, fan_in + 1)`` whose column 0 is the bias and columns ``1:`` the
weights. Schemes (``fan_in``/``fan_out`` count weights only, never the bias):

=================  ============================================================
``xavier_normal``  N(0, 2 / (fan_in + fan_out))
``xavier_uniform`` U(+-sqrt(6 / (fan_in + fan_out)))
``he_normal``      N(0, 2 / fan_in)
``he_uniform``     U(+-sqrt(6 / fan_in))
``lecun_normal``   N(0, 1 / fan_in)
``normal:S``       N(0, S**2), e.g. ``normal:0.01``
``uniform:B``      U(+-B)
``zeros``          all zero (the symmetry trap: hidden units stay identical)
``posted``         the posted code's: bias column drawn with the weights, all from
                   N(0, 2 / (fan_in + 1 + fan_out))
=================  ============================================================

Biases are set by ``bias_init`` (``zeros``, ``normal:S``, ``uniform:B``, ``const:V``), except for
``posted``, which draws them with the weights. Draws are made in float64 and then cast, so a float32
network starts from the rounded float64 weights of the same seed.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..seeding import stream

INIT_SCHEMES: tuple[str, ...] = (
    "xavier_normal", "xavier_uniform", "he_normal", "he_uniform", "lecun_normal",
    "normal:<std>", "uniform:<bound>", "zeros", "posted",
)
BIAS_SCHEMES: tuple[str, ...] = ("zeros", "normal:<std>", "uniform:<bound>", "const:<value>")
_PLAIN = {"xavier_normal", "xavier_uniform", "he_normal", "he_uniform", "lecun_normal", "zeros", "posted"}
_PARAM = {"normal", "uniform"}


def parse_scheme(scheme: str, *, what: str = "init", allowed_params: set[str] = _PARAM,
                 plain: set[str] = _PLAIN) -> tuple[str, float | None]:
    """Split ``"normal:0.01"`` into ``("normal", 0.01)``; raise ValueError naming the allowed forms."""
    allowed = ", ".join(sorted(plain) + [f"{p}:<number>" for p in sorted(allowed_params)])
    if not isinstance(scheme, str):
        raise ValueError(f"{what} must be a string, got {scheme!r}; allowed: {allowed}")
    name, sep, arg = scheme.partition(":")
    if not sep:
        if name in plain:
            return name, None
        if name in allowed_params:
            raise ValueError(f"{what} {scheme!r} needs a number, e.g. '{name}:0.01'")
        raise ValueError(f"unknown {what} {scheme!r}; allowed: {allowed}")
    if name not in allowed_params:
        raise ValueError(f"unknown {what} {scheme!r}; allowed: {allowed}")
    try:
        value = float(arg)
    except ValueError:
        raise ValueError(f"{what} {scheme!r}: {arg!r} is not a number") from None
    if not np.isfinite(value) or (name != "const" and value <= 0):
        raise ValueError(f"{what} {scheme!r}: the number must be finite and > 0")
    return name, value


def _draw_layer(rng: np.random.Generator, scheme: str, bias_init: str,
                fan_in: int, fan_out: int) -> np.ndarray:
    """One layer's ``(fan_out, fan_in + 1)`` float64 array, bias in column 0."""
    name, arg = parse_scheme(scheme)
    W = np.zeros((fan_out, fan_in + 1))
    if name == "posted":
        return rng.standard_normal((fan_out, fan_in + 1)) * np.sqrt(2 / (fan_out + fan_in + 1))
    shape = (fan_out, fan_in)
    if name == "xavier_normal":
        W[:, 1:] = rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))
    elif name == "xavier_uniform":
        b = np.sqrt(6.0 / (fan_in + fan_out))
        W[:, 1:] = rng.uniform(-b, b, shape)
    elif name == "he_normal":
        W[:, 1:] = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif name == "he_uniform":
        b = np.sqrt(6.0 / fan_in)
        W[:, 1:] = rng.uniform(-b, b, shape)
    elif name == "lecun_normal":
        W[:, 1:] = rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)
    elif name == "normal":
        W[:, 1:] = rng.standard_normal(shape) * arg
    elif name == "uniform":
        W[:, 1:] = rng.uniform(-arg, arg, shape)
    # zeros: nothing to draw
    bname, barg = parse_scheme(bias_init, what="bias_init", allowed_params={"normal", "uniform", "const"},
                               plain={"zeros"})
    if bname == "normal":
        W[:, 0] = rng.standard_normal(fan_out) * barg
    elif bname == "uniform":
        W[:, 0] = rng.uniform(-barg, barg, fan_out)
    elif bname == "const":
        W[:, 0] = barg
    return W


def layer_sizes(n_in: int, hidden: Sequence[int], n_out: int) -> list[tuple[int, int]]:
    """``[(fan_in, fan_out), ...]`` for every layer, input to output."""
    sizes = [n_in, *hidden, n_out]
    return list(zip(sizes[:-1], sizes[1:]))


def init_params(n_in: int, hidden: Sequence[int], n_out: int, schemes: str | Sequence[str],
                seeds: Sequence[int], *, root: int = 0, bias_init: str = "zeros",
                dtype: str | np.dtype = "float64") -> list[np.ndarray]:
    """Initial parameters of ``N = len(seeds)`` networks.

    ``schemes`` is one scheme for all networks or one per network; network ``i`` draws every layer,
    input to output, from ``stream("init", seeds[i], root)``, so its weights depend on its own seed
    and scheme only (not on N or on its neighbours). Returns ``[W_l]`` with
    ``W_l.shape == (N, fan_out, fan_in + 1)``.
    """
    seeds = list(seeds)
    if isinstance(schemes, str):
        schemes = [schemes] * len(seeds)
    if len(schemes) != len(seeds):
        raise ValueError(f"got {len(schemes)} init schemes for {len(seeds)} seeds")
    sizes = layer_sizes(n_in, hidden, n_out)
    out = [np.empty((len(seeds), fo, fi + 1), dtype=dtype) for fi, fo in sizes]
    for i, (seed, scheme) in enumerate(zip(seeds, schemes)):
        rng = stream("init", seed, root)
        for W, (fi, fo) in zip(out, sizes):
            W[i] = _draw_layer(rng, scheme, bias_init, fi, fo)
    return out
