"""How a lab declares its settings: named sections, each holding the course's values and any other profile's.

A built-in lab's module lists its :class:`Section` s (``SECTIONS``): a frozen dataclass whose defaults are the
course's values, and an instance of it for each profile that runs other values, with the reasons beside them::

    SECTIONS = (section("ppo", course=PPOSettings(), offline=OFFLINE_PPO),)

A lab outside the package declares its knobs in its YAML entry (:func:`from_yaml`), which become one section named
after the lab, built the same way. A section's fields are the lab's parameters-cell names
(``labkit.labs.defaults``); lesson code reads the resolved values as ``ctx.profile.<section>``.
"""
from __future__ import annotations

import dataclasses
import keyword
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from labkit.config import COURSE_PROFILE, PROFILE_NAMES, LabkitError

# What a lab's parameters cell holds besides its knobs (start_lab's own arguments and the dataset): no knob's name.
RESERVED = frozenset({"lab", "profile", "dataset", "seed", "output_dir", "device", "dtype", "allow_cpu_course",
                      "namespace"})
# The kinds of value a knob may hold, as a parameters cell and results.json write them.
_KINDS = {bool: "True or False", int: "an integer", float: "a number", str: "a string", list: "a list"}


@dataclass(frozen=True)
class Section:
    """One part of a lab's settings, reached as ``profile.<name>``: the course's value and other profiles'.

    ``course``: a frozen dataclass instance whose fields are parameters-cell knobs, or, with ``knobs=False``, any
    value that lesson code reads from the profile but no parameters cell names (lab 3's ``lora``).
    ``profiles``: another profile's name -> its value; a profile not named runs the course's."""

    name: str
    course: Any
    profiles: Mapping[str, Any] = field(default_factory=dict)
    knobs: bool = True

    def value(self, profile: str) -> Any:
        """This section's value in the named profile."""
        return self.profiles.get(profile, self.course)

    def knob_names(self) -> list[str]:
        """The parameters-cell names this section holds (none for ``knobs=False``)."""
        return [f.name for f in dataclasses.fields(self.course)] if self.knobs else []


def section(name: str, *, course: Any, knobs: bool = True, **profiles: Any) -> Section:
    """Declare a section: ``section("ppo", course=PPOSettings(), offline=PPOSettings(...))``.

    LabkitError for a profile that does not exist or, with ``knobs``, values that are not dataclass instances of
    the course's class."""
    unknown = sorted(set(profiles) - set(PROFILE_NAMES))
    if unknown:
        raise LabkitError(f"Section {name!r} gives values for profile(s) {unknown}, which do not exist; the profiles "
                          f"are {', '.join(PROFILE_NAMES)} (the course's values are the section's course=).")
    if knobs and not all(type(v) is type(course) and dataclasses.is_dataclass(v) for v in (course, *profiles.values())):
        raise LabkitError(f"Section {name!r} holds knobs, so each profile's value must be an instance of one frozen "
                          f"dataclass (the course's: {type(course).__name__}); pass knobs=False for another value.")
    return Section(name, course, dict(profiles), knobs)


def plain(value: Any) -> Any:
    """Tuples as lists: the form a parameters cell and results.json hold."""
    return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def knob_values(value: Any) -> dict[str, Any]:
    """A knobs section's value as ``{parameters-cell name: plain value}``."""
    return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}


def with_knobs(value: Any, settings: Mapping[str, Any]) -> Any:
    """``value`` (a knobs section's dataclass) with the fields ``settings`` gives (None: keep) replaced, a list
    given for a tuple field as a tuple."""
    names = {f.name for f in dataclasses.fields(value)}
    update = {k: tuple(v) if isinstance(getattr(value, k), tuple) else v
              for k, v in settings.items() if k in names and v is not None}
    return dataclasses.replace(value, **update)


# ---------------------------------------------------------------- an external lab's YAML

def from_yaml(lab_id: str, spec: Any, where: str) -> tuple[Section, ...]:
    """An external lab's ``settings:`` as one section named after the lab (``profile.lab4``), a frozen dataclass
    made for it (``Lab4Settings``). Each knob maps to its value in the course profile and, where another profile
    runs a different one, that value and why::

        settings:
          n_eval: {course: 100, offline: 12, why: "the offline test split is small; 12 keeps the toy lab in seconds"}
          show_plot: true                       # one value for every profile

    LabkitError saying what is wrong, what was expected and how to fix it."""
    if spec is None or spec == [] or spec == {}:
        return ()
    if not isinstance(spec, dict):
        raise LabkitError(f"{where}: the settings of {lab_id} are {spec!r}; expected a mapping of each knob to its "
                          "values, e.g. 'settings: {n_eval: {course: 100, offline: 12, why: \"...\"}}' "
                          "(or leave settings out when the lab has none besides the dataset).")
    columns, others = [], {p: {} for p in PROFILE_NAMES if p != COURSE_PROFILE}
    for name, values in spec.items():
        kind, by_profile, why = _knob(lab_id, name, values, where)
        course = by_profile[COURSE_PROFILE]
        columns.append((name, kind, field(default=course, metadata={"why": why} if why else {})))
        for profile, value in by_profile.items():
            if profile != COURSE_PROFILE:
                others[profile][name] = value
    cls = dataclasses.make_dataclass(f"{lab_id.capitalize()}Settings", columns, frozen=True)
    cls.__doc__ = f"{lab_id}'s settings, declared in its YAML entry (defaults: the course's values)."
    return (section(lab_id, course=cls(), **{p: cls(**v) for p, v in others.items() if v}),)


def _knob(lab_id: str, name: Any, values: Any, where: str) -> tuple[type, dict[str, Any], str]:
    """One knob of :func:`from_yaml`: its Python type, its value by profile (the course's first) and the why."""
    here = f"{where}: {lab_id}'s setting {name!r}"
    if not isinstance(name, str) or not re.fullmatch(r"[a-z_][a-z0-9_]*", name) or keyword.iskeyword(name):
        raise LabkitError(f"{here} is not a usable name; a knob is a parameters-cell variable: lower-case letters, "
                          "digits and underscores (e.g. n_eval).")
    if name in RESERVED:
        raise LabkitError(f"{here} is one of the names every lab's parameters cell already has "
                          f"({', '.join(sorted(RESERVED))}); choose another name.")
    if not isinstance(values, dict):
        values = {COURSE_PROFILE: values}  # one value for every profile
    allowed = {*PROFILE_NAMES, "why"}
    if COURSE_PROFILE not in values or set(values) - allowed:
        raise LabkitError(f"{here} has {sorted(map(str, values))}; expected {COURSE_PROFILE} (the course's value) and "
                          f"optionally {', '.join(sorted(allowed - {COURSE_PROFILE}))}, e.g. "
                          f"{{{COURSE_PROFILE}: 100, offline: 12, why: \"...\"}}.")
    kind = _kind(values[COURSE_PROFILE], f"{here}'s {COURSE_PROFILE} value")
    by_profile = {p: _as(kind, values[p], f"{here}'s {p} value") for p in PROFILE_NAMES if p in values}
    by_profile = {COURSE_PROFILE: by_profile.pop(COURSE_PROFILE), **by_profile}
    why = values.get("why")
    differs = [p for p, v in by_profile.items() if v != by_profile[COURSE_PROFILE]]
    if differs and not (isinstance(why, str) and why.strip()):
        raise LabkitError(f"{here} runs another value than the course's in {', '.join(differs)} but says not why; "
                          "add why: \"<the reason>\" beside the values (a non-course value keeps its reason beside it).")
    return (tuple if kind is list else kind), by_profile, (why or "").strip()


def _kind(value: Any, what: str) -> type:
    """The kind of a knob's value (bool, int, float, str or list); LabkitError for anything else."""
    for kind in _KINDS:
        if type(value) is kind and (kind is not list or all(isinstance(v, (bool, int, float, str)) for v in value)):
            return kind
    raise LabkitError(f"{what} is {value!r}; expected {', '.join(_KINDS.values())} of plain values (None is not a "
                      "value: a parameters cell's None means 'the profile's value').")


def _as(kind: type, value: Any, what: str) -> Any:
    """``value`` as a knob of ``kind`` holds it (an integer for a number becomes a float, a list a tuple)."""
    if kind is float and type(value) is int:
        value = float(value)
    if _kind(value, what) is not kind:
        raise LabkitError(f"{what} is {value!r}, not {_KINDS[kind]} like the course's value; give every profile "
                          "a value of one kind.")
    return tuple(value) if kind is list else value
