"""Value types of the command-line options: argparse ``type=`` callables with one-line errors."""

from __future__ import annotations

import argparse

__all__ = ["count", "names", "number", "option", "positive_int", "seed"]


def positive_int(text: str) -> int:
    """A positive integer (``1_000`` ok).

    >>> positive_int("1_000")
    1000
    """
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def count(text: str) -> int:
    """A non-negative row count; accepts 1_000_000 and 1e6 / 30M / 4k shorthands.

    >>> count("30M"), count("4e6"), count("4k")
    (30000000, 4000000, 4000)
    """
    raw = text.strip().replace("_", "")
    mult = {"k": 10**3, "m": 10**6, "g": 10**9}.get(raw[-1:].lower(), 1)
    if mult != 1:
        raw = raw[:-1]
    try:
        value = float(raw) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a row count") from None
    if value < 0 or value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a non-negative whole number")
    return int(value)


def seed(text: str) -> int:
    """A seed in ``[0, 2**64)``.

    >>> seed("7")
    7
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed {text!r} is not an integer") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"seed {text!r} must be in [0, 2**64)")
    return value


def number(text: str) -> float:
    """A float.

    >>> number("0.05")
    0.05
    """
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def names(text: str) -> list[str]:
    """Comma-separated column names (at least one).

    >>> names("a, b,")
    ['a', 'b']
    """
    columns = [t.strip() for t in text.split(",") if t.strip()]
    if not columns:
        raise argparse.ArgumentTypeError(f"{text!r} names no column")
    return columns


def option(text: str) -> tuple[str, str]:
    """A ``KEY=VALUE`` pair.

    >>> option("region=eu-west-1")
    ('region', 'eu-west-1')
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value
