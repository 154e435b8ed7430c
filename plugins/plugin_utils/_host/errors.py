# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The error a host operation raises, and the codes every host shares.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations


class HostOperationError(Exception):
    """An operation the host refused or could not do, with a stable code and a message for `msg`.

    Codes are compared by the Python side; messages are shown to the operator as they are.
    ``details`` holds the rest of the host's answer: most refusals come before any change and have
    none, but an operation that failed half-way says what it did (``changed``, and e.g. ``added``).
    """

    def __init__(self, code: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = dict(details or {})

    @property
    def changed(self) -> bool:
        """Whether the host was changed before the operation failed."""
        return bool(self.details.get("changed"))


# Codes shared by every implementation of the host.
FILE_CHANGED = "FILE_CHANGED"          # the file's hash is not the one that was read
FILE_EXISTS = "FILE_EXISTS"            # asked to create a file that exists
FILE_NOT_FOUND = "FILE_NOT_FOUND"
FOLDER_NOT_FOUND = "FOLDER_NOT_FOUND"
CONSTRAINED_LANGUAGE = "CONSTRAINED_LANGUAGE"  # an application control policy runs the scripts in ConstrainedLanguage
REPLACE_FAILED = "REPLACE_FAILED"      # the swap of a new file for the target failed; the message says where the bytes are
