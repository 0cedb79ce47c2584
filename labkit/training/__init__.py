"""The training plumbing every lesson shares (``labkit.finetune``'s models, ``labkit.ppo``, ``labkit.dpo``).

* :mod:`.loop`: the training loop of the fine-tuning methods (``TrainConfig``, ``train``),
  with its measurements, checkpoints and exact resume;
* :mod:`.params`: a model's trainable and total parameter counts;
* :mod:`.batching`: which rows go together in a batch, and padding them;
* :mod:`.checkpoint`: checkpoint folders written atomically (a scratch folder
  renamed into place, so a kill mid-save never leaves half a checkpoint), the
  RNG state they carry, and sizes on disk;
* :mod:`.lora`: the one validated builder of a peft ``LoraConfig``;
* :mod:`.prompt_tuning`: the one validated builder of a peft ``PromptTuningConfig``;
* :mod:`.qlora`: the course notes' 4-bit NF4 config, the 4-bit loader, and the probe
  that measures whether bitsandbytes' 4-bit layers work on a device;
* :mod:`.memory`: the course's memory rule of thumb, the live-tensor
  memory tracker and the steady-state peak meter of a training loop;
* :mod:`.run_config`: the validated run config PPO's and DPO's settings share.

What a lesson calls is named here: ``training.train``, ``training.TrainConfig``,
``training.qlora_support``, ``training.directory_size_mb``...
"""
from __future__ import annotations

from labkit.atomic import atomic_folder
from labkit.training.checkpoint import directory_size_mb, load_state, restore_rng_state, rng_state, save_state
from labkit.training.lora import lora_config
from labkit.training.loop import TrainConfig, TrainResult, list_checkpoints, tokenize_for_training, train
from labkit.training.memory import MB, MemoryEstimate, PeakMeter, TensorMemoryTracker, estimate_memory
from labkit.training.params import ParamCount, count_parameters
from labkit.training.qlora import QloraSupport, footprint_mb, qlora_support

__all__ = ["MB", "MemoryEstimate", "ParamCount", "PeakMeter", "QloraSupport", "TensorMemoryTracker", "TrainConfig",
           "TrainResult", "atomic_folder", "count_parameters", "directory_size_mb", "estimate_memory", "footprint_mb",
           "list_checkpoints", "load_state", "lora_config", "qlora_support", "restore_rng_state", "rng_state",
           "save_state", "tokenize_for_training", "train"]
