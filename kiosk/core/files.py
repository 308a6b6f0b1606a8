"""Files at rest that hold patient data or secrets: readable by the server's user only,
whatever umask the process was started with."""

import os
from pathlib import Path

from sqlalchemy.engine import make_url


def folder_private(path: Path) -> Path:
    """Make `path` (and missing parents) and leave it mode 700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)  # mkdir's mode is narrowed by the umask, and an old folder kept its own
    return path


def file_private(path: Path) -> Path:
    """Create `path` empty if it is missing, and leave it mode 600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    return path


def sqlite_file_private(uri: str) -> Path | None:
    """Create the SQLite file of `uri` mode 600 before anything connects (None: not a file).

    SQLite gives the -wal and -shm files it makes beside it the database file's own mode.
    """
    url = make_url(uri)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") \
            or url.query.get("mode") == "memory" or url.database.startswith("file:"):
        return None
    path = Path(url.database)
    if not path.parent.is_dir():
        return None  # SQLite will say the folder is missing, plainly
    return file_private(path)
