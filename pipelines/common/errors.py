"""The one base of every error scdx raises on purpose.

Each error says what went wrong in words a person can act on (the dataset, the file or URL, the
row or field, the command that fixes it). Code that must end a run or a command on any of them
catches ``ScdxError``; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ScdxError(Exception):
    """An error scdx raises on purpose, with a message meant for the person running it."""
