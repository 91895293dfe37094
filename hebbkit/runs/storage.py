"""Where Ray keeps the results of a search or a grid: a local path, a shared path or a cloud URI.

Paths are resolved to pyarrow filesystems exactly as Ray resolves ``storage_path``
(``s3://``, ``gs://``, ``abfs://``, ``hdfs://``, ``file://`` or a plain path), so that hebbkit
reads back what Ray wrote wherever that is. No Ray here.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from hebbkit.errors import TuneSetupError

SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def storage_uri(value: str | Path) -> str:
    """A URI as given (without a trailing slash), or a local path made absolute."""
    text = str(value).strip()
    if SCHEME.match(text):
        return text.rstrip("/") if not text.endswith(":///") else text
    return str(Path(text).expanduser().resolve())


def is_local(uri: str) -> bool:
    """A path on this machine's filesystem (``file://`` included)."""
    return not SCHEME.match(uri) or uri.startswith("file://")


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and the path on it, or a message naming the storage."""
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise TuneSetupError(
            f"--storage {uri}: pyarrow cannot open it ({error}). Give a folder (shared by "
            "every node of a cluster, e.g. on NFS) or a cloud URI such as s3://bucket/path or "
            "gs://bucket/path, with that cloud's credentials set up on every node."
        ) from None


def exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def names(fs: pafs.FileSystem, path: str) -> list[str]:
    """The entries of a folder (none if it does not exist)."""
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    return sorted(info.base_name for info in fs.get_file_info(pafs.FileSelector(path)))


def write_text(fs: pafs.FileSystem, path: str, text: str) -> None:
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as stream:
        stream.write(text.encode())


def read_text(fs: pafs.FileSystem, path: str) -> str:
    with fs.open_input_stream(path) as stream:
        return stream.read().decode()


def upload(folder: Path, fs: pafs.FileSystem, path: str) -> None:
    """Copy the local ``folder`` to ``path`` on ``fs``."""
    fs.create_dir(path, recursive=True)
    pafs.copy_files(
        str(folder), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs
    )


def download(fs: pafs.FileSystem, path: str, folder: Path) -> None:
    """Make ``folder`` a copy of ``path`` on ``fs``; it appears only once complete.

    On this machine's own disk files are hard-linked where possible: Ray never changes a
    persisted checkpoint, and a search's run folders then take no second copy of the space.
    """
    staging = _staging(folder)
    if isinstance(fs, pafs.LocalFileSystem):
        shutil.copytree(path, staging, copy_function=_link_or_copy)
    else:
        staging.mkdir(parents=True)
        pafs.copy_files(
            path, str(staging), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem()
        )
    _replace(staging, folder)


def fetch_file(fs: pafs.FileSystem, path: str, local: Path) -> bool:
    """Copy the file ``path`` on ``fs`` to ``local``; False if there is none."""
    if fs.get_file_info(path).type != pafs.FileType.File:
        return False
    local.parent.mkdir(parents=True, exist_ok=True)
    temporary = local.with_name(f".{local.name}.{os.getpid()}.tmp")
    try:
        with fs.open_input_stream(path) as source, temporary.open("wb") as target:
            shutil.copyfileobj(source, target)
        os.replace(temporary, local)
    finally:
        temporary.unlink(missing_ok=True)
    return True


def store_file(local: Path, fs: pafs.FileSystem, path: str) -> None:
    """Copy the local file ``local`` to ``path`` on ``fs``, where it appears whole (written
    beside it, then moved) for readers on other nodes."""
    folder, name = path.rsplit("/", 1)
    fs.create_dir(folder, recursive=True)
    temporary = f"{folder}/.{name}.{os.getpid()}.tmp"
    with local.open("rb") as source, fs.open_output_stream(temporary) as target:
        shutil.copyfileobj(source, target)
    fs.move(temporary, path)


def remove(fs: pafs.FileSystem, path: str) -> None:
    """Delete the folder ``path`` on ``fs`` if it is there."""
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        fs.delete_dir(path)


def pack(fs: pafs.FileSystem, path: str) -> bytes:
    """The folder ``path`` on ``fs`` as the bytes of a tar archive (to send it elsewhere)."""
    buffer = io.BytesIO()
    prefix = path.rstrip("/") + "/"
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for info in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
            if info.type != pafs.FileType.File:
                continue
            with fs.open_input_stream(info.path) as stream:
                data = stream.read()
            entry = tarfile.TarInfo(info.path.removeprefix(prefix))
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def pack_folder(folder: Path) -> bytes:
    """The local ``folder`` as :func:`pack` makes it."""
    return pack(pafs.LocalFileSystem(), str(folder))


def unpack(data: bytes, folder: Path) -> None:
    """Make ``folder`` the contents of a tar archive made by :func:`pack`."""
    staging = _staging(folder)
    staging.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(staging, filter="data")
        else:  # pragma: no cover - Python before 3.10.12 / 3.11.4
            archive.extractall(staging)  # hebbkit made the archive
    _replace(staging, folder)


def _staging(folder: Path) -> Path:
    staging = folder.parent / f".{folder.name}.download-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    return staging


def _replace(staging: Path, folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another device, or links not allowed
        shutil.copy2(source, target)
