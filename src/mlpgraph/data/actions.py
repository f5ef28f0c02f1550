"""Human3.6M action names: the 15 families and how the community's file names map onto them."""

from __future__ import annotations

import re

ACTION_FAMILIES: tuple[str, ...] = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing", "Purchases",
    "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking", "WalkTogether",
)  # fmt: skip

_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}


def action_family(action: str) -> str:
    """The family of an action name: ``'Walking 1'`` -> ``'Walking'``, ``'TakingPhoto 2'`` -> ``'Photo'``.

    Names outside the 15 Human3.6M families (custom data sets) are their own family, with a
    trailing take number removed.
    """
    base = re.sub(r"\s+[\d_.-]+$", "", action.strip()) or action.strip()
    return _ALIASES.get(base, base)
