"""Freed C-heap memory goes back to the system: the worker's RSS follows what it holds."""

from __future__ import annotations

import psutil

from stream_app.heap import release


def test_memory_freed_in_the_heap_is_given_back_to_the_system() -> None:
    process = psutil.Process()
    release()
    before = process.memory_info().rss
    # 1 KB objects come from malloc (over pymalloc's 512 bytes); one in 64 kept, so the heap's top
    # stays in use and glibc alone returns nothing of the pages freed below it
    blocks = [bytes(1024) for _ in range(200_000)]
    kept = blocks[::64]
    del blocks
    held = process.memory_info().rss
    assert held - before > 100 * 2**20, (held - before) / 2**20  # the pages freed are still resident
    assert release()  # glibc, as on every machine paylimit runs on
    after = process.memory_info().rss
    assert held - after > 100 * 2**20, ((held - after) / 2**20, len(kept))
