"""dcvkit's error types.

Every error a user can cause (bad data, bad config, unknown names) is a :class:`DcvError`. The CLI prints
``error: <message>`` on one line and exits with :attr:`DcvError.exit_code`; Python users catch the class.
Messages say which file, what is wrong and what to do.
"""

from __future__ import annotations


class DcvError(Exception):
    """Base class of every error dcvkit raises on purpose. ``exit_code`` is what the CLI returns."""

    exit_code = 2


class DataError(DcvError):
    """A dataset is missing, corrupt, or not what was expected."""


class ConfigError(DcvError):
    """A config file or option is invalid (unknown key, wrong type, bad value)."""


class ModelNotFoundError(DcvError):
    """A model name is not in the registry."""


class CheckpointError(DcvError):
    """A checkpoint is missing, unreadable, unsafe, or does not fit the model."""


class TrainingDiverged(DcvError):
    """The loss became NaN or Inf; the last good checkpoint was kept."""

    exit_code = 3


class Interrupted(DcvError):
    """Training was stopped by SIGINT/SIGTERM after saving a resumable ``last.pt``."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum  # the shell's convention: 130 for Ctrl-C, 143 for SIGTERM


class ResourceError(DcvError):
    """The machine ran out of something (GPU memory, disk space); the message says what to change."""
