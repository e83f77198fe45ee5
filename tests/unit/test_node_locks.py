"""``proxy.cache.nodelock``: one holder per key among the processes of a node."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from proxy.cache.nodelock import NodeLocks

KEY = "ab" * 32


def in_child(locks: NodeLocks, key: str) -> bool:
    """Whether another process can take ``key`` now."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        got = locks.try_acquire(key)
        os.write(write, b"1" if got is not None else b"0")
        if got is not None:
            locks.release(key, got)
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    return answer == b"1"


def test_one_process_holds_a_key_at_a_time(tmp_path: Path) -> None:
    locks = NodeLocks(tmp_path / "locks")
    held = locks.try_acquire(KEY)
    assert held is not None
    assert not in_child(locks, KEY)
    assert in_child(locks, "cd" * 32)  # other keys are free
    locks.release(KEY, held)
    assert in_child(locks, KEY)
    assert list((tmp_path / "locks").iterdir()) == []  # released locks leave no file


def test_a_dead_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    locks = NodeLocks(tmp_path / "locks")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        locks.try_acquire(KEY)
        os.write(write, b"x")
        signal.pause()
        os._exit(0)
    os.read(read, 1)
    assert locks.try_acquire(KEY) is None
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    held = locks.try_acquire(KEY)
    assert held is not None
    locks.release(KEY, held)


def test_a_lock_on_a_file_its_holder_deleted_is_not_taken(tmp_path: Path) -> None:
    """The race the inode check closes: B opened the file before A deleted it."""
    locks = NodeLocks(tmp_path / "locks")
    held = locks.try_acquire(KEY)
    assert held is not None
    path = tmp_path / "locks" / f"{KEY}.lock"
    stale = os.open(path, os.O_RDWR)  # B's open, before A lets go
    locks.release(KEY, held)
    again = locks.try_acquire(KEY)  # C takes a new file
    assert again is not None
    assert os.fstat(stale).st_ino != os.stat(path).st_ino
    os.close(stale)
    assert not in_child(locks, KEY)
    locks.release(KEY, again)


def test_only_digests_name_locks(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        NodeLocks(tmp_path).try_acquire("../x")
