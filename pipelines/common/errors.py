"""The one base of every error scdx raises on purpose.

Each error says what went wrong in words a person can act on (the dataset, the file or URL, the
row or field, the command that fixes it) and carries the exit code the command line ends with:
1 for a run that did not publish (the data, the source or the machine said no), 2 for bad usage or
configuration. The command line maps them in one place (pipelines.cli) and shows one line, never
a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ScdxError(Exception):
    """An error scdx raises on purpose, with a message meant for the person running it."""

    exit_code = 1


class UsageError(ScdxError):
    """Bad usage or configuration (an unknown dataset, a contract that does not load, a URL that
    would send keys in clear text): exit code 2."""

    exit_code = 2
