"""Profiles (where models and data come from, what every lab shares), paths, device/dtype choice, seeding and
the error type learners see.

Two profiles share one code path:

* ``offline`` (default): tiny local models that ``labkit.fixtures`` trains from
  ``data/``; no network, a 2-core CPU runs every lab in minutes.
* ``course``: the course's google/flan-t5-base, knkarthick/dialogsum and
  facebook/roberta-hate-speech-dynabench-r4-target; from the Hugging Face Hub, or, with ``LABKIT_MODELS=DIR``,
  from the folders ``DIR/<hub id>/`` (a classroom without internet; see :func:`models_dir`).

Each lab's settings (the course's hyperparameters, the offline profile's and the reasons for them) live beside
the lab, not here: ``labkit.lab_settings`` for the built-in labs, an external lab's YAML entry for its own
(:mod:`labkit.labs`); ``labkit.profiles.get_profile`` puts them into a profile.

This module imports no torch at module level, so ``import labkit`` stays fast.
"""
from __future__ import annotations

import contextlib
import difflib
import os
import random
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

if TYPE_CHECKING:  # pragma: no cover
    import torch

# The profiles' names, each written once here.
OFFLINE_PROFILE = "offline"
COURSE_PROFILE = "course"  # the profile whose settings are the course's (a lab's settings' dataclass defaults)
DEFAULT_PROFILE = OFFLINE_PROFILE
MAX_SOURCE_TOKENS = 512  # the T5 encoder limit the course's prompts ran into


class LabkitError(Exception):
    """An error the user can fix. The message says what was wrong, what was
    expected and how to fix it; notebooks show it without a long traceback."""


# ---------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    """Where a profile's models and data come from, what every lab shares, and each lab's settings.

    ``model``, ``tokenizer`` and ``toxicity_model`` are Hub ids (course) or
    local directories (offline; course with ``LABKIT_MODELS``, then
    ``models_dir`` names that folder); both are loaded with ``from_pretrained``.
    ``summarizer_adapter``: a LoRA adapter folder lab 3 starts from instead of
    training its summarizer (the course loaded its Lab 2 checkpoint); None or a
    missing folder: train it once and cache it.
    ``weight_decay`` (AdamW's, lab 2's trainings and lab 3's starting summarizer) and ``max_source_tokens``
    are shared by the labs.
    ``dataset_splits``: the splits a dataset given as one file stands in for
    (``labkit.labs.with_settings`` sets the lab's; see ``labkit.data.load_dialogsum``).
    ``sections``: each lab's settings for this profile by section name, reached as attributes
    (``profile.ppo``, ``profile.fine_tuning``). The labs declare them beside themselves (``labkit.lab_settings``,
    or an external lab's YAML) and ``labkit.profiles.get_profile`` fills them in; :func:`base_profile` leaves
    them empty.
    """

    name: str
    model: str
    tokenizer: str
    dataset: str
    toxicity_model: str
    uses_fixtures: bool
    weight_decay: float = 0.01
    max_source_tokens: int = MAX_SOURCE_TOKENS
    description: str = ""
    models_dir: str | None = None
    summarizer_adapter: str | None = None
    dataset_splits: tuple[str, ...] = ()
    sections: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)

    def __getattr__(self, name: str) -> Any:
        # Only reached when ``name`` is not a field: a lab's section (``profile.ppo``).
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            return sections[name]
        if name.startswith("__") or sections is None:
            raise AttributeError(name)
        raise AttributeError(f"Profile {self.name!r} has no {name!r}: it is neither a field nor a section of a "
                             f"registered lab's settings (sections: {', '.join(sections) or 'none resolved'}). "
                             "labkit.profiles.get_profile resolves the labs' sections.")

    def with_sections(self, **sections: Any) -> "Profile":
        """This profile with some sections replaced (or added)."""
        return replace(self, sections={**self.sections, **sections})


COURSE_MODEL = "google/flan-t5-base"
COURSE_DATASET = "knkarthick/dialogsum"
COURSE_TOXICITY_MODEL = "facebook/roberta-hate-speech-dynabench-r4-target"
# The course's Lab 3 started from its Lab 2 LoRA checkpoint ("peft-dialogue-summary-checkpoint-from-s3");
# under LABKIT_MODELS a folder of this name plays that part.
COURSE_SUMMARIZER_ADAPTER = "peft-dialogue-summary-checkpoint"
MODELS_ENV = "LABKIT_MODELS"


def repo_root() -> Path:
    """The checkout this package lives in (labkit is installed editable)."""
    return Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The project's own datasets; ``LABKIT_DATA`` overrides (e.g. for a grader)."""
    return Path(os.environ.get("LABKIT_DATA") or repo_root() / "data")


def labkit_home() -> Path:
    """Cache for fixtures and derived artifacts; ``LABKIT_HOME`` overrides
    the default ``~/.cache/labkit``."""
    env = os.environ.get("LABKIT_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "labkit"


def fixture_dir(name: str = "") -> Path:
    """Directory of one offline fixture (``tokenizer``, ``policy``, ``classifier``)."""
    base = labkit_home() / "fixtures"
    return base / name if name else base


def models_dir() -> Path | None:
    """The folder ``LABKIT_MODELS`` names, or None. With it, the course profile loads each model from
    ``models_dir()/<hub id>/`` (``google/flan-t5-base/``, ``facebook/roberta-hate-speech-dynabench-r4-target/``,
    each saved with ``save_pretrained``) instead of the Hugging Face Hub, and lab 3 starts from
    ``models_dir()/peft-dialogue-summary-checkpoint/`` when that adapter is there."""
    env = os.environ.get(MODELS_ENV, "").strip()
    return Path(env).expanduser().resolve() if env else None


def shared_dialogsum_path() -> Path:
    """The real DialogSum validation split beside the checkout (may be absent)."""
    env = os.environ.get("LABKIT_DIALOGSUM_DEV")
    return Path(env) if env else repo_root().parent / "shared" / "data" / "dialogsum" / "dialogsum.dev.jsonl"


def _offline_profile(name: str) -> Profile:
    # The labs' offline settings live beside each lab (labkit.lab_settings), with the reasons for them.
    return Profile(
        name=name,
        model=str(fixture_dir("policy")),
        tokenizer=str(fixture_dir("policy")),
        dataset=str(data_dir() / "dialogsum-mini"),
        toxicity_model=str(fixture_dir("classifier")),
        uses_fixtures=True,
        weight_decay=0.01,
        description="tiny local models trained from data/ (no network, CPU minutes)",
    )


def _course_profile(name: str) -> Profile:
    local = models_dir()
    if local is None:
        return Profile(
            name=name,
            model=COURSE_MODEL,
            tokenizer=COURSE_MODEL,
            dataset=COURSE_DATASET,
            toxicity_model=COURSE_TOXICITY_MODEL,
            uses_fixtures=False,
            description="the course's flan-t5-base, DialogSum and RoBERTa hate-speech model (needs the Hub; a GPU helps)",
        )
    return Profile(
        name=name,
        model=str(local / COURSE_MODEL),
        tokenizer=str(local / COURSE_MODEL),
        dataset=COURSE_DATASET,
        toxicity_model=str(local / COURSE_TOXICITY_MODEL),
        uses_fixtures=False,
        models_dir=str(local),
        summarizer_adapter=str(local / COURSE_SUMMARIZER_ADAPTER),
        description=f"the course's flan-t5-base and RoBERTa hate-speech model from {local} ({MODELS_ENV}); "
                    "DialogSum from the dataset parameter (a GPU helps)",
    )


_PROFILE_FACTORIES = {OFFLINE_PROFILE: _offline_profile, COURSE_PROFILE: _course_profile}
PROFILE_NAMES = tuple(_PROFILE_FACTORIES)


def config_from_settings(cls: type, settings: Any, overrides: dict[str, Any], what: str) -> Any:
    """``cls`` (a run's config, a subclass of ``settings``' dataclass) from a profile's ``settings`` with
    ``overrides`` replaced; LabkitError naming any override ``cls`` does not know (``what``: "PPO", "DPO")."""
    known = [f.name for f in fields(cls)]
    unknown = set(overrides) - set(known)
    if unknown:
        raise LabkitError(f"Unknown {what} setting(s) {sorted(unknown)}; known: {known}.")
    base = {f.name: getattr(settings, f.name) for f in fields(settings)}
    return cls(**{**base, **overrides})


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """' Did you mean X?' for a close match, else ''."""
    match = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" Did you mean {match[0]!r}?" if match else ""


def base_profile(name: str | Profile = DEFAULT_PROFILE, **overrides: Any) -> Profile:
    """The named profile without the labs' settings (``sections`` empty: where its models and data come from and
    what the labs share), optionally with some fields replaced. ``labkit.profiles.get_profile`` adds the labs'
    settings; use it unless you need only the models and data.

    Raises LabkitError for an unknown name, listing the known ones.
    """
    if isinstance(name, Profile):
        return replace(name, **overrides) if overrides else name
    key = str(name).strip().lower()
    if key not in _PROFILE_FACTORIES:
        raise LabkitError(
            f"Unknown profile {name!r}. Expected one of {', '.join(PROFILE_NAMES)}."
            f"{suggest(key, PROFILE_NAMES)} Set profile = \"{DEFAULT_PROFILE}\" in the parameters cell "
            "to run on this machine without a network."
        )
    profile = _PROFILE_FACTORIES[key](key)
    return replace(profile, **overrides) if overrides else profile


def choose_device(prefer: str | None = None) -> "torch.device":
    """CUDA, then MPS, then CPU; ``prefer`` ('cpu', 'cuda', 'mps') forces one."""
    import torch

    if prefer:
        wanted = prefer.lower()
        if wanted == "cuda" and not torch.cuda.is_available():
            raise LabkitError("device='cuda' was asked for but no CUDA GPU is visible. Use device=None to pick automatically.")
        if wanted == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise LabkitError("device='mps' was asked for but Apple MPS is not available. Use device=None to pick automatically.")
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def choose_dtype(device: "torch.device | str") -> "torch.dtype":
    """bf16 on a CUDA GPU that supports it; fp32 elsewhere (CPU bf16 matmul is slow
    on CPUs without AMX/AVX-512, and MPS bf16 support varies)."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run repeats exactly."""
    import numpy as np
    import torch

    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise LabkitError(f"seed must be a non-negative integer, got {seed!r}. Example: seed = 42.")
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block on ``count`` torch CPU threads (``None``: leave them as they
    are) and restore the previous count afterwards, even when the block fails."""
    import torch

    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
