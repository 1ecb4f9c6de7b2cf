"""Fixtures of the notifier tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs, full but for one 4 KiB page (the filler's last page freed)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True)
    try:
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        size = 0
        try:
            while True:
                size += os.write(fd, b"x" * 4096)
        except OSError:
            pass
        os.ftruncate(fd, size - 4096)
        os.close(fd)
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)
