#!/usr/bin/python3
"""Independent WebSocket peer for test/interop-python.test.ts: Debian's python3-websockets (10.x).

Run with /usr/bin/python3 (where Debian's python3-websockets is importable), with one JSON command
as the only argument. Prints exactly one JSON line on stdout:

  {"ok": true, "websockets": "10.4", "result": {...}}     the command ran; the test asserts on result
  {"ok": false, "error": "...", "traceback": "..."}        the command itself failed (exit status 1)
  {"ok": false, "error": "import", "detail": "..."}        websockets is not importable (exit status 3)

Commands ("op"):

  echo        {"url", "messages": [{"kind": "text"|"binary", "size": bytes}], "close": {"code", "reason"}}
              Sends each message, awaits its echo and compares it (type and content) with what was
              sent; then closes with close.code and reports how the connection ended.
  violations  {"base", "cases": [{"name", "path", "frames": [frame, ...]}]}
              For each case (concurrently, one connection each): a normal handshake, one echo round
              trip, then the case's frames written as raw bytes straight onto the TCP transport
              (bypassing the library's framing), then waits for the server to close the connection.
              frame = {"opcode": int, "payload_hex": str, "fin": bool (default true),
                       "rsv": 0..7 (4 = RSV1, 2 = RSV2, 1 = RSV3; default 0),
                       "masked": bool (default true), "mask_key_hex": 8 hex digits (default random)}
  ping        {"url", "payloads_hex": [str, ...]}
              Sends one ping per payload (one at a time) and records the pong frames that arrive.
  deflate_echo {"url", "messages": [{"kind": "text"|"binary"|"random", "size": bytes}],
              "offer": {permessage-deflate parameters} (optional)}
              Like echo, with permessage-deflate on (compression="deflate", the library's default
              offer; or, with "offer", a ClientPerMessageDeflateFactory with those parameters:
              server_no_context_takeover, client_no_context_takeover, server_max_window_bits,
              client_max_window_bits). "text" and "binary" are compressible, "random" is not.
              Reports the Sec-WebSocket-Extensions headers sent and received, the extensions the
              library negotiated, and the bytes that crossed the TCP connection each way.
"""

import asyncio
import hashlib
import json
import os
import sys
import traceback

try:
    import websockets
    from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
    from websockets.frames import OP_PONG
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory, PerMessageDeflate
    from websockets.legacy.client import WebSocketClientProtocol, connect
except Exception as exc:  # ImportError, or a broken installation
    print(json.dumps({"ok": False, "error": "import", "detail": f"{type(exc).__name__}: {exc}", "python": sys.executable}))
    sys.exit(3)

# Generous deadlines: they only keep a broken server from hanging the test.
CLOSE_TIMEOUT = 5.0
CASE_TIMEOUT = 20.0


class RecordingProtocol(WebSocketClientProtocol):
    """The library's client protocol, plus a record of what the transport and the frames did."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.peer_eof = False  # the server half-closed (FIN) the TCP connection
        self.waited_tcp_close_in_vain = False  # close_timeout elapsed before the server closed TCP
        self.lost_exc = None  # exception passed to connection_lost, if any
        self.pongs = []  # payloads of the pong frames received

    def eof_received(self):
        self.peer_eof = True
        return super().eof_received()

    def connection_lost(self, exc):
        if exc is not None:
            self.lost_exc = f"{type(exc).__name__}: {exc}"
        super().connection_lost(exc)

    async def wait_for_connection_lost(self):
        done = await super().wait_for_connection_lost()
        if not done:
            self.waited_tcp_close_in_vain = True
        return done

    async def read_frame(self, max_size):
        frame = await super().read_frame(max_size)
        if frame.opcode == OP_PONG:
            self.pongs.append(bytes(frame.data))
        return frame


def open_client(url):
    return connect(
        url,
        create_protocol=RecordingProtocol,
        max_size=None,
        compression=None,
        ping_interval=None,
        close_timeout=CLOSE_TIMEOUT,
        open_timeout=CASE_TIMEOUT,
    )


def build_frame(opcode, payload, fin=True, rsv=0, mask_key=None):
    """One RFC 6455 frame. mask_key: 4 bytes to mask with, or None for an unmasked frame."""
    b1 = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0x0F)
    mask_bit = 0x80 if mask_key is not None else 0
    n = len(payload)
    if n < 126:
        header = bytes([b1, mask_bit | n])
    elif n < 0x10000:
        header = bytes([b1, mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([b1, mask_bit | 127]) + n.to_bytes(8, "big")
    if mask_key is None:
        return header + payload
    assert len(mask_key) == 4
    masked = bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload))
    return header + mask_key + masked


def frame_from_spec(spec):
    masked = spec.get("masked", True)
    key = None
    if masked:
        key = bytes.fromhex(spec["mask_key_hex"]) if "mask_key_hex" in spec else os.urandom(4)
    return build_frame(
        spec["opcode"],
        bytes.fromhex(spec.get("payload_hex", "")),
        fin=spec.get("fin", True),
        rsv=spec.get("rsv", 0),
        mask_key=key,
    )


def text_of_size(n):
    """A str whose UTF-8 encoding is exactly n bytes, mixing 1-, 2-, 3- and 4-byte characters."""
    unit = "aé€😀"  # 1 + 2 + 3 + 4 = 10 bytes
    s = unit * (n // 10) + "z" * (n % 10)
    assert len(s.encode("utf-8")) == n
    return s


def sha256(data):
    return hashlib.sha256(data).hexdigest()


async def closed_report(ws):
    """How the connection ended, seen from the client (call once it is closed or closing)."""
    recv_exc = None
    try:
        extra = await asyncio.wait_for(ws.recv(), CASE_TIMEOUT)
        recv_exc = f"unexpected message after close: {extra!r:.80}"
    except ConnectionClosed as exc:
        recv_exc = type(exc).__name__
    await asyncio.wait_for(ws.wait_closed(), CASE_TIMEOUT)
    return {
        "closed": ws.closed,
        # The code and reason of the close frame the server sent (1006 when none arrived).
        "close_code": ws.close_code,
        "close_reason": ws.close_reason,
        "recv_exception": recv_exc,
        # The server closed the TCP connection itself (RFC 6455 §7.1.1: the server closes first).
        "server_closed_tcp": ws.peer_eof and not ws.waited_tcp_close_in_vain,
        "peer_eof": ws.peer_eof,
        "connection_lost_exception": ws.lost_exc,
    }


async def cmd_echo(cmd):
    results = []
    async with open_client(cmd["url"]) as ws:
        for m in cmd["messages"]:
            size = m["size"]
            if m["kind"] == "text":
                sent = text_of_size(size)
                sent_bytes = sent.encode("utf-8")
            else:
                sent = os.urandom(size)
                sent_bytes = sent
            await ws.send(sent)
            got = await asyncio.wait_for(ws.recv(), CASE_TIMEOUT)
            got_bytes = got.encode("utf-8") if isinstance(got, str) else bytes(got)
            results.append({
                "kind": m["kind"],
                "size": size,
                "sent_sha256": sha256(sent_bytes),
                "recv_type": "str" if isinstance(got, str) else "bytes" if isinstance(got, bytes) else type(got).__name__,
                "recv_len": len(got_bytes),
                "recv_sha256": sha256(got_bytes),
                "equal": type(got) is type(sent) and got == sent,
            })
        close = cmd["close"]
        await asyncio.wait_for(ws.close(close["code"], close["reason"]), CASE_TIMEOUT)
        report = await closed_report(ws)
        report["clean"] = report["recv_exception"] == "ConnectionClosedOK"
    return {"messages": results, "close": report}


async def run_violation(base, case):
    async with open_client(base + case["path"]) as ws:
        # A normal round trip first: the session is open and working before the violation.
        await ws.send("warmup")
        warm = await asyncio.wait_for(ws.recv(), CASE_TIMEOUT)
        raw = b"".join(frame_from_spec(f) for f in case["frames"])
        ws.transport.write(raw)
        report = await closed_report(ws)
        report["name"] = case["name"]
        report["warmup_ok"] = warm == "warmup"
        return report


async def cmd_violations(cmd):
    async def guarded(case):
        try:
            return await asyncio.wait_for(run_violation(cmd["base"], case), CASE_TIMEOUT * 2)
        except Exception as exc:
            return {"name": case["name"], "error": f"{type(exc).__name__}: {exc}"}

    return {"cases": await asyncio.gather(*(guarded(c) for c in cmd["cases"]))}


async def cmd_ping(cmd):
    results = []
    async with open_client(cmd["url"]) as ws:
        for payload_hex in cmd["payloads_hex"]:
            payload = bytes.fromhex(payload_hex)
            before = len(ws.pongs)
            waiter = await ws.ping(payload)
            await asyncio.wait_for(waiter, CASE_TIMEOUT)
            results.append({"sent_hex": payload_hex, "pongs_hex": [p.hex() for p in ws.pongs[before:]]})
        await asyncio.wait_for(ws.close(1000), CASE_TIMEOUT)
        report = await closed_report(ws)
    return {"pings": results, "close": report}


class WireCountingProtocol(RecordingProtocol):
    """RecordingProtocol that also counts the bytes crossing the TCP connection (after compression)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bytes_in = 0
        self.bytes_out = 0

    def connection_made(self, transport):
        write = transport.write

        def counting_write(data):
            self.bytes_out += len(data)
            return write(data)

        transport.write = counting_write
        super().connection_made(transport)

    def data_received(self, data):
        self.bytes_in += len(data)
        super().data_received(data)


def pattern_bytes(n):
    """Compressible binary: byte i is (i * 31 + 7) mod 256."""
    return bytes((i * 31 + 7) & 0xFF for i in range(n))


async def cmd_deflate_echo(cmd):
    offer = cmd.get("offer")
    if offer is None:
        options = {"compression": "deflate"}
    else:
        options = {"compression": None, "extensions": [ClientPerMessageDeflateFactory(**offer)]}
    results = []
    async with connect(
        cmd["url"],
        create_protocol=WireCountingProtocol,
        max_size=None,
        ping_interval=None,
        close_timeout=CLOSE_TIMEOUT,
        open_timeout=CASE_TIMEOUT,
        **options,
    ) as ws:
        negotiated = [
            {
                "name": e.name,
                "remote_no_context_takeover": e.remote_no_context_takeover,
                "local_no_context_takeover": e.local_no_context_takeover,
                "remote_max_window_bits": e.remote_max_window_bits,
                "local_max_window_bits": e.local_max_window_bits,
            }
            if isinstance(e, PerMessageDeflate)
            else {"name": e.name}
            for e in ws.extensions
        ]
        # Only the messages' bytes count: the handshake is behind us.
        in0, out0 = ws.bytes_in, ws.bytes_out
        for m in cmd["messages"]:
            size = m["size"]
            if m["kind"] == "text":
                sent = text_of_size(size)
                sent_bytes = sent.encode("utf-8")
            elif m["kind"] == "binary":
                sent = sent_bytes = pattern_bytes(size)
            else:
                sent = sent_bytes = os.urandom(size)
            await ws.send(sent)
            got = await asyncio.wait_for(ws.recv(), CASE_TIMEOUT)
            got_bytes = got.encode("utf-8") if isinstance(got, str) else bytes(got)
            results.append({
                "kind": m["kind"],
                "size": size,
                "sent_sha256": sha256(sent_bytes),
                "recv_type": "str" if isinstance(got, str) else "bytes" if isinstance(got, bytes) else type(got).__name__,
                "recv_len": len(got_bytes),
                "recv_sha256": sha256(got_bytes),
                "equal": type(got) is type(sent) and got == sent,
            })
        wire = {"bytes_in": ws.bytes_in - in0, "bytes_out": ws.bytes_out - out0}
        await asyncio.wait_for(ws.close(1000), CASE_TIMEOUT)
        report = await closed_report(ws)
    return {
        "request_extensions": ws.request_headers.get("Sec-WebSocket-Extensions"),
        "response_extensions": ws.response_headers.get("Sec-WebSocket-Extensions"),
        "negotiated": negotiated,
        "messages": results,
        "wire": wire,
        "close": report,
    }


COMMANDS = {"echo": cmd_echo, "violations": cmd_violations, "ping": cmd_ping, "deflate_echo": cmd_deflate_echo}


def main():
    try:
        if len(sys.argv) != 2:
            raise ValueError("usage: python_client.py '<json command>'")
        cmd = json.loads(sys.argv[1])
        result = asyncio.run(COMMANDS[cmd["op"]](cmd))
    except Exception as exc:
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}))
        sys.exit(1)
    print(json.dumps({"ok": True, "websockets": websockets.__version__, "result": result}))


if __name__ == "__main__":
    main()
