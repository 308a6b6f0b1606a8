"""A backup set's manifest: what the set holds and how to know it is whole."""

import hashlib
import json
from pathlib import Path

from ..errors import DomainError

FORMAT = 1
MANIFEST = "manifest.json"
CHUNK = 1024 * 1024

ERR_NO_MANIFEST = "{path} is not a Kiosk backup: it has no manifest.json."
ERR_BAD_MANIFEST = "The backup's manifest.json cannot be read ({why}); the backup is damaged."
ERR_MISSING = "The backup is incomplete: {name} is missing."
ERR_CHECKSUM = ("The backup is damaged: {name} does not match the checksum in its manifest "
                "(changed or cut short since it was made).")
ERR_UNLISTED = "The backup holds {name}, which its manifest does not list; it is not whole."


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in chunks (a database may be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files_listed(root: Path) -> dict[str, dict]:
    """Every file under `root` but the manifest: name (posix, relative) → sha256 and size."""
    return {name: {"sha256": file_sha256(root / name), "size": (root / name).stat().st_size}
            for name in files_listed_names(root)}


def manifest_write(root: Path, manifest: dict) -> None:
    """Write the manifest (the files' checksums added now, after every file is written)."""
    manifest = {**manifest, "files": files_listed(root)}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def manifest_read(root: Path) -> dict:
    """The manifest of the backup set at `root`, or a DomainError saying why not."""
    path = root / MANIFEST
    if not root.is_dir() or not path.is_file():
        raise DomainError("not_a_backup", ERR_NO_MANIFEST.format(path=root))
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DomainError("bad_manifest", ERR_BAD_MANIFEST.format(why=type(exc).__name__)) \
            from None
    fields = ("format", "database", "tables", "files")
    if not isinstance(manifest, dict) or any(key not in manifest for key in fields) \
            or manifest["format"] != FORMAT or not isinstance(manifest["tables"], dict) \
            or not isinstance(manifest["files"], dict):
        raise DomainError("bad_manifest", ERR_BAD_MANIFEST.format(why="fields missing or "
                                                                  "of another format"))
    return manifest


def manifest_verify(root: Path, manifest: dict) -> None:
    """Every file the manifest lists is there with its checksum, and nothing else is."""
    for name, facts in sorted(manifest["files"].items()):
        path = root / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise DomainError("backup_damaged", ERR_CHECKSUM.format(name=name))
        if not path.is_file():
            raise DomainError("backup_incomplete", ERR_MISSING.format(name=name))
        if not isinstance(facts, dict) or file_sha256(path) != facts.get("sha256"):
            raise DomainError("backup_damaged", ERR_CHECKSUM.format(name=name))
    for name in files_listed_names(root):
        if name not in manifest["files"]:
            raise DomainError("backup_damaged", ERR_UNLISTED.format(name=name))


def files_listed_names(root: Path) -> list[str]:
    """The names of the files under `root` but the manifest (without reading them)."""
    names = (path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
    return sorted(name for name in names if name != MANIFEST)
