"""The fused fast path of the training loop: every iteration of a chunk of networks in one
numba-compiled call.

Scope (``supported``): any number of hidden layers (sigmoid, tanh or relu), binary output (one
sigmoid unit, binary cross-entropy) or softmax with cross-entropy for any number of classes, full
batch or minibatches, optimizers sgd / momentum (+ Nesterov) / adam / adamw / rmsprop, ``l2 >= 0``,
optional global-norm clipping, float64 or float32; no legacy quirk of the loop (the ``posted``
initialisation is fine: it only shapes W0). The legacy switches run on the numpy path
(``loop.numpy_loop``), which stays the reference: the fused kernels run the same algorithm (same
formulas, same order of operations where it matters, same divergence, freezing, clipping, logging
rules and data order) and agree with it to rounding (``tests/test_engine_fused*.py``).

Two kernels (``kernel``), both behind ``run_loop(batch)``, which takes a ``loop.Batch`` and returns
a ``loop.LoopState`` as ``numpy_loop`` does:

* ``fused_wide``: one hidden layer, binary output, full batch (the reference workload): the
  networks share their inputs, so a block of networks' first layers is one wide matrix product;
* ``fused_net``: everything else, one network at a time (its minibatch rows gathered per network,
  its weights and work arrays in cache for its whole budget).

Bit-for-bit: the same inputs give the same bits, run after run and process after process (no
threads in the kernels; BLAS sums in a fixed order).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import TrainConfig
    from .layers import Arch
    from .loop import Batch, LoopState

try:  # numba is a dependency, but the numpy path must keep working without it
    import numba  # noqa: F401
    HAVE_NUMBA = True
    IMPORT_ERROR = ""
except ImportError as exc:  # pragma: no cover - exercised only without numba
    HAVE_NUMBA = False
    IMPORT_ERROR = str(exc)

OPT_CODES = {"sgd": 0, "momentum": 1, "rmsprop": 2, "adam": 3, "adamw": 4}
ACT_CODES = {"sigmoid": 0, "tanh": 1, "relu": 2}


def supported(arch: Arch, config: TrainConfig, n_train: int) -> str | None:
    """``None`` when the fused path can run this batch, else the reason it cannot."""
    if not HAVE_NUMBA:
        return f"numba is not importable ({IMPORT_ERROR})"
    if arch.activation not in ACT_CODES:
        return f"activation {arch.activation!r} is not supported"
    leg = config.legacy
    loop_quirks = [s for s in leg.SWITCHES if s != "posted_init" and getattr(leg, s)]
    if loop_quirks or leg.clip_threshold is not None:   # posted_init only shapes W0: fine
        return "no legacy quirk of the training loop is supported (" + \
            ", ".join(loop_quirks + (["clip_threshold"] if leg.clip_threshold is not None else [])) + ")"
    if config.optimizer.name not in OPT_CODES:
        return f"optimizer {config.optimizer.name!r} is not supported"
    if config.dtype not in ("float64", "float32"):
        return f"dtype {config.dtype!r} is not supported"
    return None


def kernel(arch: Arch, config: TrainConfig, n_train: int) -> str:
    """``"wide"`` (one hidden layer, binary output, full batch: the networks' first layers as one
    matrix) or ``"net"`` (everything else, one network at a time) for a supported batch."""
    full = config.batch_size is None or config.batch_size >= n_train
    return "wide" if len(arch.hidden) == 1 and arch.n_out == 1 and full else "net"


def fused_chunk(arch: Arch, config: TrainConfig | None = None, n_train: int | None = None) -> int:
    """Networks per fused call. The wide kernel runs the hidden layer a block of networks at a time
    (products of at most ~54 rows, see ``fused_wide._dot_rows``), so a larger N no longer costs
    matrix-product speed or cache; it only spreads the per-call overhead of ``train`` (~1 ms) over
    more networks. Measured (300 Adam steps, n = 569, per network-step, through ``train``): H = 3 as
    fast at 36-64 networks per call as at 16, H = 8 10% faster at 12-24 than at 6, H = 16 2% faster
    at 6-12 than at 3, H = 32 and 64 1-3% faster at 6 and 3 than at 1: about 192 hidden units per
    call. The per-network kernel trains one network after the other whatever N: up to 64 per call,
    fewer when their parameters and moments would pass 32 MB."""
    if config is not None and n_train is not None and kernel(arch, config, n_train) == "net":
        dims = [arch.n_in, *arch.hidden, arch.n_out]
        params = sum((a + 1) * b for a, b in zip(dims[:-1], dims[1:]))
        return max(1, min(64, 4_000_000 // (3 * params)))
    return max(1, min(64, 192 // max(arch.hidden)))


_BLAS_SYNCED = False


def _sync_blas_threads() -> None:
    """numba's ``np.dot`` calls scipy's OpenBLAS, not numpy's: give it numpy's thread count once, so
    a ``threadpool_limits`` entered before scipy's BLAS was loaded still holds for it."""
    global _BLAS_SYNCED
    if _BLAS_SYNCED:
        return
    _BLAS_SYNCED = True
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads scipy's BLAS)
        from threadpoolctl import ThreadpoolController
        ctl = ThreadpoolController()
        np_libs = [c for c in ctl.lib_controllers if "numpy" in c.filepath and c.user_api == "blas"]
        sp_libs = ctl.select(user_api="blas")
        if np_libs:
            want = np_libs[0].num_threads
            for c in sp_libs.lib_controllers:
                if "scipy" in c.filepath and c.num_threads != want:
                    c.set_num_threads(want)
    except Exception:  # pragma: no cover - best effort only
        pass


def run_loop(batch: Batch) -> LoopState:
    """Iterations ``0 .. T-1`` of a supported batch (``loop.Batch``), updating ``batch.W`` in place;
    returns a ``loop.LoopState``."""
    _sync_blas_threads()
    if kernel(batch.arch, batch.config, batch.y.shape[0]) == "wide":
        from .fused_wide import run_wide
        return run_wide(batch)
    from .fused_net import run_net
    return run_net(batch)
