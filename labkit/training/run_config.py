"""A lesson's run config built from a lab's settings and validated the one way PPO's and DPO's configs share.

A run config is a frozen dataclass that extends a lab's settings dataclass with the plumbing's fields (seed,
token limits, ...) and mixes in :class:`RunConfig`: ``from_settings`` builds it from the settings with some
fields replaced (an unknown name is an error), ``problems`` lists what cannot work and ``validated`` raises
them all at once, in words a learner can act on in the parameters cell.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar, TypeVar

from labkit.config import LabkitError, config_from_settings

C = TypeVar("C", bound="RunConfig")


class RunConfig:
    """The mixin of a run config: ``what`` names the run in messages ("PPO", "DPO"), ``problems`` is
    overridden by each config with its own rules."""

    what: ClassVar[str] = "run"

    @classmethod
    def from_settings(cls: type[C], settings: Any, **overrides: Any) -> C:
        """A validated config from a lab's ``settings`` with ``overrides`` replaced (LabkitError naming any
        override the config does not know, or every setting that cannot work)."""
        return config_from_settings(cls, settings, overrides, cls.what).validated()

    def problems(self) -> list[str]:
        """What cannot work in this config, one phrase each (empty: it can run)."""
        return []

    def validated(self: C) -> C:
        """Return self, or raise LabkitError naming every setting that cannot work."""
        problems = self.problems()
        if problems:
            raise LabkitError(f"Invalid {self.what} settings: " + "; ".join(problems)
                              + ". Fix them in the parameters cell.")
        return self

    def as_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict (for records)."""
        return asdict(self)  # type: ignore[call-overload]
