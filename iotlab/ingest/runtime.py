"""Settings for a process that runs the ingestion service and nothing else.

``iotlab serve``, the MQTT receiver process and the ingestion benchmark call
:func:`settle_heap` once they are set up. A notebook kernel should not: the setting is
process-wide.
"""

from __future__ import annotations

import gc

__all__ = ["settle_heap"]


def settle_heap() -> None:
    """Exempt everything alive now from the garbage collector's full collections.

    Modules, the store's driver and the fitted forecasts stay for the life of a service
    process, yet each full collection walked all of them: under load that paused the
    service for 70-130 ms a few times every 10 s (10 ms after this). Collects first, so
    only live objects are exempted; garbage made later is collected as usual.

    Examples
    --------
    In a process of its own (here a child; it would freeze the test runner's heap too):

    >>> import subprocess, sys
    >>> code = "import gc; from iotlab.ingest.runtime import settle_heap; settle_heap(); "
    >>> code += "print(gc.get_freeze_count() > 0)"
    >>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    'True\\n'
    """
    gc.collect()
    gc.freeze()
