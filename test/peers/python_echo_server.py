#!/usr/bin/python3
"""Echo server on Debian's python3-websockets (10.x), for scripts/conformance.ts.

Run with /usr/bin/python3 (where Debian's python3-websockets is importable). Listens on 127.0.0.1
and a free port, and prints that port on stdout as the first line (then nothing else on stdout).
Every message is echoed as it came: a text message (str) as text, a binary one (bytes) as binary.

The settings are those of the comparison: max_size 17 MiB (group 9 sends up to 16 MiB), no
permessage-deflate (the suite does not negotiate it), no keepalive pings (they would be unexpected
events in the cases' event lists). Everything else is the library's default. Runs until killed.
"""

import asyncio
import sys

try:
    import websockets
    from websockets.exceptions import ConnectionClosed
except Exception as exc:  # ImportError, or a broken installation
    print(f"python3-websockets is not importable by {sys.executable}: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(3)

MAX_SIZE = 17 * 1024 * 1024


async def echo(websocket):
    try:
        async for message in websocket:
            await websocket.send(message)
    except ConnectionClosed:
        # The connection ended with an error (protocol violation, abrupt close): nothing to echo.
        pass


async def main():
    async with websockets.serve(
        echo,
        "127.0.0.1",
        0,
        max_size=MAX_SIZE,
        compression=None,
        ping_interval=None,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(port, flush=True)
        print(f"python3-websockets {websockets.__version__} echo server on 127.0.0.1:{port}", file=sys.stderr, flush=True)
        await asyncio.Future()  # until killed


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
