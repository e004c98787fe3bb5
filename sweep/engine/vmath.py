"""Elementary functions for the fused kernels, written so that numba's loops vectorise.

This numba build links no vector maths library, so ``math.exp`` stays a scalar libm call (~4 ns per
element against ~1 ns for the polynomial below) and stops the loop around it from vectorising. The
functions here cover only the arguments the kernels need and are within 1-3 ulp of numpy's:

* ``vexp_neg(x)``, x <= 0 (sigmoid and softplus use exp(-|z|), softmax exp(z - max z));
* ``vexpm1_neg(y)``, y <= 0 (tanh uses expm1(-2|x|));
* ``vlog1p_unit(t)``, 0 <= t <= 1 (softplus' log1p(exp(-|u|)));
* ``vlog_ge1(s)``, s >= 1 (softmax' log of the sum of exponentials);

each dispatching on float64 / float32 (numba picks the body from the argument's type). NaN
propagates. ``wide_vectors()`` lets the calling function use 512-bit vectors where the CPU has them.

Imports numba: import this module only where numba is available (``fused.HAVE_NUMBA``).
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

_JIT = dict(cache=True, error_model="numpy", nogil=True)
# Reductions and row passes may reassociate and fuse (vectorised sums); the elementary
# functions below may fuse only (their rounding tricks must survive).
_FAST = {"reassoc", "contract"}
_CONTRACT = {"contract"}


# ------------------------------------------------------------------------------------------
# Bit casts (no-ops in the generated code, so loops using them still vectorise).
# ------------------------------------------------------------------------------------------
@intrinsic
def _f64_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def _f32_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@intrinsic
def wide_vectors(typingctx):
    """Let the vectoriser use 512-bit registers in the calling function: LLVM's tuning for these
    Intel cores prefers 256 bits, which leaves half of AVX-512 unused (measured: the sigmoid row
    loop 14% faster). A hint only: without AVX-512 it changes nothing."""
    def codegen(context, builder, sig, args):
        for attr in ('"prefer-vector-width"="512"', '"min-legal-vector-width"="512"'):
            set.add(builder.function.attributes, attr)   # string attributes: llvmlite has no API
        return context.get_dummy_value()
    return types.none(), codegen


# ------------------------------------------------------------------------------------------
# exp(x) for x <= 0, expm1(y) for y <= 0, log1p(t) for 0 <= t <= 1: the only arguments the
# kernel needs (sigmoid and softplus use exp(-|z|); tanh uses expm1(-2|x|)). NaN propagates.
# ------------------------------------------------------------------------------------------
_F = np.float32
_MAGIC64 = 6755399441055744.0 + 1023.0        # 1.5 * 2**52 + bias: round to integer, keep k + 1023
_MAGIC32 = _F(12582912.0 + 127.0)              # 1.5 * 2**23 + bias


@njit(fastmath=_CONTRACT, **_JIT)
def _exp_neg64(x):
    j = x * 1.4426950408889634 + _MAGIC64
    k = j - _MAGIC64
    r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10
    # degree 11, Chebyshev-interpolated on [-ln2/2, ln2/2] (max rel. error 1.5e-16):
    # 1 + (r + r^2 q(r)) with q (degree 9) in Estrin's scheme, not Horner's: a shorter
    # dependency chain lets the core overlap more elements (measured: the output pass 7%, the
    # sigmoid pass 3% faster).
    r2 = r * r
    r4 = r2 * r2
    q = ((0.5000000000000019 + 0.16666666666666724 * r)
         + (0.041666666666485615 + 0.008333333333303142 * r) * r2) \
        + ((0.001388888895280273 + 0.00019841269916290807 * r)
           + (2.4801485082759603e-05 + 2.755722220228783e-06 * r) * r2) * r4 \
        + (2.763275636566797e-07 + 2.511499048200889e-08 * r) * (r4 * r4)
    p = 1.0 + (r + r2 * q)
    y = p * _bits_f64(_f64_bits(j) << 52)
    return 0.0 if x < -708.3964185322641 else y


@njit(fastmath=_CONTRACT, **_JIT)
def _exp_neg32(x):
    j = x * _F(1.44269502) + _MAGIC32
    k = j - _MAGIC32
    r = (x - k * _F(0.693359375)) - k * _F(-2.12194440e-4)
    p = _F(0.0013941108481958508)        # degree 6, Chebyshev-interpolated (max rel. error 9e-8)
    p = p * r + _F(0.00837512593716383)
    p = p * r + _F(0.04166635125875473)
    p = p * r + _F(0.16666415333747864)
    p = p * r + _F(0.5)
    p = p * r + _F(1.0)
    p = p * r + _F(1.0)
    y = p * _bits_f32(_f32_bits(j) << 23)
    return _F(0.0) if x < _F(-87.33654) else y


@njit(fastmath=_CONTRACT, **_JIT)
def _expm1_neg64(y):
    q = 1.0 / 87178291200.0
    q = q * y + 1.0 / 6227020800.0
    q = q * y + 1.0 / 479001600.0
    q = q * y + 1.0 / 39916800.0
    q = q * y + 1.0 / 3628800.0
    q = q * y + 1.0 / 362880.0
    q = q * y + 1.0 / 40320.0
    q = q * y + 1.0 / 5040.0
    q = q * y + 1.0 / 720.0
    q = q * y + 1.0 / 120.0
    q = q * y + 1.0 / 24.0
    q = q * y + 1.0 / 6.0
    q = q * y + 0.5
    q = q * y + 1.0
    small = y * q
    big = _exp_neg64(y) - 1.0
    return small if y > -0.34657359027997264 else big


@njit(fastmath=_CONTRACT, **_JIT)
def _expm1_neg32(y):
    q = _F(1.0 / 5040.0)
    q = q * y + _F(1.0 / 720.0)
    q = q * y + _F(1.0 / 120.0)
    q = q * y + _F(1.0 / 24.0)
    q = q * y + _F(1.0 / 6.0)
    q = q * y + _F(0.5)
    q = q * y + _F(1.0)
    small = y * q
    big = _exp_neg32(y) - _F(1.0)
    return small if y > _F(-0.34657359) else big


@njit(fastmath=_CONTRACT, **_JIT)
def _log1p_unit64(t):
    big = t > 0.41421356237309503
    u = (t - 1.0) * 0.5 if big else t          # log1p(t) = ln 2 + log1p((t - 1) / 2)
    w = u / (2.0 + u)                           # log1p(u) = 2 atanh(w), |w| <= 0.1716
    w2 = w * w if abs(w) > 1e-9 else 0.0        # (no subnormal squares: they are slow)
    w4 = w2 * w2                                # sum_k w2^k / (2k + 3), Estrin's scheme
    w8 = w4 * w4
    p = ((1.0 / 3.0 + (1.0 / 5.0) * w2) + (1.0 / 7.0 + (1.0 / 9.0) * w2) * w4) \
        + ((1.0 / 11.0 + (1.0 / 13.0) * w2) + (1.0 / 15.0 + (1.0 / 17.0) * w2) * w4) * w8 \
        + ((1.0 / 19.0 + (1.0 / 21.0) * w2) + (1.0 / 23.0) * w4) * (w8 * w8)
    r = 2.0 * w + (2.0 * w) * (w2 * p)
    return r + 0.6931471805599453 if big else r


@njit(fastmath=_CONTRACT, **_JIT)
def _log1p_unit32(t):
    big = t > _F(0.41421356)
    u = (t - _F(1.0)) * _F(0.5) if big else t
    w = u / (_F(2.0) + u)
    w2 = w * w if abs(w) > _F(1e-5) else _F(0.0)
    p = _F(1.0 / 11.0)
    p = p * w2 + _F(1.0 / 9.0)
    p = p * w2 + _F(1.0 / 7.0)
    p = p * w2 + _F(1.0 / 5.0)
    p = p * w2 + _F(1.0 / 3.0)
    r = _F(2.0) * w + (_F(2.0) * w) * (w2 * p)
    return r + _F(0.6931472) if big else r

# Generic names the dtype-generic kernel calls; numba picks the float64 or float32 body.
def vexp_neg(x):
    raise NotImplementedError


def vexpm1_neg(x):
    raise NotImplementedError


def vlog1p_unit(x):
    raise NotImplementedError


def _by_dtype(f64, f32):
    def pick(x):
        if x == types.float64:
            return lambda x: f64(x)
        if x == types.float32:
            return lambda x: f32(x)
        return None
    return pick


overload(vexp_neg, jit_options=dict(error_model="numpy"))(_by_dtype(_exp_neg64, _exp_neg32))
overload(vexpm1_neg, jit_options=dict(error_model="numpy"))(_by_dtype(_expm1_neg64, _expm1_neg32))
overload(vlog1p_unit, jit_options=dict(error_model="numpy"))(_by_dtype(_log1p_unit64, _log1p_unit32))


@njit(fastmath=_CONTRACT, **_JIT)
def _log_ge1_64(s):
    """log(s) for s >= 1: s = 2^e f with f in [1, 2), log s = e ln 2 + log1p(f - 1)."""
    b = _f64_bits(s)
    e = (b >> 52) - 1023
    f = _bits_f64((b & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    r = (e * 6.93147180369123816490e-01 + _log1p_unit64(f - 1.0)) + e * 1.90821492927058770002e-10
    return r if s < np.inf else s                   # inf and NaN pass through


@njit(fastmath=_CONTRACT, **_JIT)
def _log_ge1_32(s):
    b = _f32_bits(s)
    e = (b >> 23) - 127
    f = _bits_f32((b & 0x007FFFFF) | 0x3F800000)
    ef = np.float32(e)
    r = (ef * _F(0.693359375) + _log1p_unit32(f - _F(1.0))) + ef * _F(-2.12194440e-4)
    return r if s < _F(np.inf) else s


def vlog_ge1(x):
    raise NotImplementedError


overload(vlog_ge1, jit_options=dict(error_model="numpy"))(_by_dtype(_log_ge1_64, _log_ge1_32))


@njit(**_JIT)
def _pow(b, t):
    """``b ** t`` as Python computes it for floats (libm ``pow``)."""
    return math.pow(b, np.float64(t))
