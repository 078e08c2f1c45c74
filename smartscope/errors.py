"""One exception hierarchy. Every message says what the user must change (file, field, value).

The CLI prints ``str(error)`` on one line and exits with a non-zero code; ``--debug`` shows the
traceback. Raise with ``raise XError(...) from e`` so the cause stays available.
"""

from __future__ import annotations


class SmartscopeError(Exception):
    """Base class: a problem the user can fix. The message names what to change."""

    exit_code = 2


class ProtocolError(SmartscopeError):
    """A protocol file is unreadable or invalid (YAML syntax, unknown field, bad value)."""


class ModelBundleError(SmartscopeError):
    """A model bundle is missing, corrupt, or its card does not match the model."""


class ImageError(SmartscopeError):
    """An image cannot be processed (empty, wrong dtype or dimensions)."""


class TrainingDataError(SmartscopeError):
    """A training, validation or test folder is unusable (missing, empty, unreadable files)."""


class MicroscopeError(SmartscopeError):
    """The microscope is unreachable or a device failed."""


class StageLimitError(MicroscopeError):
    """A stage move was refused because its target lies outside the safe limits."""


class HookError(SmartscopeError):
    """The image-processing hook failed on a frame."""


class DependencyError(SmartscopeError):
    """An optional dependency is missing; the message names the extra to install."""


class RecordingError(SmartscopeError):
    """A recorded movie (or its ground-truth labels) cannot be replayed as given."""


class OutputError(SmartscopeError):
    """An output cannot be written where asked (an input, a foreign file, an unwritable place)."""


class RunFolderError(SmartscopeError):
    """A folder is not a smartscope run (no run records), or its records cannot be read."""
