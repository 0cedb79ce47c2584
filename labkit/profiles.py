"""A profile with every registered lab's settings: where models and data come from (``labkit.config``) and each
lab's sections for that profile (``labkit.labs``), reached as ``profile.ppo``, ``profile.fine_tuning``..."""
from __future__ import annotations

import dataclasses
from typing import Any

from labkit import labs
from labkit.config import DEFAULT_PROFILE, LabkitError, Profile, base_profile, suggest


def get_profile(name: str | Profile = DEFAULT_PROFILE, **overrides: Any) -> Profile:
    """The named profile with every registered lab's settings sections, optionally with some fields or whole
    sections replaced (``get_profile("offline", lora_learning_rate=0.5)``). A Profile given is completed with
    the sections it lacks.

    Raises LabkitError for an unknown profile name (listing the known ones) or an unknown override.
    """
    prof = base_profile(name)
    declared = labs.sections(prof.name)
    prof = prof.with_sections(**{k: v for k, v in declared.items() if k not in prof.sections})
    if not overrides:
        return prof
    fields = {f.name for f in dataclasses.fields(Profile)} - {"sections"}
    unknown = sorted(set(overrides) - fields - set(prof.sections))
    if unknown:
        known = sorted(fields | set(prof.sections))
        raise LabkitError(f"get_profile got {', '.join(unknown)}, which is neither a field of a profile nor a section "
                          f"of a registered lab's settings; expected one of {', '.join(known)}."
                          f"{suggest(unknown[0], known)}")
    prof = dataclasses.replace(prof, **{k: v for k, v in overrides.items() if k in fields})
    return prof.with_sections(**{k: v for k, v in overrides.items() if k not in fields})
