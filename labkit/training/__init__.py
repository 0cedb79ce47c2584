"""The training plumbing every lesson shares (``labkit.finetune``, ``labkit.ppo``).

* :mod:`.batching`: which rows go together in a batch, and padding them;
* :mod:`.checkpoint`: checkpoint folders written atomically (a scratch folder
  renamed into place, so a kill mid-save never leaves half a checkpoint), the
  RNG state they carry, and sizes on disk;
* :mod:`.lora`: the one validated builder of a peft ``LoraConfig``;
* :mod:`.prompt_tuning`: the one validated builder of a peft ``PromptTuningConfig``;
* :mod:`.qlora`: the course notes' 4-bit NF4 config, the 4-bit loader, and the probe
  that measures whether bitsandbytes' 4-bit layers work on a device;
* :mod:`.memory`: the course's memory rule of thumb, the live-tensor
  memory tracker and the steady-state peak meter of a training loop.
"""
from __future__ import annotations

from labkit.training.checkpoint import (
    atomic_folder, directory_size_mb, load_state, restore_rng_state, rng_state, save_state,
)
from labkit.training.lora import lora_config
from labkit.training.memory import MB, MemoryEstimate, PeakMeter, TensorMemoryTracker, estimate_memory

__all__ = ["MB", "MemoryEstimate", "PeakMeter", "TensorMemoryTracker", "atomic_folder", "directory_size_mb", "estimate_memory",
           "load_state", "lora_config", "restore_rng_state", "rng_state", "save_state"]
