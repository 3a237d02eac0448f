"""A loopback HTTP proxy in front of moto that adds latency to every request and can inject
faults. Used by the benchmark (latency) and the reliability runs (faults).

    python benches/proxy.py --upstream 127.0.0.1:5000 --port 0 [--latency-ms 100]
        [--fault-rate 0.2 --faults 503,500,reset,stall,lost --stall-seconds 40 --seed 1]
        [--stall-header x-amz-copy-source] [--reject-header x-amz-checksum-sha256]

It prints `listening PORT` on stdout once ready. The latency is added per request, also on
kept-alive connections: the client connection is kept open (moto closes every connection;
the proxy opens a new upstream connection per request). `GET /__proxy/stats` returns the
counts as JSON; `GET /__proxy/requests` the request lines since the last reset (method and
path; query parameters that carry a signature are left out); `GET /__proxy/arrivals` when
each of them arrived (seconds, on the proxy's monotonic clock); `POST /__proxy/reset` zeroes
them all. Only loopback addresses are used.
"""

import argparse
import asyncio
import json
import random
import sys

READ_METHODS = {"GET", "HEAD"}


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.lines = []
        self.arrivals = []
        self.requests = 0
        self.by_method = {}
        self.faults = {}
        self.in_flight = 0
        self.max_in_flight = 0

    def as_json(self):
        return json.dumps(
            {
                "requests": self.requests,
                "by_method": self.by_method,
                "faults": self.faults,
                "max_in_flight": self.max_in_flight,
            }
        ).encode()


async def read_message(reader, is_response=False, request_method=None):
    """One HTTP/1.1 message: (start line, headers list, body bytes), or None at EOF."""
    try:
        start = (await reader.readuntil(b"\r\n")).decode("latin-1").rstrip("\r\n")
    except asyncio.IncompleteReadError:
        return None
    headers = []
    while True:
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n":
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    lower = {name.lower(): value for name, value in headers}
    body = b""
    no_body = False
    if is_response:
        status = int(start.split()[1])
        no_body = request_method == "HEAD" or status in (204, 304) or 100 <= status < 200
    if not no_body:
        if "transfer-encoding" in lower and "chunked" in lower["transfer-encoding"].lower():
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                chunk = await reader.readexactly(size + 2)
                body += chunk[:-2]
                if size == 0:
                    break
            headers = [(n, v) for n, v in headers if n.lower() != "transfer-encoding"]
            headers.append(("Content-Length", str(len(body))))
        elif "content-length" in lower:
            body = await reader.readexactly(int(lower["content-length"]))
        elif is_response:
            body = await reader.read()
    return start, headers, body


def unsigned(path):
    """The path without query parameters that carry credentials (presigned requests)."""
    base, _, query = path.partition("?")
    kept = [part for part in query.split("&") if part and not part.lower().startswith("x-amz-")]
    return base + ("?" + "&".join(kept) if kept else "")


def serialise(start, headers, body, connection):
    headers = [(n, v) for n, v in headers if n.lower() not in ("connection", "content-length", "keep-alive")]
    headers.append(("Content-Length", str(len(body))))
    headers.append(("Connection", connection))
    text = start + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    return text.encode("latin-1") + body


def error_response(status, code, message):
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>proxy</RequestId></Error>"
    ).encode()
    reason = {400: "Bad Request", 500: "Internal Server Error", 503: "Slow Down"}[status]
    return serialise(f"HTTP/1.1 {status} {reason}", [("Content-Type", "application/xml")], body, "keep-alive")


class Proxy:
    def __init__(self, args):
        self.args = args
        self.stats = Stats()
        self.random = random.Random(args.seed)
        self.faults = [fault for fault in args.faults.split(",") if fault]
        host, _, port = args.upstream.rpartition(":")
        self.upstream = (host, int(port))

    def pick_fault(self):
        if self.faults and self.random.random() < self.args.fault_rate:
            return self.random.choice(self.faults)
        return None

    async def handle(self, reader, writer):
        try:
            while True:
                message = await read_message(reader)
                if message is None or not message[0]:
                    break
                start, headers, body = message
                method, path = start.split()[0], start.split()[1]
                if path.startswith("/__proxy/"):
                    if path.startswith("/__proxy/reset"):
                        self.stats.reset()
                    if path.startswith("/__proxy/requests"):
                        answer = json.dumps(self.stats.lines).encode()
                    elif path.startswith("/__proxy/arrivals"):
                        answer = json.dumps(self.stats.arrivals).encode()
                    else:
                        answer = self.stats.as_json()
                    closing = any(n.lower() == "connection" and v.lower() == "close" for n, v in headers)
                    writer.write(serialise("HTTP/1.1 200 OK", [("Content-Type", "application/json")], answer, "close" if closing else "keep-alive"))
                    await writer.drain()
                    if closing:
                        break
                    continue
                self.stats.requests += 1
                self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1
                if len(self.stats.lines) < 100_000:
                    self.stats.lines.append(f"{method} {unsigned(path)}")
                    self.stats.arrivals.append(asyncio.get_running_loop().time())
                self.stats.in_flight += 1
                self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
                try:
                    if self.args.latency_ms:
                        await asyncio.sleep(self.args.latency_ms / 1000)
                    fault = None if path.startswith("/moto-api") else self.pick_fault()
                    stall_header = (self.args.stall_header or "").lower()
                    if stall_header and any(n.lower() == stall_header for n, _ in headers):
                        fault = "stall"
                    reject_header = (self.args.reject_header or "").lower()
                    if reject_header and any(
                        n.lower() == reject_header or reject_header in v.lower() for n, v in headers
                    ):
                        # A store that does not implement the header (as S3-compatible stores
                        # refuse the SDK's checksums): named in a header or announced as a trailer.
                        fault = "reject"
                    if fault:
                        self.stats.faults[fault] = self.stats.faults.get(fault, 0) + 1
                    if fault == "reject":
                        writer.write(error_response(400, "InvalidArgument", f"{reject_header} is not supported"))
                        await writer.drain()
                        continue
                    if fault == "reset":
                        writer.transport.abort()
                        return
                    if fault == "stall":
                        await asyncio.sleep(self.args.stall_seconds)
                        writer.transport.abort()
                        return
                    if fault == "503":
                        writer.write(error_response(503, "SlowDown", "Please reduce your request rate."))
                        await writer.drain()
                        continue
                    if fault == "500":
                        writer.write(error_response(500, "InternalError", "We encountered an internal error. Please try again."))
                        await writer.drain()
                        continue
                    upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
                    upstream_writer.write(serialise(start, headers, body, "close"))
                    await upstream_writer.drain()
                    response = await read_message(upstream_reader, is_response=True, request_method=method)
                    upstream_writer.close()
                    if response is None or fault == "lost":
                        # "lost": the request reached moto and took effect, its answer did not
                        # reach the client (a timeout after the fact).
                        writer.transport.abort()
                        return
                    writer.write(serialise(*response, "keep-alive"))
                    await writer.drain()
                finally:
                    self.stats.in_flight -= 1
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the connection is already gone
                pass


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="HOST:PORT of moto (loopback)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--fault-rate", type=float, default=0)
    parser.add_argument("--faults", default="", help="comma-separated: 503,500,reset,stall,lost")
    parser.add_argument("--stall-seconds", type=float, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stall-header", default=None, help="stall every request that carries this header (e.g. x-amz-copy-source: CopyObject)")
    parser.add_argument("--reject-header", default=None, help="answer 400 InvalidArgument to every request that carries this header, or announces it as a trailer")
    parser.add_argument("--exit-with-stdin", action="store_true", help="stop when standard input closes")
    args = parser.parse_args()
    if args.exit_with_stdin:
        import os
        import threading

        def exit_when_stdin_closes():
            sys.stdin.buffer.read()
            os._exit(0)

        threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    host = args.upstream.rpartition(":")[0]
    if not host.startswith("127.") and host not in ("localhost", "::1"):
        sys.exit("the proxy only forwards to loopback addresses")
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", args.port, limit=1 << 24)
    port = server.sockets[0].getsockname()[1]
    print(f"listening {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
