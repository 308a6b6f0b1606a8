"""The `kiosk import` command: a PIMS export from a file, all of it or nothing."""

import json
import re
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

ERR_NO_MANAGER = ("There is no active level-6 user to import as; add one with "
                  "`kiosk users add --level 6` or name one with --user u_<id>.")
ERR_USER_UNKNOWN = "There is no active user {ref} (give it as u_<id>, e.g. u_1)."


def _acting_user(ref: str | None):
    """The user named `u_<id>`, or else the first active level-6 user."""
    from sqlalchemy import select

    from ..extensions import db
    from ..staff.models import User

    if ref is not None:
        match = re.fullmatch(r"u_(\d+)", ref.strip())
        user = db.session.get(User, int(match.group(1))) if match else None
        if user is None or not user.active:
            raise click.ClickException(ERR_USER_UNKNOWN.format(ref=ref))
        return user
    user = db.session.scalars(select(User).where(User.active.is_(True), User.level == 6)
                              .order_by(User.id)).first()
    if user is None:
        raise click.ClickException(ERR_NO_MANAGER)
    return user


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "file_format", type=click.Choice(["csv", "json"]), default=None,
              help="The file's format (default: from its extension).")
@click.option("--user", "user_ref", default=None, metavar="u_<id>",
              help="Who imports (default: the first active level-6 user).")
@with_appcontext
def import_command(path: Path, file_format: str | None, user_ref: str | None):
    """Import patients from a PIMS export (CSV or JSON); the last line is a JSON summary.

    The whole file is refused if any row is wrong: every problem is printed, nothing is
    stored and the command exits with status 1.
    """
    from ..core.errors import DomainError
    from ..extensions import db
    from .services import ImportRefused, patients_import

    user = _acting_user(user_ref)
    with path.open("rb") as fh:  # one byte past the limit is enough to refuse it
        content = fh.read(current_app.config["KIOSK_IMPORT_MAX_BYTES"] + 1)
    try:
        summary = patients_import(user=user, content=content, file_format=file_format,
                                  filename=path.name)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if isinstance(exc, ImportRefused):
            for problem in exc.errors:
                click.echo(str(problem), err=True)
        raise click.ClickException(exc.message) from exc
    if summary.ignored_columns:
        click.echo("Ignored columns: " + ", ".join(summary.ignored_columns))
    click.echo(json.dumps({"file": path.name, **summary.as_dict()}))
