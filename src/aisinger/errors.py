"""User-facing errors.

Every problem a user can cause (bad input file, missing asset, wrong option) is raised as
:class:`AisingerError` with a one-line message that names the file or asset and says what is
wrong.  The CLI prints ``error: <message>`` and exits with :data:`EXIT_USER_ERROR`.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2
"""Process exit code for an :class:`AisingerError` (0 = success, 1 = "not labelled"/negative answer)."""


class AisingerError(Exception):
    """A problem the user can fix; ``str(err)`` is one line naming the file/asset and the problem."""

    def __init__(self, message: str):
        # Keep the message on one line whatever the caller passed in.
        super().__init__(" ".join(str(message).split()))


class AudioError(AisingerError):
    """An audio file that cannot be read or is not acceptable as input."""


class AssetError(AisingerError):
    """A pretrained asset that is missing, unreachable or fails its hash check."""
