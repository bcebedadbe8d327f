"""Errors the engine raises on purpose, each carrying the HTTP status the API maps it to.

Managers raise these with messages written for the person at the shell (Docker's
wording where Docker has one); anything else escaping a handler is a bug and becomes 500.
Everyone in the core may import this module: managers and formats raise these, the API
maps them.
"""


class EngineError(Exception):
    status = 500


class InvalidParameter(EngineError):
    status = 400


class Forbidden(EngineError):
    status = 403


class NotFound(EngineError):
    status = 404


class Conflict(EngineError):
    status = 409


class NotModified(EngineError):
    status = 304


class Unavailable(EngineError):
    status = 503


class Unauthorized(EngineError):
    status = 401


class UpstreamError(EngineError):
    """Another server (a registry) failed us: bad content, a refusal, nonsense."""

    status = 502
