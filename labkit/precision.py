"""fp32 or bf16 on the CPU, chosen by measuring the machine, not by assuming.

bf16 was very slow on the AVX2 CPUs labkit was first measured on, so it ran
everything in fp32 on a CPU. CPUs with AVX-512 BF16 (AMD Zen 4/5) or AMX (Intel
Sapphire Rapids and later) run bf16 matmuls several times faster than fp32. So
once per machine :func:`measure` times fp32 against bf16 at the matmul shapes the
labs run (a second or two, one thread) and caches the two speeds beside the
fixtures (:func:`cache_path`), keyed by the CPU model, the torch version and
torch's CPU capability (``ATEN_CPU_CAPABILITY=avx2`` measures again).

:func:`choose` turns a lab's ``dtype`` parameter (``"auto"``, ``"fp32"``,
``"bf16"``) into a :class:`Choice`: on a CPU ``auto`` is bf16 only where bf16
measured at least :data:`FAST_BF16_RATIO` times as fast as fp32; on CUDA it keeps
:func:`labkit.config.choose_dtype`'s rule (bf16 where the GPU supports it).

On the CPU the weights stay fp32 (the master weights training updates); a
bf16 choice changes how they are computed with:

* generation (``labkit.generate``, PPO's rollouts and samples) runs a bf16 copy
  of the model (:func:`inference_model`): decoding reads every weight once per
  token, so a per-step cast under autocast would cost more than it saves;
* every other forward pass (training, log-probabilities, the reward model) runs
  under bf16 autocast (:func:`autocast`), with fp32 master weights and fp32
  optimizer state.

``start_lab`` makes its choice the active one (:func:`set_active`); labkit's
functions read it, so a notebook passes nothing around. :func:`fp32_step` runs
one step of a lesson in fp32 whatever was chosen, and says why.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from labkit.atomic import write_text
from labkit.config import LabkitError, labkit_home, suggest

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

DTYPES = ("auto", "fp32", "bf16")
_ALIASES = {"float32": "fp32", "fp32": "fp32", "torch.float32": "fp32", "bfloat16": "bf16", "bf16": "bf16",
            "torch.bfloat16": "bf16", "auto": "auto"}
# bf16 must be clearly faster to be worth its rounding: 1.5x. Measured with one thread, a 1024^3 matmul ran
# 4.4x faster in bf16 on an AMD Zen 5 (AVX-512 BF16); on this project's AVX2 EPYC it ran ~0.1x (slower).
FAST_BF16_RATIO = 1.5
CACHE_FILE = "precision.json"
# (tokens, in features, out features) of the labs' Linear layers: flan-t5-base's feed-forward on a
# 256-token encoder chunk and on one decoding step of 16 rows, its attention projection, and the offline
# stand-in's feed-forward (d_model 128, d_ff 512).
SHAPES: tuple[tuple[int, int, int], ...] = ((256, 768, 2048), (16, 768, 2048), (256, 768, 768), (256, 128, 512))
SECONDS_PER_SHAPE = 0.12  # per shape and dtype: 8 timings, about a second in all


def check_dtype(value: Any) -> str:
    """``value`` as one of :data:`DTYPES` (``"float32"`` and ``"bfloat16"`` are read as fp32 and bf16);
    LabkitError saying what to set otherwise."""
    key = str(value).strip().lower() if isinstance(value, str) else None
    if key in _ALIASES:
        return _ALIASES[key]
    hint = suggest(key, DTYPES) if key else ""
    raise LabkitError(
        f"dtype = {value!r} is not a precision labkit knows. Expected one of {', '.join(map(repr, DTYPES))}: "
        f"'auto' measures this machine and uses bf16 only where it is clearly faster, 'fp32' and 'bf16' force one."
        f"{hint} Set dtype = \"auto\" in the parameters cell.")


# ---------------------------------------------------------------- measuring


def cpu_model() -> str:
    """The CPU's model name (``lscpu``'s), from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_bf16_flags() -> list[str]:
    """The CPU flags that mean hardware bf16 matmuls (``avx512_bf16``, ``amx_bf16``); empty where none or
    where /proc/cpuinfo is absent. For messages and skip reasons: the choice itself is measured."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return sorted(flags & {"avx512_bf16", "amx_bf16"})


def machine_key() -> dict[str, str]:
    """What a measurement depends on: the CPU model, the torch version and torch's CPU capability
    (``ATEN_CPU_CAPABILITY`` lowers it)."""
    import torch

    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: "unknown")()
    return {"cpu": cpu_model(), "torch": torch.__version__, "capability": str(capability)}


def _key_text(key: dict[str, str]) -> str:
    return f"{key['cpu']} | torch {key['torch']} | {key['capability']}"


@dataclass(frozen=True)
class Measurement:
    """fp32 and bf16 matmul speeds (GFLOP/s, one thread) at :data:`SHAPES` on one machine."""

    fp32_gflops: float
    bf16_gflops: float
    key: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    measured_at: str = ""

    @property
    def speedup(self) -> float:
        """bf16's speed over fp32's (>1: bf16 is faster)."""
        return self.bf16_gflops / self.fp32_gflops if self.fp32_gflops > 0 else 0.0

    @property
    def fast_bf16(self) -> bool:
        return self.speedup >= FAST_BF16_RATIO

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": round(self.speedup, 3)}


def _time_linear(x: "torch.Tensor", w: "torch.Tensor", budget: float) -> float:
    """Seconds per ``x @ w.T``, timed for about ``budget`` seconds after a warm-up."""
    import torch

    torch.nn.functional.linear(x, w)
    runs, start = 0, time.perf_counter()
    while True:
        torch.nn.functional.linear(x, w)
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget and runs >= 3:
            return elapsed / runs


def measure(shapes: tuple[tuple[int, int, int], ...] = SHAPES, seconds_per_shape: float = SECONDS_PER_SHAPE) -> Measurement:
    """Time fp32 against bf16 matmuls (``torch.nn.functional.linear``, the labs' Linear layers) at ``shapes``
    on one thread; GFLOP/s over all shapes together."""
    import torch

    from labkit.config import torch_threads

    started = time.perf_counter()
    flops, spent = 0.0, {"fp32": 0.0, "bf16": 0.0}
    generator = torch.Generator().manual_seed(0)
    with torch_threads(1), torch.inference_mode():
        for m, k, n in shapes:
            x = torch.randn(m, k, generator=generator)
            w = torch.randn(n, k, generator=generator) * k ** -0.5
            flops += 2.0 * m * k * n
            spent["fp32"] += _time_linear(x, w, seconds_per_shape)
            spent["bf16"] += _time_linear(x.bfloat16(), w.bfloat16(), seconds_per_shape)
    return Measurement(fp32_gflops=round(flops / spent["fp32"] / 1e9, 2), bf16_gflops=round(flops / spent["bf16"] / 1e9, 2),
                       key=machine_key(), seconds=round(time.perf_counter() - started, 2),
                       measured_at=time.strftime("%Y-%m-%dT%H:%M:%S"))


def cache_path() -> Path:
    """Where measurements are kept: beside the fixtures (``labkit.config.labkit_home()``)."""
    return labkit_home() / CACHE_FILE


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cached_measurement(*, refresh: bool = False) -> Measurement:
    """This machine's measurement: from the cache when one was taken with the same CPU model, torch version and
    CPU capability, else measured now (about a second) and cached. ``refresh=True`` measures again."""
    key = machine_key()
    path = cache_path()
    entries = _read_cache(path)
    entry = entries.get(_key_text(key))
    if entry and not refresh:
        try:
            return Measurement(fp32_gflops=float(entry["fp32_gflops"]), bf16_gflops=float(entry["bf16_gflops"]),
                               key=dict(entry.get("key", key)), seconds=float(entry.get("seconds", 0.0)),
                               measured_at=str(entry.get("measured_at", "")))
        except (KeyError, TypeError, ValueError):
            pass  # a damaged entry: measure again
    result = measure()
    entries[_key_text(key)] = result.as_dict()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(entries, indent=1, sort_keys=True) + "\n")
    except OSError as err:  # a read-only home: the choice still stands, it is just measured again next time
        log.debug("could not cache the precision measurement in %s: %s", path, err)
    log.debug("measured fp32 %.1f vs bf16 %.1f GFLOP/s on %s", result.fp32_gflops, result.bf16_gflops, _key_text(key))
    return result


# ---------------------------------------------------------------- choosing


@dataclass(frozen=True)
class Choice:
    """What a run computes in: ``dtype`` ("fp32" or "bf16") for ``requested`` on ``device``, why, and the two
    measured speeds (CPU; None on a GPU, where the rule is :func:`labkit.config.choose_dtype`'s)."""

    requested: str
    dtype: str
    device: str
    reason: str
    fp32_gflops: float | None = None
    bf16_gflops: float | None = None

    @property
    def speedup(self) -> float | None:
        if self.fp32_gflops and self.bf16_gflops:
            return self.bf16_gflops / self.fp32_gflops
        return None

    @property
    def torch_dtype(self) -> "torch.dtype":
        import torch

        return torch.bfloat16 if self.dtype == "bf16" else torch.float32

    @property
    def cpu_bf16(self) -> bool:
        """Whether this choice computes in bf16 with fp32 weights (a CPU choosing bf16)."""
        return self.dtype == "bf16" and self.device == "cpu"

    def speeds(self) -> str:
        if self.speedup is None:
            return "not measured (GPU)"
        return f"fp32 {self.fp32_gflops:.1f} GFLOP/s, bf16 {self.bf16_gflops:.1f} GFLOP/s ({self.speedup:.2f}x)"

    def as_dict(self) -> dict[str, Any]:
        speedup = self.speedup
        return {**asdict(self), "speedup": round(speedup, 3) if speedup is not None else None}


def choose(requested: Any = "auto", device: "torch.device | str" = "cpu", *,
           measurement: Callable[[], Measurement] | None = None) -> Choice:
    """The precision a run uses. ``requested``: a lab's ``dtype`` parameter (:func:`check_dtype`).

    CPU: fp32 and bf16 are timed (``measurement``, default :func:`cached_measurement`); ``auto`` is bf16 when
    bf16 ran at least :data:`FAST_BF16_RATIO` times as fast, else fp32. CUDA: ``auto`` follows
    :func:`labkit.config.choose_dtype` (bf16 where supported); ``bf16`` on a GPU without it is refused.
    MPS: ``auto`` is fp32."""
    import torch

    from labkit.config import choose_dtype

    asked = check_dtype(requested)
    dev = torch.device(device)
    if dev.type != "cpu":
        if dev.type == "cuda" and asked == "bf16" and not torch.cuda.is_bf16_supported():
            raise LabkitError("dtype = 'bf16' was asked for, but this GPU does not support bf16. "
                              "Set dtype = \"auto\" (or \"fp32\") in the parameters cell.")
        if asked == "auto":
            chosen = "bf16" if choose_dtype(dev) == torch.bfloat16 else "fp32"
            why = f"{dev.type}: " + ("bf16, which this GPU supports" if chosen == "bf16" else "fp32 (labkit's rule)")
        else:
            chosen, why = asked, f"dtype = {asked!r} in the parameters cell"
        return Choice(requested=asked, dtype=chosen, device=dev.type, reason=why)
    m = (measurement or cached_measurement)()
    speed = f"bf16 ran {m.speedup:.2f}x as fast as fp32 here"
    if asked == "auto":
        fast = m.speedup >= FAST_BF16_RATIO
        chosen = "bf16" if fast else "fp32"
        why = (f"{speed} (>= {FAST_BF16_RATIO}x): bf16" if fast
               else f"{speed} (< {FAST_BF16_RATIO}x: this CPU has no fast bf16): fp32")
    else:
        chosen, why = asked, f"dtype = {asked!r} in the parameters cell; {speed}"
        if asked == "bf16" and m.speedup < 1.0:
            log.warning("dtype = 'bf16' on a CPU where bf16 ran %.2fx as fast as fp32: this run will be slower. "
                        "dtype = \"auto\" picks what is faster here.", m.speedup)
    return Choice(requested=asked, dtype=chosen, device="cpu", reason=why, fp32_gflops=m.fp32_gflops,
                  bf16_gflops=m.bf16_gflops)


# ---------------------------------------------------------------- using the choice

_active: Choice | None = None


def set_active(choice: Choice | None) -> None:
    """Make ``choice`` the precision labkit's functions compute in (``start_lab`` does; None: fp32)."""
    global _active
    _active = choice


def active() -> Choice | None:
    """The active choice, or None (fp32) outside a lab run."""
    return _active


def _cpu_bf16(device: "torch.device | str | None") -> bool:
    import torch

    choice = _active
    if choice is None or not choice.cpu_bf16:
        return False
    return device is None or torch.device(device).type == "cpu"


def autocast(device: "torch.device | str | None" = None) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on the CPU when the active choice is CPU bf16 (fp32 weights, bf16 matmuls); a no-op
    otherwise (fp32, or a GPU whose weights are already in the chosen dtype)."""
    import torch

    if _cpu_bf16(device):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def bf16_copy(model: "torch.nn.Module") -> "torch.nn.Module":
    """A bf16 copy of a CPU ``model`` for inference, in eval mode, leaving ``model`` (its fp32 weights) as it
    is. The copy's floating-point parameters and buffers are made in bf16 directly (never a second fp32 copy);
    tied weights stay tied."""
    import torch

    memo: dict[int, Any] = {}
    for p in model.parameters():
        if id(p) not in memo and p.is_floating_point():
            memo[id(p)] = torch.nn.Parameter(p.detach().to(torch.bfloat16), requires_grad=False)
    for b in model.buffers():
        if id(b) not in memo and b.is_floating_point():
            memo[id(b)] = b.detach().to(torch.bfloat16)
    return copy.deepcopy(model, memo).eval()


def inference_model(model: "torch.nn.Module", dtype: str | None = None) -> "torch.nn.Module":
    """What generation runs: a bf16 copy of an fp32 CPU model when ``dtype`` is "bf16" (None: when the active
    choice is CPU bf16), else ``model`` itself."""
    import torch

    wanted = _cpu_bf16(None) if dtype is None else check_dtype(dtype) == "bf16"
    if not wanted:
        return model
    first = next(model.parameters(), None)
    if first is None or first.device.type != "cpu" or first.dtype != torch.float32:
        return model
    return bf16_copy(model)


@contextlib.contextmanager
def fp32_step(step: str, reason: str) -> Iterator[None]:
    """Run one step of a lesson in fp32 whatever was chosen, saying so (and why) when bf16 was: for a step
    whose outcome bf16 changes."""
    before = _active
    if before is not None and before.dtype == "bf16":
        log.info("%s runs in fp32, not the chosen bf16: %s", step, reason)
        set_active(Choice(requested=before.requested, dtype="fp32", device=before.device,
                          reason=f"{step}: {reason}", fp32_gflops=before.fp32_gflops, bf16_gflops=before.bf16_gflops))
    try:
        yield
    finally:
        set_active(before)


def describe(choice: Choice) -> str:
    """One line for a lab's log: what was chosen and why."""
    return f"dtype: {choice.dtype} (asked {choice.requested!r}; {choice.reason}); measured {choice.speeds()}"
