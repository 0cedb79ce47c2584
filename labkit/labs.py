"""The lab registry: every lab the workbook has, listed once.

Each :class:`Lab` says where its notebook and rubric are, its title, the
prefix of its cell ids, the dataset splits it reads, its settings and how to
pick headline numbers from its results. Session, run, release, grading and the
CLI ask this module; none keeps its own list.

A lab owns its settings: named sections (:class:`labkit.lab_settings.declare.Section`), each a frozen
dataclass whose fields are the lab's parameters-cell knobs, with the course's values as its defaults and
each other profile's values beside it. A built-in lab's live in its module of :mod:`labkit.lab_settings`
(tied to its id here), the reasons for each non-course value beside the value. :func:`defaults` reads a
lab's settings for a profile, keyed by the names of its parameters cell (a knob left at ``None`` there means
"the profile's value"); :func:`sections` gives every registered lab's sections for a profile, which
``labkit.profiles.get_profile`` puts into the profile (``profile.ppo``).

More labs (a course's own, a test's toy lab) are added with :func:`register`,
or by naming YAML files that list them in ``LABKIT_LABS`` (``os.pathsep``
separated), which reaches the processes a run or a grade starts too::

    labs:
      - id: lab4                          # lower-case letters and digits; prefixes the cell ids
        notebook: lab4_word_counts.ipynb  # paths are relative to this file
        title: Count the words of the human summaries
        rubric: lab4.yaml                 # default: <id>.yaml; its checks beside it (lab4.py)
        settings:                         # its knobs (default: none but dataset): the course's value, and
          n_eval: {course: 100, offline: 12, why: "the offline test split is small"}   # another profile's and why
        splits: [test]                    # dataset splits it reads (default: test)

An external lab's knobs become one section named after it (``profile.lab4``, a ``Lab4Settings`` dataclass), so
``start_lab``, ``labkit run -p``, the printed table and ``results.json`` treat them as a built-in lab's.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from labkit.config import DEFAULT_PROFILE, LabkitError, Profile, base_profile, repo_root
from labkit.lab_settings import declare, detox, fine_tuning, prompting
from labkit.lab_settings.declare import Section

EXTRA_LABS_ENV = "LABKIT_LABS"
RUBRIC_DIR = Path(__file__).resolve().parent / "rubrics"
Headline = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Lab:
    """One lab: its id (``lab2``: the CLI's name, the cell-id prefix, ``run_info.lab``) and where its parts are."""

    id: str
    notebook: Path                       # the instructor edition
    title: str
    rubric: Path                         # the default rubric (YAML); its checks live beside it (same stem, .py)
    settings: tuple[Section, ...] = ()   # its settings' sections (labkit.lab_settings)
    splits: tuple[str, ...] = ("test",)  # dataset splits the lab reads
    headline: Headline | None = None     # a few numbers of its results for the run summary
    source: str = ""                     # the file that registered it ("" for the built-in labs)

    @property
    def cell_prefix(self) -> str:
        """Every cell id of the lab starts with this (``lab2-``): submissions are matched to labs by it."""
        return f"{self.id}-"

    @property
    def checks(self) -> Path:
        """The Python file of the lab's own rubric checks, beside its YAML."""
        return self.rubric.with_suffix(".py")


# ---------------------------------------------------------------- headline numbers

def _rouge1(block: Any) -> Any:
    v = block.get("rouge1") if isinstance(block, dict) else None
    return v.get("mean") if isinstance(v, dict) else v


def _lab1_headline(results: Mapping[str, Any]) -> dict[str, Any]:
    by = results.get("rouge_by_strategy")
    scores = {k: _rouge1(v) for k, v in by.items() if isinstance(_rouge1(v), (int, float))} if isinstance(by, dict) else {}
    if not scores:
        return {}
    best = max(scores, key=scores.get)  # type: ignore[arg-type]
    return {"best strategy": best, "ROUGE-1 (best)": round(scores[best], 4)}


def _lab2_headline(results: Mapping[str, Any]) -> dict[str, Any]:
    rouge = results.get("rouge")
    if not isinstance(rouge, dict):
        return {}
    out = {}
    for model in ("original", "full_ft", "lora", "prompt_tuning", "qlora"):  # qlora only where it ran
        v = _rouge1(rouge.get(model))
        if isinstance(v, (int, float)):
            out[f"ROUGE-1 {model}"] = round(v, 4)
    return out


def _lab3_headline(results: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key in ("toxicity_before", "toxicity_after", "toxicity_after_dpo"):
        v = results.get(key, {}).get("mean") if isinstance(results.get(key), dict) else None
        if isinstance(v, (int, float)):
            out[key.replace("_", " ")] = round(v, 4)
    return out


# ---------------------------------------------------------------- the registry

def _builtin() -> dict[str, Lab]:
    labs_dir = repo_root() / "labs"
    entries = [
        Lab("lab1", labs_dir / "lab1_prompt_engineering.ipynb", "Summarize dialogues with prompt engineering",
            RUBRIC_DIR / "lab1.yaml", settings=prompting.SECTIONS, splits=("test",), headline=_lab1_headline),
        Lab("lab2", labs_dir / "lab2_fine_tuning.ipynb", "Fine-tune a summarizer: full fine-tuning, LoRA and prompt tuning",
            RUBRIC_DIR / "lab2.yaml", settings=fine_tuning.SECTIONS, splits=("train", "test"), headline=_lab2_headline),
        Lab("lab3", labs_dir / "lab3_ppo_detox.ipynb", "Fine-tune a summarizer to be less toxic with PPO",
            RUBRIC_DIR / "lab3.yaml", settings=detox.SECTIONS, splits=("train",), headline=_lab3_headline),
    ]
    return {lab.id: lab for lab in entries}


_REGISTRY: dict[str, Lab] = {}
_LOADED: set[str] = set()   # extension files imported so far
_loading = ""               # the extension file being imported (stamped on what it registers)


def _registry() -> dict[str, Lab]:
    """The registry, in step with ``LABKIT_LABS``: files newly named there are imported, the labs of files no
    longer named are dropped."""
    global _loading
    if not _REGISTRY:
        _REGISTRY.update(_builtin())
    listed = [str(p) for p in extension_files()]
    for gone in _LOADED - set(listed):
        _LOADED.discard(gone)
        for lab_id in [k for k, v in _REGISTRY.items() if v.source == gone]:
            del _REGISTRY[lab_id]
    for path in listed:
        if path not in _LOADED:
            _LOADED.add(path)
            _loading = path
            try:
                _load_extension(Path(path))
            except BaseException:
                _LOADED.discard(path)  # say so again on the next look-up, until the file is fixed
                raise
            finally:
                _loading = ""
    return _REGISTRY


def extension_files() -> list[Path]:
    """The files named in ``LABKIT_LABS`` (each lists more labs)."""
    raw = os.environ.get(EXTRA_LABS_ENV, "")
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]


_LAB_FIELDS = {"id", "notebook", "title", "rubric", "settings", "splits"}


def _load_extension(path: Path) -> None:
    """Register the labs a YAML file lists (see the module docstring); LabkitError naming what is wrong."""
    import yaml

    where = f"{EXTRA_LABS_ENV} names {path}"
    if not path.is_file():
        raise LabkitError(f"{where}, which does not exist. Expected a YAML file listing labs; fix or unset it.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise LabkitError(f"{where}, which is not valid YAML: {err}") from None
    entries = raw.get("labs") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise LabkitError(f"{where}, which has no 'labs' list (each entry: id, notebook, title[, rubric, settings, "
                          "splits]).")
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not {"id", "notebook", "title"} <= set(entry) or set(entry) - _LAB_FIELDS:
            raise LabkitError(f"{where}: lab #{i} needs id, notebook and title, and may have "
                              f"{', '.join(sorted(_LAB_FIELDS - {'id', 'notebook', 'title'}))}; got {entry!r}.")
        lab_id = str(entry["id"])
        register(Lab(id=lab_id, notebook=path.parent / str(entry["notebook"]), title=str(entry["title"]),
                     rubric=path.parent / str(entry.get("rubric") or f"{lab_id}.yaml"),
                     settings=declare.from_yaml(lab_id, entry.get("settings"), where),
                     splits=tuple(entry.get("splits") or ("test",))))


def register(lab: Lab) -> Lab:
    """Add a lab to the registry (or replace one registered from the same file); returns it."""
    if not re.fullmatch(r"[a-z][a-z0-9]*", lab.id):
        raise LabkitError(f"Lab id {lab.id!r} must be lower-case letters and digits (e.g. lab4): it prefixes cell ids.")
    if _loading:
        lab = dataclasses.replace(lab, source=_loading)
    registry = _REGISTRY if _loading else _registry()
    old = registry.get(lab.id)
    if old is not None and old.source != lab.source:
        raise LabkitError(f"Lab {lab.id!r} is already registered ({old.notebook}); choose another id.")
    _check_settings(lab, [other for other in registry.values() if other.id != lab.id])
    registry[lab.id] = lab
    return lab


def _check_settings(lab: Lab, others: list[Lab]) -> None:
    """LabkitError when the lab's sections or knobs would shadow a profile's field, another lab's section, each
    other, or a name every parameters cell has."""
    taken = {f.name: "a field of every profile" for f in dataclasses.fields(Profile)}
    taken.update({s.name: f"a section of {other.id}" for other in others for s in other.settings})
    for s in lab.settings:
        if s.name in taken:
            raise LabkitError(f"{lab.id}'s settings section {s.name!r} is already {taken[s.name]}; name it otherwise "
                              "(an external lab's section is named after the lab: choose another lab id).")
        taken[s.name] = f"a section of {lab.id}"
    knobs = [k for s in lab.settings for k in s.knob_names()]
    twice = sorted({k for k in knobs if knobs.count(k) > 1} | (set(knobs) & declare.RESERVED))
    if twice:
        raise LabkitError(f"{lab.id}'s knob(s) {twice} are named twice among its sections or are names every "
                          f"parameters cell already has ({', '.join(sorted(declare.RESERVED))}); rename them.")


def unregister(lab_id: str) -> None:
    """Remove a lab that :func:`register` added (built-in labs stay)."""
    if lab_id in _builtin():
        raise LabkitError(f"{lab_id} is a built-in lab and cannot be removed.")
    _registry().pop(lab_id, None)


def all_labs() -> list[Lab]:
    """Every registered lab, in order (the built-in three first)."""
    return list(_registry().values())


def ids() -> list[str]:
    """The registered lab ids, in order."""
    return list(_registry())


def find(lab_id: str) -> Lab | None:
    """The lab with this id, or None."""
    return _registry().get(str(lab_id))


def get(lab_id: str) -> Lab:
    """The lab with this id; LabkitError listing the known ones (with a close match) otherwise."""
    lab = find(lab_id)
    if lab is None:
        known = ids()
        match = difflib.get_close_matches(str(lab_id), known, n=1)
        hint = f" Did you mean {match[0]!r}?" if match else ""
        raise LabkitError(f"Unknown lab {lab_id!r}; expected one of {', '.join(known)}.{hint}")
    return lab


def lab_of_notebook(notebook: str | os.PathLike[str]) -> str:
    """The lab a notebook file belongs to: its registered file name, else the id its name starts with
    ('lab2' for '.../lab2_fine_tuning.ipynb' or 'lab2_copy.ipynb'), else the leading ``labN``, else the stem."""
    name = Path(notebook).name
    for lab in all_labs():
        if lab.notebook.name == name:
            return lab.id
    stem = Path(notebook).stem
    for lab in all_labs():
        if re.match(rf"{re.escape(lab.id)}(?![a-z0-9])", stem):
            return lab.id
    m = re.match(r"(lab\d+)", stem)
    return m.group(1) if m else stem


def lab_of_cells(cell_ids: list[str]) -> str | None:
    """The registered lab whose cell-id prefix most of these ids carry, or None."""
    counts: dict[str, int] = {}
    for lab in all_labs():
        n = sum(1 for cid in cell_ids if str(cid).startswith(lab.cell_prefix))
        if n:
            counts[lab.id] = n
    return max(counts, key=counts.get) if counts else None  # type: ignore[arg-type]


# ---------------------------------------------------------------- settings

def sections(profile: str) -> dict[str, Any]:
    """Every registered lab's settings sections in the named profile (``{"ppo": PPOSettings(...), ...}``)."""
    return {s.name: s.value(profile) for lab in all_labs() for s in lab.settings}


def _section_values(entry: Lab, profile: str | Profile) -> tuple[Profile, dict[str, Any]]:
    """The profile (a name resolved without the labs' settings) and the lab's sections in it: the profile's own
    where it holds them (a run's, say), else the lab's declared values for that profile."""
    prof = profile if isinstance(profile, Profile) else base_profile(profile)
    return prof, {s.name: prof.sections.get(s.name, s.value(prof.name)) for s in entry.settings}


def defaults(lab: str, profile: str | Profile = DEFAULT_PROFILE) -> dict[str, Any]:
    """The lab's settings in ``profile``, keyed by its parameters cell's names (``dataset`` first).

    >>> defaults("lab2", "course")["learning_rate_full"]
    1e-05
    """
    entry = get(lab)
    prof, values = _section_values(entry, profile)
    out: dict[str, Any] = {"dataset": prof.dataset}
    for s in entry.settings:
        if s.knobs:
            out.update(declare.knob_values(values[s.name]))
    return out


def with_settings(lab: str, profile: Profile, settings: Mapping[str, Any]) -> Profile:
    """``profile`` with the lab's sections (and dataset) replaced by ``settings`` (e.g. a run's effective ones),
    so lesson code reading ``ctx.profile.ppo`` sees what the lab runs with; ``dataset_splits`` becomes the
    lab's splits, which a dataset given as one file then stands in for."""
    entry = get(lab)
    prof, values = _section_values(entry, profile)
    changes: dict[str, Any] = {"dataset_splits": entry.splits}  # what one dataset file stands in for
    if settings.get("dataset") is not None:
        changes["dataset"] = str(settings["dataset"])
    updated = {s.name: declare.with_knobs(values[s.name], settings) if s.knobs else values[s.name]
               for s in entry.settings}
    return dataclasses.replace(prof, **changes).with_sections(**updated)
