"""Secrets that travel in addresses kept out of the logs: a client portal link's token is
the client's only credential, and it sits in the path (/portal/<token>/…). Flask logs the
path of a request that failed, the development server and gunicorn log every request line;
each of them goes through path_redacted here first."""

import logging
import re

# Paths whose next segment is a credential. Core names the path, not the feature: the
# loggers are set up before any feature is.
SECRET_SEGMENT = re.compile(r"(/portal/)[^/?#\s\"']+")
REDACTED = r"\1[link]"


def path_redacted(text: str) -> str:
    """`text` with every portal token replaced by "[link]"."""
    return SECRET_SEGMENT.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts portal tokens from a record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message without tokens; keep the record."""
        message = record.getMessage()
        redacted = path_redacted(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def redacting_install(*loggers: logging.Logger) -> None:
    """Put the filter on `loggers` (each once)."""
    for logger in loggers:
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


try:
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # gunicorn is only needed where it serves
    _GunicornLogger = None

if _GunicornLogger is not None:
    class GunicornLogger(_GunicornLogger):
        """gunicorn's logger with portal tokens redacted from every access-log field (the
        request line, the path, a redirect's Location, the environment's URIs …):
        `--logger-class kiosk.core.logredact.GunicornLogger`."""

        def atoms(self, resp, req, environ, request_time):
            """gunicorn's access-log fields, redacted."""
            atoms = super().atoms(resp, req, environ, request_time)
            return {key: path_redacted(value) if isinstance(value, str) else value
                    for key, value in atoms.items()}
