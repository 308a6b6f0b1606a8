"""The `kiosk import` command."""

import click


@click.command("import")
def import_command():
    """Import patients from a PIMS export (CSV or JSON)."""
    raise click.ClickException("Not written yet.")
