"""Run one stage of a chunk pipeline in its own thread, through a small bounded queue.

The writers, codecs and extractor each spend much of their time in C with the GIL
released (reads and writes, ISA-L, zstd), so on two cores a stage in a second thread
overlaps with the next one instead of taking turns: tar writing with gzip,
decompression with extraction. Memory stays bounded: at most `depth` chunks wait in
the queue. An error in the stage is raised in the consumer; a consumer that stops
early (error, close) stops the stage at its next chunk.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import cast

_DONE = object()


def background(source: Iterable[bytes], *, depth: int = 4) -> Iterator[bytes]:
    """Iterate `source` in a worker thread; yield its chunks here, in order."""
    items: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        it = iter(source)
        try:
            for chunk in it:
                if not put(chunk):
                    return
            put(_DONE)
        except BaseException as e:  # handed to the consumer, raised there
            put(e)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=run, name="argosy-archive-stage", daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(bytes, item)
    finally:
        stop.set()
        worker.join()
