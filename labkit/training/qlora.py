"""QLoRA (Dettmers et al. 2023): LoRA on a frozen base whose linear layers are stored in 4 bits, via bitsandbytes.

The configuration is the course notes' -- 4-bit NormalFloat (``"nf4"``; the notes misspell it "n4f"), double
quantization, bf16 compute::

    BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                       bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)

bitsandbytes is an optional dependency (``pip install 'genai-labs[qlora]'``). Whether its 4-bit layers work on a
device is measured, not assumed: :func:`qlora_support` quantizes one layer to NF4 on the device and checks its
output and its input gradient against the dequantized weights in float32 (the gradient is what LoRA's training
needs to flow through the frozen layers).

Measured here (bitsandbytes 0.50.2, torch 2.13 CPU, an AVX512-BF16 CPU): NF4 works on the CPU, forward and
backward, and LoRA on the 4-bit tiny model trains with the same losses as on fp32 at about the same time per step.
One trap: the first forward in eval mode without gradients (``generate``) repacks the CPU weights into an
inference layout through which no gradient flows, so a model that generated once then trains nothing, silently
(the loss does not move). :func:`qlora_support` reports it as ``caveat``; the lab trains its QLoRA model before it
generates with it, and builds a fresh one for every training run.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit.config import LabkitError, Profile

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import BitsAndBytesConfig, PreTrainedModel

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'genai-labs[qlora]' (or pip install bitsandbytes) and restart the kernel"
NF4_BLOCKSIZE = 64          # weights sharing one absmax constant (bitsandbytes' default for 4-bit)
DOUBLE_QUANT_BLOCKSIZE = 256  # absmax constants sharing one fp32 constant in double quantization


def nf4_config(compute_dtype: "torch.dtype | str" = "bfloat16") -> "BitsAndBytesConfig":
    """The course notes' 4-bit config: NF4 weights, double quantization, ``compute_dtype`` (bf16) matmuls."""
    import torch
    from transformers import BitsAndBytesConfig

    dtype = getattr(torch, compute_dtype) if isinstance(compute_dtype, str) else compute_dtype
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=dtype)


def nf4_bytes_per_param(blocksize: int = NF4_BLOCKSIZE, double_quant: bool = True,
                        dq_blocksize: int = DOUBLE_QUANT_BLOCKSIZE) -> float:
    """Bytes per weight of a 4-bit NF4 layer: 4 bits, plus one absmax constant per block of ``blocksize`` weights,
    32 bits each, or with double quantization 8 bits each plus one 32-bit constant per ``dq_blocksize`` absmaxes
    (QLoRA's section 3: 32/64 = 0.5 bits per weight of constants become 8/64 + 32/(64*256) = 0.127)."""
    if blocksize < 1 or dq_blocksize < 1:
        raise LabkitError(f"blocksize and dq_blocksize must be >= 1, got {blocksize} and {dq_blocksize}.")
    constant_bits = 8 / blocksize + 32 / (blocksize * dq_blocksize) if double_quant else 32 / blocksize
    return (4 + constant_bits) / 8


@dataclass(frozen=True)
class QloraSupport:
    """Whether QLoRA runs on ``device`` here, and why not when it does not.

    ``ok``: bitsandbytes quantized a layer to NF4 on the device and its output and input gradient matched the
    dequantized weights; ``reason``: what was measured, or why QLoRA is skipped; ``caveat``: a measured trap that
    does not stop QLoRA but constrains how it is used (see the module docstring)."""

    ok: bool
    reason: str
    device: str
    bitsandbytes: str | None = None
    caveat: str | None = None

    @classmethod
    def off(cls, reason: str, device: str = "") -> "QloraSupport":
        """QLoRA switched off without measuring (e.g. ``qlora = False`` in the lab's parameters)."""
        return cls(False, reason, device)

    def as_dict(self) -> dict[str, Any]:
        """The recorded form: ``{"ran": True, ...}`` or ``{"skipped": reason, ...}``."""
        out: dict[str, Any] = {"ran": True, "measured": self.reason} if self.ok else {"skipped": self.reason}
        out.update({"device": self.device, "bitsandbytes": self.bitsandbytes})
        if self.caveat:
            out["caveat"] = self.caveat
        return out

    def __str__(self) -> str:
        head = f"QLoRA runs on {self.device}: {self.reason}" if self.ok else f"QLoRA skipped: {self.reason}"
        return head + (f"\nNote: {self.caveat}" if self.caveat else "")


def _relative_error(got: "torch.Tensor", want: "torch.Tensor") -> float:
    got, want = got.detach().float().cpu(), want.detach().float().cpu()
    return float((got - want).norm() / want.norm().clamp_min(1e-12))


def _probe_layer(device: "torch.device", width: int = 128, tolerance: float = 0.05) -> str | None:
    """Quantize one ``width``-square layer to NF4 (double quant, bf16 compute) on ``device``; None when its output
    and input gradient match float32 math with the dequantized weights, else what went wrong."""
    import bitsandbytes as bnb
    import torch

    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(width, width, generator=gen) / width ** 0.5
    layer = bnb.nn.Linear4bit(width, width, bias=False, compute_dtype=torch.bfloat16, compress_statistics=True,
                              quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4", compress_statistics=True)
    layer = layer.to(device).train()
    dequantized = bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state).float()
    if dequantized.shape != weight.shape or _relative_error(dequantized.cpu(), weight) > 0.2:
        return "its NF4 weights do not dequantize to the original ones"
    x = torch.randn(4, 16, width, generator=gen).to(device).requires_grad_(True)
    out = layer(x)
    out.float().sum().backward()
    if _relative_error(out, x.detach() @ dequantized.T) > tolerance:
        return f"its 4-bit matmul is off by {_relative_error(out, x.detach() @ dequantized.T):.1%} (float32: 0)"
    if x.grad is None or _relative_error(x.grad, torch.ones_like(out).float() @ dequantized) > tolerance:
        return "no correct gradient flows through its 4-bit layers, so LoRA on them would not train"
    return None


def _probe_after_inference(device: "torch.device", width: int = 128) -> bool:
    """Whether gradients still flow through a 4-bit layer after one eval-mode forward without gradients."""
    import bitsandbytes as bnb
    import torch

    layer = bnb.nn.Linear4bit(width, width, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4")
    layer = layer.to(device)
    x = torch.randn(2, 8, width, device=device)
    with torch.no_grad():
        layer.eval()(x)
    x = x.clone().requires_grad_(True)
    with warnings.catch_warnings():  # torch warns that the repacked path has no autograd kernel: what we measure
        warnings.simplefilter("ignore", UserWarning)
        layer.train()(x).float().sum().backward()
    return x.grad is not None and bool(x.grad.abs().sum() > 0)


def qlora_support(device: "torch.device | str") -> QloraSupport:
    """Measure whether bitsandbytes' 4-bit NF4 layers work on ``device`` (see the module docstring). Never raises
    for a missing or broken bitsandbytes: the answer says why QLoRA cannot run."""
    import torch

    dev = torch.device(device)
    try:
        import bitsandbytes as bnb
    except Exception as err:  # ImportError, or a broken native library raising anything at import
        return QloraSupport(False, f"bitsandbytes is not installed ({type(err).__name__}: {err}). To try QLoRA: "
                                   f"{INSTALL_HINT}.", dev.type)
    version = getattr(bnb, "__version__", "?")
    try:
        problem = _probe_layer(dev)
    except Exception as err:  # what a backend without 4-bit support raises varies by version and device
        problem = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
    if problem:
        return QloraSupport(False, f"bitsandbytes {version} cannot run 4-bit NF4 on {dev.type} here: {problem}.",
                            dev.type, version)
    caveat = None
    try:
        if not _probe_after_inference(dev):
            caveat = (f"bitsandbytes {version} on {dev.type}: after one forward in eval mode without gradients "
                      "(generate), no gradient flows through the 4-bit layers, so train a 4-bit model before "
                      "generating with it")
    except Exception as err:  # pragma: no cover - the main probe passed; report, do not fail
        caveat = f"the after-inference probe failed ({type(err).__name__}: {err})"
    return QloraSupport(True, f"bitsandbytes {version}: an NF4 layer (double quantization, bf16 compute) matched "
                              "float32 math within 5%, forward and backward", dev.type, version, caveat)


def load_4bit_seq2seq(profile: Profile | str, device: "torch.device | str",
                      compute_dtype: "torch.dtype | str" = "bfloat16") -> "PreTrainedModel":
    """The profile's summarizer with its linear layers in 4-bit NF4 (:func:`nf4_config`) on ``device``, prepared
    for k-bit training (peft's ``prepare_model_for_kbit_training``: the layers left in full precision in fp32,
    input gradients on). LabkitError when bitsandbytes is missing."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForSeq2SeqLM

    from labkit import models

    try:
        import bitsandbytes  # noqa: F401
    except ImportError as err:
        raise LabkitError(f"QLoRA needs bitsandbytes, which is not installed: {INSTALL_HINT}.") from err
    p = models._resolve(profile)
    dev = torch.device(device)
    model = models._from_pretrained(AutoModelForSeq2SeqLM, p.model, "summarization model (4-bit)",
                                    fixture=p.uses_fixtures, quantization_config=nf4_config(compute_dtype),
                                    device_map={"": str(dev)})
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def footprint_mb(model: "torch.nn.Module") -> float:
    """Bytes the model's parameters and buffers take (4-bit weights at their packed size), in MiB."""
    from labkit.training.memory import MB

    tensors = list(model.parameters()) + list(model.buffers())
    total = sum(t.numel() * t.element_size() for t in tensors)
    for module in model.modules():  # the 4-bit weights' quantization constants live beside them
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is not None:
            total += sum(v.numel() * v.element_size() for v in _state_tensors(state))
    return total / MB


def _state_tensors(state: Any) -> list["torch.Tensor"]:
    import torch

    found = [v for v in (getattr(state, "absmax", None), getattr(state, "code", None)) if isinstance(v, torch.Tensor)]
    nested = getattr(state, "state2", None)
    return found + (_state_tensors(nested) if nested is not None else [])
