"""Lab 1's settings (prompt engineering): the course's values as the defaults, the offline profile's beside them."""
from __future__ import annotations

from dataclasses import dataclass

from labkit.lab_settings.declare import section


@dataclass(frozen=True)
class PromptingSettings:
    """Lab 1's knobs (course: dialogue 200 as the target, shots 40/80/120, 50 new tokens)."""

    example_indices: tuple[int, ...] = (40, 200)     # test dialogues to look at; the last is the target
    shot_indices: tuple[int, ...] = (40, 80, 120)    # worked examples (one-shot uses the first)
    max_new_tokens: int = 50
    temperatures: tuple[float, ...] = (0.1, 0.5, 1.0)
    n_eval: int = 40                                 # test dialogues scored per strategy


# The offline test split has 200 dialogues, so the target is dialogue 150.
OFFLINE = PromptingSettings(example_indices=(40, 150))

SECTIONS = (section("prompting", course=PromptingSettings(), offline=OFFLINE),)
