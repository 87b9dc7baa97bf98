"""Expected failures. Each carries a message a person (or a model) can act on.

The router turns any `MLOpsError` into an `is_error` tool result with `str(error)` as the text;
anything else is an unexpected bug, logged with its traceback and reported briefly.
"""

from __future__ import annotations


class MLOpsError(Exception):
    """Base of every expected failure: `field` names the input at fault, `hint` says what to do."""

    kind = "error"

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.field = field
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}" if self.field else self.message
        if self.hint:
            text = f"{text}. {self.hint}" if not text.endswith(".") else f"{text} {self.hint}"
        return text

    def to_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "field": self.field, "message": self.message, "hint": self.hint}


class ConfigError(MLOpsError):
    kind = "config_error"


class InvalidInputError(MLOpsError):
    """The call's arguments are wrong (type, range, unknown column, ...)."""

    kind = "invalid_input"


class NotFoundError(MLOpsError):
    kind = "not_found"


class AccessDeniedError(MLOpsError):
    kind = "access_denied"


class UnsafePathError(AccessDeniedError):
    """A storage URI tried to leave its root (`..`, absolute path, symlink)."""

    kind = "unsafe_path"


class BadFormatError(MLOpsError):
    """Data or an artifact could not be parsed, is too large, or failed an integrity check."""

    kind = "bad_format"


class DatasetTooLargeError(BadFormatError):
    """A data set over MLOPS_MAX_DATASET_MB (stored or loaded size): the same kind for clients, its
    own class so a trainer that can stream the data elsewhere (backend ray) can say so."""


class ConflictError(MLOpsError):
    """A create-only or compare-and-swap write lost the race (S3 412/409, or the local equivalent)."""

    kind = "conflict"


class StorageError(MLOpsError):
    kind = "storage_error"


class CancelledError(MLOpsError):
    kind = "cancelled"
