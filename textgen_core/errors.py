"""User-facing errors.

Every problem a user can cause (a bad file, a bad setting, a damaged checkpoint) is raised as a
:class:`TextGenError` whose message is one line that says what is wrong and where. The CLI prints it
as ``error: <message>`` and exits with status 2; the studio shows it in a dialog.
"""

from __future__ import annotations


class TextGenError(Exception):
    """A problem in the user's input or settings, described in one line."""


class CorpusError(TextGenError):
    """A corpus file cannot be read or parsed (names the file, and the line where it applies)."""


class ConfigError(TextGenError):
    """A setting is missing, unknown or out of range (names the setting)."""


class CheckpointError(TextGenError):
    """A checkpoint is missing, damaged, tampered with or does not fit the project."""


class NotTrainedError(CheckpointError):
    """The project has no trained model yet. The message says only that; each front end adds how
    to train one in its own terms (the CLI: ``textgen train``; the studio: the Training panel)."""


class TrainingError(TextGenError):
    """Training cannot go on (non-finite loss, out of memory, ...); says what to change."""


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of ``exc``'s message, at most ``limit`` characters (its type name when empty):
    how a library error (torch, a damaged file) is quoted inside a one-line TextGenError."""
    return str(exc).splitlines()[0][:limit] if str(exc) else type(exc).__name__
