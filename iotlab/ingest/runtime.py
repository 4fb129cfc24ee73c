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
    Once the service is set up, just before it starts taking readings (not run here:
    it would freeze the test runner's heap too):

    >>> service.warm()  # doctest: +SKIP
    >>> settle_heap()  # doctest: +SKIP
    >>> service.start()  # doctest: +SKIP
    """
    gc.collect()
    gc.freeze()
