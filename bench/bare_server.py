"""The anchor: a hand-written ``websockets`` server with no cassette machinery.

    python bench/bare_server.py [--port 0] stream FRAMES   # send every line of FRAMES, close 1000
    python bench/bare_server.py [--port 0] exchange TURNS  # play a recorded exchange

``FRAMES`` holds one pre-encoded text frame per line. ``TURNS`` is a JSON list
of ``[client_frame_or_null, [server_frame, ...]]``: the server frames of the
first turn go out on connect, those of each later turn once the client has sent
its next frame (not compared: no matching, no report). It prints ``listening on
ws://HOST:PORT`` like ``fakeupstream serve`` and runs until SIGTERM/SIGINT.
Every frame is encoded before the first connection: this is the fastest a
``websockets`` server can play the same bytes with ``send()``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python bench/bare_server.py")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backlog", type=int, default=100)
    parser.add_argument("mode", choices=["stream", "exchange"])
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    text = args.file.read_text(encoding="utf-8")

    if args.mode == "stream":
        frames = text.splitlines()

        async def handler(ws: ServerConnection) -> None:
            for frame in frames:
                await ws.send(frame)
            await ws.close(1000, "end of stream")

    else:
        turns: list[tuple[str | None, list[str]]] = [
            (client, server) for client, server in json.loads(text)
        ]

        async def handler(ws: ServerConnection) -> None:
            try:
                for number, (_client, server) in enumerate(turns):
                    if number:
                        await ws.recv()
                    for frame in server:
                        await ws.send(frame)
                await ws.wait_closed()
            except ConnectionClosed:
                pass

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set_result, None)
    async with serve(handler, args.host, args.port, backlog=args.backlog) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"listening on ws://{args.host}:{port}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
