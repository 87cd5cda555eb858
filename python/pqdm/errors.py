"""pqdm's exceptions. Every error pqdm raises is a :class:`PqdmError` carrying pqdm's own message,
which names what was wrong and where (file, column, row, value, filter, dataset)."""


class PqdmError(Exception):
    """Any error of pqdm: the dataset is left as it was before the call that raised it."""


class InvalidInputError(PqdmError, ValueError):
    """Bad input: a frame that does not fit the kind, a value that cannot be cast, an unknown
    column, operator, kind or option, options that contradict each other."""


class ConflictError(PqdmError):
    """Another writer got there first and the commit could not be retried, a dataset already
    exists where one is created, or mode ``error`` found data in a partition."""


class NotFoundError(PqdmError, FileNotFoundError):
    """No dataset at that path (no folder, or no ``_manifest.json`` under it)."""


__all__ = ["PqdmError", "InvalidInputError", "ConflictError", "NotFoundError"]
