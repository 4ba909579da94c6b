"""Files on disk as a unit: an output set is replaced whole, verified by hashes, and written with umask modes.

A *set* is a directory whose every file is listed, with its row count, byte size and SHA-256, in the set's
``manifest.json`` (the run outputs; the campaign registry). :func:`replace_set` writes a new set into a
staging directory beside the target, syncs it, and swaps it with the target in one step
(``renameat2(RENAME_EXCHANGE)`` on Linux; a plain ``rename`` when the target does not exist yet). Readers
and a crash, ``kill -9`` or a full disk at any moment therefore see either the previous complete set or the
new complete set under the target's name. Staging and replaced directories left behind by a killed process
are named ``.<target>.clusterer-*`` and are removed by the next :func:`replace_set` on that target.

Where the exchange call is not available (not Linux, or a file system without it) the swap is two renames
(target aside, staging in): a crash between them leaves the previous set under
``.<target>.clusterer-old-*`` and no target, which the next run replaces.

:func:`verify_set` re-hashes a set against its manifest; ``show`` and ``history add`` refuse a set that
does not match.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# the files of a run's output set (``clusterer run --out``); schemas in :mod:`clusterer.io.outputs`
ASSIGNMENTS = "assignments.parquet"
CLUSTERS = "clusters.parquet"
ACCOUNTS = "accounts.parquet"
OPERATORS = "operators.parquet"
VECTORS = "vectors.npy"  # float16 (U, d): the run's distinct embedding vectors
VECTOR_OF_ROW = "vector_of_row.npy"  # int64 (n,): row of VECTORS for each assignments row, -1 = not embedded
OUTPUT_FILES = (ASSIGNMENTS, CLUSTERS, ACCOUNTS, OPERATORS, VECTORS, VECTOR_OF_ROW)
REPORT = "report.html"  # `run --report` / `clusterer report`: written beside the set, replaced with it
KNOWN_FILES = frozenset({*OUTPUT_FILES, MANIFEST, REPORT})  # what an --out directory may hold
SCHEMA_VERSION = 2  # 1: outputs without run_id / day / hashes (clusterer <= 0.1); 2: this contract
TAG = ".clusterer-"  # staging / replaced directories: .<target name>.clusterer-<new|old>-<token>
_CHUNK = 1 << 22
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a set as listed in its manifest."""

    name: str
    rows: int | None  # table rows, array length, or None for files without rows
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows, "bytes": self.bytes, "sha256": self.sha256}


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (``sha256sum`` gives the same)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode a new file gets under the process umask (0o644 under the usual 022; 0o664 under 002)."""
    return 0o666 & ~_umask()


def write_file_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write one file through a temp file in the same directory and rename it into place.

    The temp file is created with the umask's mode (not ``mkstemp``'s 0600) and removed on any failure.

    Raises:
        OutputError: the file system refused the write (full disk, permissions, read-only).
    """
    path = Path(path)
    tmp = path.parent / f".tmp-{path.name}-{secrets.token_hex(6)}"
    try:
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        write(tmp)
        _fsync_path(tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """:func:`write_file_atomic` of a bytes value."""
    write_file_atomic(path, lambda tmp: tmp.write_bytes(data))


def _fsync_path(path: Path, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False when this system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Exclusive lock on a directory (flock on its descriptor) so two writers of one parent take turns."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def leftovers(target: Path) -> list[Path]:
    """Staging / replaced directories of ``target`` left by an interrupted process."""
    target = Path(target)
    prefix = f".{target.name}{TAG}"
    try:
        return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefix))
    except OSError:
        return []


def check_target(target: Path, known: set[str], what: str) -> None:
    """Refuse a target directory that holds files this tool did not write (a swap would take them away).

    Raises:
        OutputError: ``target`` is a file, or a directory with entries outside ``known``.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise OutputError(f"{what} {target} is a file; pass a directory")
    if not target.is_dir():
        return
    try:
        names = sorted(os.listdir(target))
    except OSError as err:
        raise OutputError(f"{what} {target} cannot be listed: {err.strerror or err}") from err
    foreign = [n for n in names if n not in known and not n.startswith((".tmp-", ".probe-"))]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputError(
            f"{what} {target} holds files clusterer did not write ({shown}); the output set replaces that "
            "directory as a whole, so pass a new or empty directory"
        )


def replace_set(
    target: Path,
    files: dict[str, Callable[[Path], int | None]],
    manifest: dict[str, Any],
    known: set[str],
    what: str = "--out",
    before_manifest: Callable[[dict[str, Any]], None] | None = None,
) -> list[FileEntry]:
    """Write a complete set of files and make it the content of ``target`` in one atomic step.

    ``files`` maps each file name to a writer ``write(path) -> rows``; ``manifest`` gets
    ``schema_version`` and ``files`` (name, rows, bytes, sha256 of each), is passed to ``before_manifest``
    (last changes, e.g. timings) and is written last as ``manifest.json``. The new directory takes the
    previous target's mode and group. Leftovers of earlier interrupted writes of the same target are removed
    first.

    Raises:
        OutputError: the target holds foreign files, or the file system refused a write (the previous set
        stays in place and no staging directory is left behind).
    """
    target = Path(target).resolve()  # a symlinked target: replace what it points to, keep the link
    check_target(target, known | {MANIFEST}, what)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{what} {target}: cannot create {parent}: {err.strerror or err}") from err
    with _locked(parent):
        for old in leftovers(target):
            shutil.rmtree(old, ignore_errors=True)
            log.info("removed %s left by an interrupted write", old)
        stage = parent / f".{target.name}{TAG}new-{secrets.token_hex(6)}"
        try:
            os.mkdir(stage)  # the umask's mode, unlike mkdtemp's 0700
            if target.is_dir():
                st = target.stat()
                os.chmod(stage, st.st_mode & 0o7777)
                with contextlib.suppress(OSError):
                    os.chown(stage, -1, st.st_gid)
            entries = []
            for name, write in files.items():
                path = stage / name
                rows = write(path)
                _fsync_path(path)
                entries.append(FileEntry(name, rows, path.stat().st_size, sha256_file(path)))
            manifest["schema_version"] = SCHEMA_VERSION
            manifest["files"] = [e.to_dict() for e in entries]
            if before_manifest is not None:
                before_manifest(manifest)
            (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
            _fsync_path(stage / MANIFEST)
            _fsync_path(stage, directory=True)
            _swap(stage, target)
            _fsync_path(parent, directory=True)
        except OSError as err:
            shutil.rmtree(stage, ignore_errors=True)
            raise OutputError(f"cannot write {what} {target}: {err.strerror or err}") from err
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    return entries


def amend_set(
    target: Path,
    replace: dict[str, Callable[[Path], int | None]],
    update: Callable[[dict[str, Any]], None],
    known: set[str],
    what: str = "run",
) -> list[FileEntry]:
    """Rewrite some files of an existing set as one unit: the set is verified against its manifest first, the
    other files are carried over unchanged (hard links where the file system allows, else copies), ``replace``
    writes the new files, ``update(manifest)`` amends the manifest, and the new set (every file re-listed with
    its rows, bytes and SHA-256) replaces the old one through :func:`replace_set` — so readers see the old set
    or the amended one, and the manifest's hashes stay valid.

    Raises:
        InputError: the set does not match its manifest. OutputError: the directory cannot be written.
    """
    target = Path(target)
    manifest = verify_set(target, what)
    rows = {e["name"]: e.get("rows") for e in manifest.get("files", [])}
    carried = [name for name in rows if name not in replace]

    def carry(name: str) -> Callable[[Path], int | None]:
        def write(path: Path) -> int | None:
            try:
                os.link(target / name, path)
            except OSError:
                shutil.copyfile(target / name, path)
            return rows[name]

        return write

    files = {name: carry(name) for name in carried}
    files.update(replace)
    manifest.pop("files", None)
    update(manifest)
    return replace_set(target, files, manifest, known, what)


def _swap(stage: Path, target: Path) -> None:
    """Make ``stage`` the content of ``target``; the previous target (if any) is deleted afterwards."""
    if not target.exists():
        try:
            os.rename(stage, target)
            return
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    if _exchange(stage, target):
        shutil.rmtree(stage, ignore_errors=True)  # now holds the previous set
        return
    old = target.parent / f".{target.name}{TAG}old-{secrets.token_hex(6)}"
    os.rename(target, old)
    os.rename(stage, target)
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(directory: Path, what: str = "run") -> dict[str, Any]:
    """The parsed ``manifest.json`` of a set.

    Raises:
        InputError: no manifest, or one that is not JSON.
    """
    path = Path(directory) / MANIFEST
    if not path.is_file():
        hint = ""
        if leftovers(Path(directory)):
            hint = f" (an interrupted write left {leftovers(Path(directory))[0].name} beside it; re-run)"
        raise InputError(f"{path} not found; {directory} is not a finished {what}{hint}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path} cannot be read as JSON: {err}") from err


def verify_set(directory: Path, what: str = "run", names: list[str] | None = None) -> dict[str, Any]:
    """Check every file listed in a set's manifest (or only ``names``) against its size and SHA-256.

    Returns the manifest.

    Raises:
        InputError: no manifest, a manifest without file hashes (written before schema 2), a missing file,
        or a file whose size or hash differs (a mixed or damaged set).
    """
    directory = Path(directory)
    manifest = read_manifest(directory, what)
    listed = manifest.get("files")
    if not isinstance(listed, list):
        raise InputError(
            f"{directory / MANIFEST} lists no file hashes (schema_version "
            f"{manifest.get('schema_version', 1)}); re-run with this version to get a verifiable set"
        )
    by_name = {e["name"]: e for e in listed}
    for name in names if names is not None else list(by_name):
        entry = by_name.get(name)
        path = directory / name
        if entry is None:
            raise InputError(f"{directory / MANIFEST} does not list {name}")
        if not path.is_file():
            raise InputError(f"{path} is missing; the {what} in {directory} is incomplete")
        size = path.stat().st_size
        if size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            raise InputError(
                f"{path} does not match {MANIFEST} (size {size:,} vs {entry['bytes']:,} bytes, or its SHA-256 "
                f"differs): the {what} in {directory} is damaged or mixes two runs; re-run it"
            )
    return manifest
