"""Errors the CLI maps to exit code 2: bad input, bad config, missing backend, unwritable output.

``InputError`` and ``ConfigError`` are also ``ValueError`` so that API callers can catch them as such.
"""

from __future__ import annotations


class ClustererError(Exception):
    """Base class for errors a user can fix (exit code 2)."""


class InputError(ClustererError, ValueError):
    """The logs cannot be read or do not have the expected shape."""


class ConfigError(ClustererError, ValueError):
    """A configuration value is out of range or of the wrong type."""


class BackendUnavailable(ClustererError):
    """A device or library that was asked for explicitly is not there."""


class OutputError(ClustererError):
    """The output directory cannot be created or written."""
