"""The one place a peft ``LoraConfig`` is built, from :class:`labkit.lab_settings.lora.LoraSettings`, after checking it."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkit.config import LabkitError
from labkit.lab_settings.lora import LoraSettings

if TYPE_CHECKING:  # pragma: no cover
    from peft import LoraConfig


def lora_config(lora: LoraSettings, model: Any | None = None) -> "LoraConfig":
    """A seq2seq LoRA config (bias "none", as the course's) for ``lora``; with ``model``, its target modules
    must be module names of that model. LabkitError naming the setting that cannot work otherwise."""
    from peft import LoraConfig, TaskType

    if not (isinstance(lora.r, int) and lora.r >= 1):
        raise LabkitError(f"LoRA rank r must be >= 1, got {lora.r}. The course used r={LoraSettings.r}.")
    if not lora.alpha > 0:
        raise LabkitError(f"LoRA alpha must be > 0, got {lora.alpha}. The course used alpha={LoraSettings.alpha}.")
    if not 0 <= lora.dropout < 1:
        raise LabkitError(f"LoRA dropout must be in [0, 1), got {lora.dropout}. The course used {LoraSettings.dropout}.")
    if not lora.target_modules:
        raise LabkitError("LoRA target_modules is empty. T5 attention projections are 'q', 'k', 'v', 'o' "
                          f"(the course used {list(LoraSettings.target_modules)}).")
    if model is not None:
        names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        missing = [t for t in lora.target_modules if t not in names]
        if missing:
            raise LabkitError(
                f"LoRA target_modules {missing} are not module names of this model. "
                f"T5 attention projections are 'q', 'k', 'v', 'o' (the course used {list(LoraSettings.target_modules)})."
            )
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, target_modules=list(lora.target_modules),
                      lora_dropout=lora.dropout, bias="none", task_type=TaskType.SEQ_2_SEQ_LM)
