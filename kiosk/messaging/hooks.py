"""What messaging registers at start-up: its send job and sweep."""

from .jobs import install_jobs


def install(app) -> None:
    """Send client messages on the job queue."""
    install_jobs()
