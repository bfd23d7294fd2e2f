"""The one exception hierarchy of CP-WhisperX.

Every error says which file or service is at fault, what is wrong, and what the user can do.
Assets catch :class:`CpwError` subclasses to record them as events before re-raising, so a bad
title fails alone and leaves a readable trace in ``input_errors``.
"""

from __future__ import annotations

from pathlib import Path


class CpwError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(CpwError):
    """A setting is missing or wrong; the message names the setting and its variable."""


class ModelNotFoundError(ConfigError):
    """A Whisper model name does not resolve to a local CTranslate2 directory."""


class MediaError(CpwError):
    """A media file cannot be used; ``path`` is the file and ``problem`` says why."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class EmptyFileError(MediaError):
    """The file has zero bytes."""


class NotMediaError(MediaError):
    """The file is not a container any decoder recognises."""


class NoAudioStreamError(MediaError):
    """The container holds no audio stream."""


class CorruptMediaError(MediaError):
    """The file is truncated or its audio cannot be decoded."""


class StorageError(CpwError):
    """A file cannot be written: the disk or a quota is full, the file system is read-only, or
    the folder's permissions forbid it; ``path`` is the file or folder, ``problem`` says what
    to do."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnknownTitleError(CpwError):
    """A partition key is not registered in the Dagster instance / title registry."""
