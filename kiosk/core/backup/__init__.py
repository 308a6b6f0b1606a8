"""Backups: one backup set (the database, the files kept beside it, a manifest) made while
the application runs, and a restore into a fresh database that checks itself against the
manifest. See docs/backup.md."""
