"""A TCP proxy on 127.0.0.1 that makes every request 20 ms slower (a stand-in for a real
network between a pod and its object store).

    python -m bench.delay_proxy --upstream 127.0.0.1:PORT [--listen-port 0] [--delay-ms 20]

Prints `{"port": N}` on stdout once it listens, then serves until SIGTERM/SIGINT, and at
exit prints `{"connections": N, "chunks": N, "bytes_up": N, "bytes_down": N}`.

Delay model: a one-way delay line on the client -> server direction. Every chunk read
from the client is forwarded to the server no earlier than 20 ms after it was read, in
order; server -> client bytes pass at once. So every request (a new one on a keep-alive
connection, or the first on a new connection) reaches the server 20 ms late, and its
response can start no earlier: each request/response exchange costs 20 ms more, like a
network with a 20 ms round trip. It is latency, not a throughput cap: chunks in flight
are delayed together (a large body streams at full speed once its first byte is 20 ms
late), and requests pipelined or sent on parallel connections overlap their delays, as
they would on a real network. No HTTP parsing is needed: a request boundary is just the
first chunk after the client went quiet waiting for the response, and it gets the delay
like every chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

CHUNK = 256 * 1024


class Stats:
    connections = 0
    chunks = 0
    bytes_up = 0
    bytes_down = 0


async def _delayed_pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, stats: Stats
) -> None:
    """client -> server: each chunk is written `delay` seconds after it was read."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def read_side() -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                await queue.put((loop.time() + delay, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            await queue.put((loop.time() + delay, b""))

    async def write_side() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                try:
                    if writer.can_write_eof():
                        writer.write_eof()
                except (ConnectionError, OSError):
                    pass
                return
            stats.chunks += 1
            stats.bytes_up += len(data)
            writer.write(data)
            await writer.drain()

    reading = asyncio.create_task(read_side())
    try:
        await write_side()
    finally:
        reading.cancel()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stats: Stats) -> None:
    """server -> client, undelayed."""
    while True:
        data = await reader.read(CHUNK)
        if not data:
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except (ConnectionError, OSError):
                pass
            return
        stats.bytes_down += len(data)
        writer.write(data)
        await writer.drain()


async def _serve_one(
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    upstream: tuple[str, int],
    delay: float,
    stats: Stats,
) -> None:
    stats.connections += 1
    try:
        server_r, server_w = await asyncio.open_connection(*upstream)
    except OSError:
        client_w.close()
        return
    tasks = [
        asyncio.create_task(_delayed_pipe(client_r, server_w, delay, stats)),
        asyncio.create_task(_pipe(server_r, client_w, stats)),
    ]
    try:
        # a connection ends when either side closes; the other direction is then torn down
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except (ConnectionError, OSError):
        pass
    finally:
        for t in tasks:
            t.cancel()
        for w in (client_w, server_w):
            try:
                w.close()
            except (ConnectionError, OSError):
                pass


async def serve(upstream: tuple[str, int], port: int, delay: float) -> Stats:
    stats = Stats()
    server = await asyncio.start_server(
        lambda r, w: _serve_one(r, w, upstream, delay, stats), "127.0.0.1", port, backlog=1024
    )
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    async with server:
        await done.wait()
    return stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.delay_proxy")
    p.add_argument("--upstream", required=True, help="HOST:PORT of the real server")
    p.add_argument("--listen-port", type=int, default=0, help="0: a free port")
    p.add_argument("--delay-ms", type=float, default=20.0)
    args = p.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    t0 = time.monotonic()
    stats = asyncio.run(
        serve((host or "127.0.0.1", int(port)), args.listen_port, args.delay_ms / 1000)
    )
    print(
        json.dumps(
            {
                "connections": stats.connections,
                "chunks": stats.chunks,
                "bytes_up": stats.bytes_up,
                "bytes_down": stats.bytes_down,
                "seconds": round(time.monotonic() - t0, 1),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
