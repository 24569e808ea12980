"""Exception and warning types raised by fastsample."""

from __future__ import annotations


class FastsampleError(Exception):
    """Base class of every error fastsample raises on purpose."""


class InputError(FastsampleError, ValueError):
    """Bad user input: the message is one line naming the file, column or value at fault."""


class FastsampleWarning(UserWarning):
    """A condition the user should know about, said in one line (the CLI prints it as one)."""
