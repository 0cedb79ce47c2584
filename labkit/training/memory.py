"""Memory: the course's rule of thumb for training a model, and the peak bytes of live tensors measured on a CPU.

On CUDA a training loop reads ``torch.cuda.max_memory_allocated``. On a CPU,
process RSS cannot be reset between two runs in one process (the allocator
keeps freed pages), so :class:`TensorMemoryTracker`, a ``TorchDispatchMode``,
counts the bytes of every live tensor storage -- weights, gradients,
optimizer state, activations and temporaries -- and keeps the maximum: the
torch analogue of ``tracemalloc``. It excludes the Python runtime and the
allocator's slack, which ``bench/finetune_memory.py`` measures as process
peak RSS in fresh subprocesses instead.
"""
from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from labkit.config import LabkitError
from labkit.training.params import ParamCount

# The course's rule of thumb (Week 1, "computational challenges"): 4 bytes per
# parameter to hold fp32 weights; training adds ~20 bytes per parameter for
# AdamW's two states (8), gradients (4) and activations/temporaries (~8).
WEIGHT_BYTES_PER_PARAM = 4
TRAINING_EXTRA_BYTES_PER_PARAM = 20
MB = 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    """The course's rule-of-thumb memory for one model, in bytes."""

    total_params: int
    trainable_params: int
    weights_bytes: int
    training_bytes: int

    @property
    def weights_mb(self) -> float:
        return self.weights_bytes / MB

    @property
    def training_mb(self) -> float:
        return self.training_bytes / MB


def estimate_memory(total_params: int | ParamCount, trainable_params: int | None = None) -> MemoryEstimate:
    """The course's rule of thumb: weights take 4 bytes/param; training adds
    ~20 bytes per *trainable* param (optimizer states, gradients, activations,
    temporaries). With every parameter trainable that is 24 bytes/param
    (1B params: 4 GB to load, ~24 GB to train). For LoRA only the adapter's
    parameters pay the 20 extra bytes -- the rule's own logic, which ignores
    that activations do not shrink with the adapter.

    ``total_params`` may be a ParamCount (its trainable count is then used).
    """
    if isinstance(total_params, ParamCount):
        trainable_params = total_params.trainable if trainable_params is None else trainable_params
        total_params = total_params.total
    trainable = total_params if trainable_params is None else trainable_params
    if total_params < 0 or not 0 <= trainable <= total_params:
        raise LabkitError(
            f"estimate_memory: need 0 <= trainable ({trainable}) <= total ({total_params}) parameters."
        )
    weights = WEIGHT_BYTES_PER_PARAM * total_params
    return MemoryEstimate(total_params, trainable, weights, weights + TRAINING_EXTRA_BYTES_PER_PARAM * trainable)


def _tensor_memory_mode_base() -> type:
    from torch.utils._python_dispatch import TorchDispatchMode

    return TorchDispatchMode


class TensorMemoryTracker:
    """Peak bytes of live tensor storages while active (a ``TorchDispatchMode``).

    Tensors that exist before entry (weights, optimizer state) are registered
    with :meth:`track`; every tensor an op creates inside the context is counted
    until its storage is freed. Views share their storage and count once.
    """

    def __init__(self) -> None:
        import torch
        from torch.utils._pytree import tree_flatten

        self._torch = torch
        self._flatten = tree_flatten
        self._live: dict[int, Any] = {}
        self.current = 0
        self.peak = 0
        tracker = self

        class _Mode(_tensor_memory_mode_base()):  # type: ignore[misc]
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
                out = func(*args, **(kwargs or {}))
                tracker.track(*tracker._flatten(out)[0])
                return out

        self._mode = _Mode()

    def track(self, *tensors: Any) -> None:
        """Count these tensors' storages (once each) until they are freed."""
        for t in tensors:
            if not isinstance(t, self._torch.Tensor) or t.device.type == "meta":
                continue
            storage = t.untyped_storage()
            key = storage._cdata
            if key in self._live:
                continue
            nbytes = storage.nbytes()

            def _freed(_ref: Any, key: int = key, nbytes: int = nbytes) -> None:
                if self._live.pop(key, None) is not None:
                    self.current -= nbytes

            self._live[key] = weakref.ref(storage, _freed)
            self.current += nbytes
            self.peak = max(self.peak, self.current)

    def __enter__(self) -> "TensorMemoryTracker":
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._mode.__exit__(*exc)

    @property
    def peak_mb(self) -> float:
        return self.peak / MB


class PeakMeter:
    """Peak memory over the steps ``first``..``last`` of a training loop: the CUDA allocator's peak on a GPU,
    the peak of live tensor bytes (:class:`TensorMemoryTracker`) elsewhere. ``peak_mb`` is None until read
    (or given: a resumed run's earlier reading)."""

    def __init__(self, device: Any, *, first: int, last: int, peak_mb: float | None = None) -> None:
        self.device, self.first, self.last, self.peak_mb = device, first, last, peak_mb
        self.cuda = getattr(device, "type", str(device)) == "cuda"
        self._tracker: TensorMemoryTracker | None = None

    @property
    def method(self) -> str:
        """What is measured, in words (for reports)."""
        return "cuda max_memory_allocated" if self.cuda else "live tensor bytes (TensorMemoryTracker)"

    def measures(self, n: int) -> bool:
        """Whether step ``n`` (1-based) is measured."""
        return self.peak_mb is None and self.first <= n <= self.last

    @contextlib.contextmanager
    def step(self, n: int, live: Callable[[], Iterable[Any]], *, last_step: int) -> Iterator[None]:
        """Run step ``n`` inside this; ``live`` gives the tensors that exist before it (weights, optimizer state),
        counted when a CPU measurement starts. The peak is read after step ``min(last, last_step)``."""
        if not self.measures(n):
            yield
            return
        import torch

        if self.cuda:
            if n == self.first:
                torch.cuda.reset_peak_memory_stats(self.device)
            yield
        else:
            if n == self.first or self._tracker is None:
                self._tracker = TensorMemoryTracker()
                self._tracker.track(*live())
            with self._tracker:
                yield
        if n == min(self.last, last_step):
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) if self.cuda else self._tracker.peak) / MB  # type: ignore[union-attr]
            self._tracker = None
