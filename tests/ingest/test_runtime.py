"""settle_heap: what lives is frozen, new garbage is still collected."""

from __future__ import annotations

import subprocess
import sys


def test_settle_heap_freezes_what_lives_and_still_collects_new_garbage() -> None:
    # In a child process: freezing pytest's own heap would outlive this test.
    script = """
import gc, weakref
from iotlab.ingest.runtime import settle_heap
class Node: pass
kept = Node(); kept.me = kept
settle_heap()
print(gc.get_freeze_count() > 1000, any(o is kept for o in gc.get_objects()))
later = Node(); later.me = later; gone = weakref.ref(later); del later
gc.collect()
print(gone() is None)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "False", "True"]
