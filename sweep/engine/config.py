"""What every training call of the engine shares: the legacy switches and the training configuration."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .optim import OptimConfig


@dataclass(frozen=True)
class Legacy:
    """The posted code's quirks, each a separate switch (all off = a correct network).

    1. ``compounding_bias_correction``: Adam's bias correction written back into the moments,
       skipped at the first step and using ``i`` instead of ``i + 1``.
    2. ``update_times_grad``: the Adam step multiplied by the gradient a second time.
    3. ``normalize_hidden``: per-sample L2 normalisation of the hidden pre-activations, whose
       gradient the backward pass ignores.
    4. ``clip_typo``: with per-matrix clipping at ``clip_threshold``, the first layer's gradient is
       rescaled by the LAST layer's norm and the last layer is never clipped. Off (with a threshold):
       each matrix clipped by its own norm.
    5. ``sum_wtw_regularizer``: the reported cost's regulariser is ``sum(WᵀW)``, not ``sum(W**2)``.
       Only the cost changes (the gradient uses ``l2 * W`` either way), and only when ``l2 > 0``.
    6. ``posted_init``: the bias column inside the weight matrices, initialised with them by Xavier
       scaled with fan-in + fan-out including the bias (init scheme ``posted``).
    """

    compounding_bias_correction: bool = False
    update_times_grad: bool = False
    normalize_hidden: bool = False
    clip_typo: bool = False
    sum_wtw_regularizer: bool = False
    posted_init: bool = False
    clip_threshold: float | None = None

    SWITCHES = ("compounding_bias_correction", "update_times_grad", "normalize_hidden", "clip_typo",
                "sum_wtw_regularizer", "posted_init")

    def __post_init__(self) -> None:
        if self.clip_typo and self.clip_threshold is None:
            raise ValueError("legacy clip_typo needs clip_threshold (the posted code uses 4.5)")
        if self.clip_threshold is not None and not self.clip_threshold > 0:
            raise ValueError(f"clip_threshold must be > 0, got {self.clip_threshold!r}")

    @classmethod
    def posted(cls, **off: bool) -> "Legacy":
        """Every quirk on, per-matrix clipping at 4.5, as posted; keyword ``name=False`` turns one off."""
        kw = {name: True for name in cls.SWITCHES}
        kw.update(off)
        return cls(clip_threshold=4.5, **kw)

    @property
    def any(self) -> bool:
        return any(getattr(self, s) for s in self.SWITCHES) or self.clip_threshold is not None


@dataclass(frozen=True)
class TrainConfig:
    """Everything but the learning rate and the seeds, shared by the N networks of one call.

    Budget: ``iterations`` (parameter updates) or ``epochs`` (passes over the training set), not
    both; neither means 1000 iterations. ``batch_size=None`` is full batch. ``l2`` adds
    ``l2 / (2 m) * sum(W**2)`` (biases free). ``clip_norm`` rescales each network's gradient to at
    most that global L2 norm. Curves are logged at ``log_points`` log-spaced steps, or every
    ``log_every`` steps, or at the steps ``log_at`` (a curve's value at a step does not depend on
    the other logged steps; with minibatches each logged step costs a pass over the training and
    validation sets); step 0 (untrained) and the last step always. A run has stagnated from the
    first iteration after which its training objective stays within ``stagnation_tol`` (relative to
    its final value) up to the end, if that stretch covers at least a tenth of the run; it is frozen
    from the first step after which its objective is exactly the same float up to the end (no
    tolerance: what a cost printed in full shows as stagnant). A run has diverged when its training
    objective or weights become non-finite, or the objective exceeds ``divergence_factor`` times its
    untrained value (a loss that blew up: with a stable loss, huge weights give a huge but finite
    loss).
    """

    optimizer: OptimConfig = field(default_factory=OptimConfig)
    iterations: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    l2: float = 0.0
    clip_norm: float | None = None
    log_every: int | None = None
    log_points: int = 50
    log_at: tuple[int, ...] | None = None
    stagnation_tol: float = 1e-6
    divergence_factor: float | None = 100.0
    dtype: str = "float64"
    legacy: Legacy = field(default_factory=Legacy)

    def __post_init__(self) -> None:
        if self.iterations is not None and self.epochs is not None:
            raise ValueError("give exactly one of iterations or epochs, not both")
        if self.iterations is None and self.epochs is None:
            object.__setattr__(self, "iterations", 1000)
        budget = self.iterations if self.iterations is not None else self.epochs
        if not isinstance(budget, int) or budget < 1:
            raise ValueError(f"iterations/epochs must be an integer >= 1, got {budget!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None (full batch), got {self.batch_size!r}")
        if self.l2 < 0 or (self.clip_norm is not None and self.clip_norm <= 0):
            raise ValueError("l2 must be >= 0 and clip_norm > 0 (or None)")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        if self.divergence_factor is not None and not self.divergence_factor > 1:
            raise ValueError(f"divergence_factor must be > 1 (or None), got {self.divergence_factor!r}")
        if self.log_every is not None and self.log_every < 1:
            raise ValueError("log_every must be >= 1")
        if self.log_at is not None and any(int(s) != s or s < 0 for s in self.log_at):
            raise ValueError(f"log_at must list steps >= 0, got {self.log_at!r}")
        leg = self.legacy
        if leg.compounding_bias_correction != self.optimizer.compounding_bias_correction or \
                leg.update_times_grad != self.optimizer.update_times_grad:
            object.__setattr__(self, "optimizer", _with_legacy(self.optimizer, leg))


def _with_legacy(opt: OptimConfig, leg: Legacy) -> OptimConfig:
    return replace(opt, compounding_bias_correction=leg.compounding_bias_correction,
                   update_times_grad=leg.update_times_grad)
