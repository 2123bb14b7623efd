"""Hostile-archive checks: member names that stay inside the destination, and only regular files and directories.

Used for bundles and for the layers ``trivy-cache`` unpacks. Links, devices and FIFOs are refused outright
rather than skipped: no asset has them, so one is a sign of a crafted archive.
"""

from __future__ import annotations

import tarfile

from trivy_mirror.errors import UnsafeMember

MAX_PATH_LENGTH = 1024
REGULAR_TYPES = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE})
"""Plain files only: tarfile also counts sparse and contiguous files as regular, which we do not accept."""


def _shown(name: str) -> str:
    return repr(name[:200] + ("..." if len(name) > 200 else ""))


def check_path(name: str, what: str = "bundle member") -> str:
    """The member's path, relative and without ``.``/``..`` components (a leading ``./`` is dropped).

    Raises UnsafeMember for absolute paths, traversal, backslashes, drive letters and control characters.
    """
    path = name[2:] if name.startswith("./") else name
    if (not path or len(path) > MAX_PATH_LENGTH or path.startswith("/") or "\\" in path
            or (len(path) >= 2 and path[1] == ":") or any(ord(c) < 0x20 or c == "\x7f" for c in path)):
        raise UnsafeMember(f"{what} {_shown(name)} is not a safe relative path; refusing the archive")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise UnsafeMember(f"{what} {_shown(name)} escapes its directory ('..', '.' or '//'); refusing the archive")
    return path


def check_member(member: tarfile.TarInfo, what: str = "bundle member") -> str:
    """:func:`check_path` plus the type: a regular file or a directory, nothing else."""
    path = check_path(member.name, what)
    if member.type in REGULAR_TYPES or member.isdir():
        return path
    if member.issym():
        kind = f"a symbolic link (to {_shown(member.linkname)})"
    elif member.islnk():
        kind = f"a hard link (to {_shown(member.linkname)})"
    elif member.ischr() or member.isblk():
        kind = "a device file"
    elif member.isfifo():
        kind = "a FIFO"
    else:
        kind = f"not a regular file (tar type {member.type!r})"
    raise UnsafeMember(f"{what} {_shown(member.name)} is {kind}; refusing the archive")
