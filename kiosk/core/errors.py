"""DomainError: how services say no, leaving each caller to choose how to show it."""


class DomainError(Exception):
    """A rule of the clinic refused an action; `code` is stable, `message` is for people."""

    def __init__(self, code: str, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status

    def as_dict(self) -> dict:
        """The error as a JSON-ready dict (code, message and field when there is one)."""
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


def error_body(code: str, message: str, *, field: str | None = None, **extra) -> dict:
    """The one JSON error body every endpoint answers with: `{"error": code, "message": …}`,
    plus `field` when one input is to blame and any keys the caller adds (`last_seq` …).
    (An op's own error inside a sync answer is `DomainError.as_dict`, as SYNC.md says.)"""
    body = {"error": code, "message": message}
    if field:
        body["field"] = field
    body.update(extra)
    return body


class NotFound(DomainError):
    """The named thing does not exist (a 404 for a page, `rejected` for an op)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__("not_found", message, field=field, status=404)


class Forbidden(DomainError):
    """The user's level does not allow the action (a 403 with the reason)."""

    def __init__(self, message: str):
        super().__init__("forbidden", message, status=403)
