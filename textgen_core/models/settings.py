"""How a model setting presents itself: label, help, choices and range, kept with the config field.

A config declares a field with :func:`setting` instead of a bare default::

    score: str = setting("general", "Attention score", "how a decoder state is compared with the "
                         "encoder states", choices=("dot", "general", "concat"))

The studio's model panel builds its editors from this (a drop-down for choices, a spin box with the
range, the help as tooltip), so a new architecture needs nothing in the panel. Torch-free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SettingInfo:
    """What the studio shows for one setting."""

    label: str
    help: str
    choices: tuple[str, ...] = ()
    range: tuple[float, float, float] | None = None   # (minimum, maximum, step)


def setting(default: Any, label: str, help: str, *, choices: Sequence[str] = (),
            range: tuple[float, float, float] | None = None) -> Any:
    """A dataclass field with ``default`` and its :class:`SettingInfo` in the field's metadata."""
    info = SettingInfo(label, help, tuple(choices), range)
    return dataclasses.field(default=default, metadata={"setting": info})


def setting_info(field: dataclasses.Field) -> SettingInfo | None:
    """The :class:`SettingInfo` of a config field, if it was declared with :func:`setting`."""
    return field.metadata.get("setting")
