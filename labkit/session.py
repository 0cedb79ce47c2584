"""``start_lab``: the first call of every lab.

It checks the parameters a learner can get wrong, resolves the settings left
at ``None`` in the parameters cell to the profile's values (recording the
effective ones as ``settings`` and printing them beside the course's), seeds
everything, picks the device and the dtype (``dtype``: "auto" measures fp32 against
bf16 once per machine and uses bf16 only where it is clearly faster, see
:mod:`labkit.precision`), points ``labkit.record`` at the lab's
output folder, turns on the rubric's self-checks (:mod:`labkit.selfcheck`) and
makes LabkitError show as a short message in a notebook instead of a long
traceback.
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, MutableMapping

from labkit import __version__, labs, precision, selfcheck
from labkit.config import (COURSE_PROFILE, DEFAULT_PROFILE, LabkitError, Profile, choose_device, repo_root,
                           seed_everything)
from labkit.data import check_dataset
from labkit.profiles import get_profile
from labkit.record import record, set_results_dir

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)


@dataclass
class LabContext:
    """What a lab needs after setup: the profile (its sections holding this run's settings), device, dtype
    (of the weights the lab loads: fp32 on a CPU, where a bf16 choice is how they are computed with), seed,
    output folder, the effective settings by parameter name and ``precision``, the ``dtype`` parameter's
    :class:`labkit.precision.Choice` (what was chosen, why, and the two measured speeds)."""

    lab: str
    profile: Profile
    device: "torch.device"
    dtype: "torch.dtype"
    seed: int
    output_dir: Path
    settings: dict[str, Any] = field(default_factory=dict)
    precision: "precision.Choice | None" = None

    def path(self, name: str) -> Path:
        """A file or folder inside the lab's output directory."""
        return self.output_dir / name


def _short_error_handler(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> list[str]:
    # A learner-fixable error: the message is the whole story, the stack is noise.
    stb = [f"\x1b[31m{etype.__name__}\x1b[0m: {value}"]
    # IPython does not display what a custom handler returns: show it here. In a kernel this
    # sends the "error" output (ename, evalue, this one-line traceback), so JupyterLab shows
    # the message and nbclient/papermill/the grader see a failed cell.
    shell._showtraceback(etype, value, stb)
    return stb


def _ipython_shell() -> Any:
    """The running IPython shell, or None in plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def install_short_errors() -> bool:
    """In IPython, show LabkitError as one line (the cell still fails, so
    papermill and the grader still see the error). Returns whether installed."""
    shell = _ipython_shell()
    if shell is None:
        return False
    shell.set_custom_exc((LabkitError,), _short_error_handler)
    return True


def enable_inline_figures() -> bool:
    """Show matplotlib Figures returned by labkit.plots inline (registers IPython's
    PNG formatter, which a kernel only does once pyplot is set up)."""
    shell = _ipython_shell()
    if shell is None:
        return False
    shell.enable_matplotlib("inline")
    return True


class _CurrentStdoutHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stdout`` is when a record is emitted.

    A plain ``StreamHandler(sys.stdout)`` keeps the stream of its first call: a later
    redirection (pytest's capture, ``contextlib.redirect_stdout``) never saw the messages."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ assigns it; the property wins
        pass


def _configure_logging() -> None:
    logger = logging.getLogger("labkit")
    if not any(getattr(h, "_labkit", False) for h in logger.handlers):
        handler = _CurrentStdoutHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._labkit = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def check_setup(ctx: LabContext | None = None) -> "Any":
    """A one-table answer to "is my setup right?": versions, device, dtype,
    profile, where each of the profile's models comes from (Hub, ``LABKIT_MODELS``
    folder, offline fixture; the course-shaped stand-in says so) and whether the
    offline fixtures are built (a pandas DataFrame)."""
    import importlib.metadata as md
    import platform

    import pandas as pd
    import torch

    from labkit import fixtures

    def version(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "not installed"

    dev = ctx.device if ctx else choose_device()
    choice = ctx.precision if ctx is not None and ctx.precision is not None else precision.choose("auto", dev)
    weights = str(ctx.dtype if ctx else _weights_dtype(choice, dev)).replace("torch.", "")
    rows = [
        ("python", platform.python_version(), "3.11 expected"),
        ("labkit", __version__, ""),
        *((pkg, version(pkg), "") for pkg in ("torch", "transformers", "peft", "datasets", "papermill", "ipywidgets")),
        ("device", dev.type, torch.cuda.get_device_name(0) if dev.type == "cuda" else f"CPU: {precision.cpu_model()}"),
        ("dtype", choice.dtype, f"asked {choice.requested!r}: {choice.reason}; weights in {weights}"),
        ("bf16 vs fp32", choice.speeds(),
         f"matmuls at the labs' shapes, one thread; measured once per machine, cached in {precision.cache_path()}"
         if choice.device == "cpu" else "the GPU's rule (labkit.config.choose_dtype)"),
    ]
    if ctx is not None:
        from labkit.models import model_sources

        rows.append(("profile", ctx.profile.name, ctx.profile.description))
        rows.append(("output_dir", str(ctx.output_dir), ""))
        rows += [(source.part, _shown(source.where), source.how) for source in model_sources(ctx.profile)]
    manifest = fixtures.read_manifest()
    built = fixtures.is_current(manifest)
    rows.append(("offline fixtures", "built" if built else "missing",
                 str(fixtures.fixture_dir()) if built else "run 'labkit fixtures' (or any lab cell installs them, seconds)"))
    return pd.DataFrame(rows, columns=["item", "value", "note"]).set_index("item")


def _weights_dtype(choice: "precision.Choice", dev: "torch.device") -> "torch.dtype":
    """The dtype a lab loads its models in: fp32 on a CPU (the master weights; a bf16 choice computes with them
    under autocast or from a bf16 copy), the chosen dtype on a GPU (as ``labkit.config.choose_dtype`` did)."""
    import torch

    return torch.float32 if dev.type == "cpu" else choice.torch_dtype


# The tiny offline models' training stops gaining from threads beyond 2 on this
# project's 2-core reference machine; more were never measured.
OFFLINE_MAX_THREADS = 2


def offline_threads() -> int:
    """CPU threads for the offline profile's tiny models.

    Two when torch's OpenMP threads sleep while idle (``labkit.OMP_PASSIVE``),
    which trained 1.5x faster than one thread on an idle 2-core machine and as
    fast as one beside another busy process. One otherwise: spinning threads
    there ran 2.2x slower than a single thread. Generation of these models stays
    on one thread either way (see ``labkit.generate.SINGLE_THREAD_BELOW_PARAMS``).
    """
    import labkit

    if not labkit.OMP_PASSIVE:
        return 1
    return max(1, min(OFFLINE_MAX_THREADS, os.cpu_count() or 1))


# ---------------------------------------------------------------- settings

def _typed(lab: str, name: str, value: Any, default: Any, profile: str) -> Any:
    """``value`` checked against the type of the profile's ``default`` (None: the default itself)."""
    if value is None:
        return default
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
            isinstance(default, float) or isinstance(value, int))
        value = float(value) if ok and isinstance(default, float) else value
    elif isinstance(default, list):
        ok = isinstance(value, (list, tuple))
        value = list(value) if ok else value
    else:
        ok = isinstance(value, (str, os.PathLike))
        value = os.fspath(value) if ok else value
    if not ok:
        kind = "True or False" if isinstance(default, bool) else {
            int: "an integer", float: "a number", list: "a list"}.get(type(default), "a string")
        raise LabkitError(f"{name} = {value!r} in {lab}'s parameters cell is not {kind} (the {profile} profile's "
                          f"value is {default!r}). Set it to {kind}, or to None for the profile's value.")
    return value


def resolve_settings(lab: str, profile: str | Profile, given: Mapping[str, Any]) -> dict[str, Any]:
    """The lab's effective settings: each name of ``labkit.labs.defaults(lab, profile)`` takes its value from
    ``given`` unless that is None (or absent), then the profile's. Unknown names and wrong types raise
    LabkitError saying what to set instead."""
    prof = get_profile(profile)
    known = labs.defaults(lab, prof)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise LabkitError(f"start_lab got {', '.join(unknown)}, which {lab} does not have; its settings are "
                          f"{', '.join(known)}.")
    return {name: _typed(lab, name, given.get(name), default, prof.name) for name, default in known.items()}


def _shown(value: Any) -> str:
    text = str(value)
    root = str(repo_root()) + os.sep
    return text[len(root):] if text.startswith(root) else text


def settings_table(ctx: LabContext) -> "Any":
    """This run's settings beside the course profile's (a pandas DataFrame, one row per setting)."""
    import pandas as pd

    course = labs.defaults(ctx.lab, COURSE_PROFILE)
    rows = {name: {"this run": _shown(v), "course": _shown(course.get(name))} for name, v in ctx.settings.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("setting")


def _log_settings(ctx: LabContext, given: Mapping[str, Any]) -> None:
    course = labs.defaults(ctx.lab, COURSE_PROFILE)
    width = max(len(n) for n in ctx.settings)
    lines = [f"{ctx.lab} settings ({ctx.profile.name} profile; a setting left at None takes the profile's value, "
             "* marks one set in the notebook):", f"  {'setting':<{width}}  {'this run':<30}  course profile"]
    for name, value in ctx.settings.items():
        mine = _shown(value) + (" *" if given.get(name) is not None else "")
        lines.append(f"  {name:<{width}}  {mine:<30}  {_shown(course.get(name))}")
    log.info("\n".join(lines))


def _notebook_namespace() -> MutableMapping[str, Any] | None:
    """The running notebook's global variables (IPython's user namespace), or None in plain Python."""
    shell = _ipython_shell()
    return getattr(shell, "user_ns", None) if shell is not None else None


def start_lab(
    lab: str,
    *,
    profile: str | Profile = DEFAULT_PROFILE,
    seed: int = 42,
    output_dir: str | Path | None = None,
    device: str | None = None,
    dtype: str = "auto",
    allow_cpu_course: bool = False,
    namespace: MutableMapping[str, Any] | None = None,
    **settings: Any,
) -> LabContext:
    """Set up a lab run and return its LabContext.

    The lab's settings (the names of ``labkit.labs.defaults(lab)``: its parameters
    cell's knobs) come from ``settings`` or, for names not given there, from
    ``namespace`` (default: the notebook's variables, so the parameters cell is
    read as it stands); one left at None takes the profile's value. The
    effective settings are checked, written back into ``namespace``, recorded
    as ``settings``, printed beside the course's and put into ``ctx.profile``'s
    sections and ``ctx.settings``.

    ``dtype`` ("auto", "fp32", "bf16"): the precision of the lab's inference and training
    (:func:`labkit.precision.choose`). "auto" on a CPU measures fp32 against bf16 once per
    machine (about a second, then cached) and uses bf16 only where it ran at least
    1.5x as fast; on CUDA it is bf16 where the GPU supports it. What was chosen, why and
    the two speeds are logged, shown by ``check_setup`` and recorded in ``run_info``.

    ``output_dir`` defaults to ``outputs/<lab>`` under the current directory;
    results.json and every artifact of the run go there. The course profile on
    a machine without a GPU is refused unless ``allow_cpu_course=True``
    (flan-t5-base training on a CPU takes hours), except on the course-shaped
    stand-in (``labkit fixtures --course-shaped``), which exists to try the
    course's sizes on any machine.
    """
    install_short_errors()
    enable_inline_figures()
    _configure_logging()
    labs.get(lab)  # LabkitError naming the known labs
    asked = precision.check_dtype(dtype)  # before any slow work: a misspelt dtype fails at once
    prof = get_profile(profile)
    ns = namespace if namespace is not None else _notebook_namespace()
    given, effective = _effective_settings(lab, prof, ns, settings)
    seed_everything(seed)
    dev, stand_in = _device_for(prof, device, allow_cpu_course)
    out = Path(output_dir if output_dir is not None else Path("outputs") / lab).expanduser().resolve()
    set_results_dir(out)
    choice = precision.choose(asked, dev)
    precision.set_active(choice)
    ctx = LabContext(lab=lab, profile=labs.with_settings(lab, prof, effective), device=dev,
                     dtype=_weights_dtype(choice, dev), seed=seed, output_dir=out, settings=effective, precision=choice)
    if ns is not None:
        ns.update(effective)
    selfcheck.activate(lab, out, {**effective, "seed": seed, "output_dir": str(out)}, profile=prof.name,
                       dataset=effective["dataset"] if given.get("dataset") is not None else None)
    _record_run(ctx, choice, stand_in)
    _log_settings(ctx, given)
    log.info(precision.describe(choice))
    return ctx


def _effective_settings(lab: str, prof: Profile, ns: Mapping[str, Any] | None,
                        settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings given (``settings``, else the notebook's variables) and the effective ones, the dataset checked."""
    given = {k: ns[k] for k in labs.defaults(lab, prof) if ns is not None and k in ns}
    given.update(settings)
    effective = resolve_settings(lab, prof, given)
    dataset = check_dataset(effective["dataset"], splits=labs.get(lab).splits)
    if given.get("dataset") is not None:  # the profile's own stays as it is spelled (cache keys hash it)
        effective["dataset"] = dataset
    return given, effective


def _device_for(prof: Profile, device: str | None, allow_cpu_course: bool) -> "tuple[torch.device, bool]":
    """The device to run on and whether the course profile's models are the course-shaped stand-in (said in the
    log); LabkitError for the course profile on a CPU unless allowed or on the stand-in. The offline profile's
    tiny models get their CPU threads (:func:`offline_threads`)."""
    from labkit.models import uses_stand_in

    dev = choose_device(device)
    stand_in = prof.name == COURSE_PROFILE and uses_stand_in(prof)
    if prof.name == COURSE_PROFILE and dev.type == "cpu" and not (allow_cpu_course or stand_in):
        raise LabkitError(
            "The course profile needs a GPU (flan-t5-base fine-tuning and PPO take hours on a CPU), "
            f"and none was found. Run with profile = \"{DEFAULT_PROFILE}\" here, or on a GPU machine; "
            "to run on the CPU anyway, pass allow_cpu_course = True to labkit.start_lab(...) in the setup cell."
        )
    if stand_in:
        log.warning("STAND-IN: the course profile's models in %s are the course-shaped stand-in (random weights). "
                    "This run measures the course's shapes, time and memory; its text and scores mean nothing.",
                    prof.models_dir)
    if prof.uses_fixtures and dev.type == "cpu":
        import torch

        torch.set_num_threads(offline_threads())
    return dev, stand_in


def _record_run(ctx: LabContext, choice: "precision.Choice", stand_in: bool) -> None:
    """Record the run's ``run_info`` and its effective ``settings`` (results.json)."""
    record("run_info", {"lab": ctx.lab, "profile": ctx.profile.name, "seed": ctx.seed, "device": ctx.device.type,
                        "dtype": str(choice.torch_dtype).replace("torch.", ""),
                        "precision": {**choice.as_dict(), "weights": str(ctx.dtype).replace("torch.", "")},
                        "labkit_version": __version__,
                        **({"models": "course-shaped stand-in (random weights)"} if stand_in else {})})
    record("settings", ctx.settings)
