#!/usr/bin/env python3
"""delay-proxy.py: an HTTP/1.1 reverse proxy that waits a fixed time before
forwarding each request, for benchmarking against a slow origin on a
machine without sch_netem.

  delay-proxy.py --upstream HOST:PORT --delay-ms N [--port N]
                 [--bind ADDR] [--port-file FILE]

Every client connection gets its own thread and its own keep-alive
connection to the upstream, so requests on different connections are
delayed in parallel (as network latency would be) while requests on one
connection are delayed one after another. The delay is taken once per
request, before it is sent upstream: a request costs delay + the
upstream's own time, like a round trip over a long link (the body then
streams at the upstream's speed; a real link's bandwidth is not modelled).

Bodies are streamed, never held: fixed-length ones with splice(2) through
a pipe where the platform has it (no copy through this process), chunked
ones (nginx's directory listings) forwarded frame by frame. Requests are
expected without bodies (GET, HEAD): that is all a read-only file system
client sends.
"""

import argparse
import os
import socket
import socketserver
import sys
import time

BUF = 1 << 20
HAVE_SPLICE = hasattr(os, "splice")


class Conn:
    """A socket with a read buffer, for parsing heads and chunk lines."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def fill(self):
        b = self.sock.recv(65536)
        if not b:
            raise EOFError
        self.buf += b

    def read_until(self, sep):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = bytes(self.buf[: i + len(sep)])
                del self.buf[: i + len(sep)]
                return out
            if len(self.buf) > 1 << 20:
                raise ValueError("head too long")
            self.fill()

    def forward(self, n, dst, pipe):
        """Copy exactly n bytes of body from here to socket dst."""
        if self.buf:
            k = min(n, len(self.buf))
            dst.sendall(self.buf[:k])
            del self.buf[:k]
            n -= k
        if n and pipe is not None:
            src, out = self.sock.fileno(), dst.fileno()
            r, w = pipe
            while n:
                got = os.splice(src, w, min(n, BUF))
                if got == 0:
                    raise EOFError
                left = got
                while left:
                    left -= os.splice(r, out, left)
                n -= got
            return
        mv = memoryview(bytearray(BUF))
        while n:
            got = self.sock.recv_into(mv[: min(n, BUF)])
            if got == 0:
                raise EOFError
            dst.sendall(mv[:got])
            n -= got


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return lines[0], fields


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = Conn(self.request)
        up = None
        pipe = os.pipe() if HAVE_SPLICE else None
        try:
            while True:
                try:
                    head = client.read_until(b"\r\n\r\n")
                except (EOFError, OSError):
                    return
                reqline, fields = parse_head(head)
                method = reqline.split(" ", 1)[0]
                time.sleep(self.server.delay)
                if up is None:
                    s = socket.create_connection(self.server.upstream)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    up = Conn(s)
                up.sock.sendall(head)
                rhead = up.read_until(b"\r\n\r\n")
                status, rfields = parse_head(rhead)
                self.request.sendall(rhead)
                code = int(status.split(" ")[1])
                if method == "HEAD" or code in (204, 304) or code < 200:
                    pass
                elif "chunked" in rfields.get("transfer-encoding", ""):
                    self.chunked(up)
                elif "content-length" in rfields:
                    up.forward(int(rfields["content-length"]),
                               self.request, pipe)
                else:
                    return  # body until close: not from nginx; give up
                if "close" in (fields.get("connection", "").lower(),
                               rfields.get("connection", "").lower()):
                    return
        except (OSError, EOFError, ValueError):
            return
        finally:
            if up is not None:
                up.sock.close()
            if pipe is not None:
                os.close(pipe[0])
                os.close(pipe[1])

    def chunked(self, up):
        while True:
            line = up.read_until(b"\r\n")
            self.request.sendall(line)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    t = up.read_until(b"\r\n")
                    self.request.sendall(t)
                    if t == b"\r\n":
                        return
            up.forward(size + 2, self.request, None)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True, help="HOST:PORT")
    ap.add_argument("--delay-ms", type=float, default=20)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port-file")
    a = ap.parse_args()
    host, port = a.upstream.rsplit(":", 1)
    srv = Server((a.bind, a.port), Handler)
    srv.upstream = (host, int(port))
    srv.delay = a.delay_ms / 1000.0
    port = srv.server_address[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(a.port_file + ".tmp", a.port_file)
    print("PORT %d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
