#!/usr/bin/env python3
"""slow_origin.py: a small HTTP/1.1 origin with knobs for making it slow,
stalled, down or wrong, for the integration tests and the kernel-module tests.

It serves ROOT read-only: GET and HEAD of files with single-range support
(206 + Content-Range, 416 when unsatisfiable, If-Range), ETag and
Last-Modified, and an nginx-style HTML autoindex for directories (a directory
asked for without its trailing slash gets a 301 to it). Threaded, keep-alive.

Command line (keep it stable: other test suites depend on it):

  slow_origin.py --root DIR [--port N] [--bind ADDR] [--port-file FILE]
                 [--control FILE] [--log FILE]
                 [--delay-ms N] [--delay-data-only] [--stall] [--down]
                 [--ignore-range] [--short-body] [--lie-length]
                 [--wrong-range] [--status N]

  --root DIR         directory to serve (required)
  --port N           port to listen on; 0 (default) picks a free one
  --bind ADDR        address to listen on (default 127.0.0.1)
  --port-file FILE   once listening, write the port number to FILE
                     (atomically: written to FILE.tmp, then renamed);
                     the port is also printed on stdout as "PORT N"
  --control FILE     knobs file re-read on every request (see below)
  --log FILE         append one line per request: "METHOD PATH RANGE STATUS"
                     (STATUS may be "dropped" or "client-gone"); a request
                     held by --stall gets an extra line "... stalled" when
                     it starts waiting
  --delay-ms N       sleep N ms before sending each response header
  --delay-data-only  apply --delay-ms only to GET of files (not listings,
                     not HEAD, not redirects)
  --stall            accept GETs of files and never answer them (until the
                     stall is lifted at run time or the client goes away);
                     listings and HEAD are still answered
  --down             answer nothing: every request's connection is closed
                     without a response (the listening socket stays open)
  --ignore-range     answer 200 with the whole body even when a Range was asked
  --short-body       send the right headers, then fewer bytes than
                     Content-Length, then close the connection
  --lie-length       claim files are 4096 bytes longer than they are (HEAD,
                     200 and 206 answers, listing sizes); bytes past the real
                     end are never sent (short body, then close)
  --wrong-range      answer a Range request with 206 for the same length
                     starting at offset 0, with an honest Content-Range
  --status N         answer GET and HEAD of files with HTTP status N and a
                     short text body (e.g. 503, 500, 403); 0 = off

Run-time control, so a test can flip behaviour without restarting:

  * The control file (--control FILE), if it exists, holds "key=value" lines
    overriding the command line; it is re-read whenever its mtime or size
    changes. Keys: delay_ms, delay_data_only, stall, down, ignore_range,
    short_body, lie_length, wrong_range (booleans are 0/1), status, and four
    for the control file only: head_status (answer HEAD of files with that
    status, as a server whose URLs are signed for GET does; 0 = off),
    head_no_length (HEAD of files answered without Content-Length),
    absolute_hrefs (listing links are absolute paths, "/dir/name", as
    some servers write them) and moved=OLD>NEW (a request whose path starts
    with OLD is answered 301 to the same path under NEW, as after a
    directory was moved).
    Removing the file returns to the command-line settings. Write it
    atomically (a temporary file, then rename) so a request never sees
    half of it.
  * SIGUSR1 toggles "stall", SIGUSR2 toggles "down" (on top of the above).

For an origin that refuses connections, stop the process (SIGTERM) and later
start a new one with --port set to the old port (the address is reusable).

Exit: SIGTERM or SIGINT end it cleanly with status 0.
"""

import argparse
import email.utils
import html
import http.server
import os
import select
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

BOOL_KEYS = ("delay_data_only", "stall", "down", "ignore_range",
             "short_body", "lie_length", "wrong_range", "head_no_length",
             "absolute_hrefs")
INT_KEYS = ("delay_ms", "status", "head_status")
STR_KEYS = ("moved",)
LIE_EXTRA = 4096
CHUNK = 256 * 1024
# Upper bound on how long a stalled request is held, so a forgotten test
# server can never pin a thread for ever.
STALL_MAX_S = 600


class Knobs:
    """Current behaviour: command line, then control file, then signals."""

    def __init__(self, args):
        self.base = {k: bool(getattr(args, k, False)) for k in BOOL_KEYS}
        self.base["delay_ms"] = int(args.delay_ms)
        self.base["status"] = int(args.status)
        self.base["head_no_length"] = False
        self.base["head_status"] = 0
        self.base["absolute_hrefs"] = False
        self.base["moved"] = ""
        self.control = args.control
        self.lock = threading.Lock()
        self.file_vals = {}
        self.file_sig = None
        self.sig_toggle = {"stall": False, "down": False}

    def _reload(self):
        # Caller holds self.lock.
        if not self.control:
            return
        try:
            st = os.stat(self.control)
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            self.file_vals, self.file_sig = {}, None
            return
        if sig == self.file_sig:
            return
        vals = {}
        try:
            with open(self.control, encoding="utf-8") as f:
                for line in f:
                    line = line.split("#", 1)[0].strip()
                    if "=" not in line:
                        continue
                    k, v = (s.strip() for s in line.split("=", 1))
                    if k in INT_KEYS:
                        vals[k] = int(v)
                    elif k in STR_KEYS:
                        vals[k] = v
                    elif k in BOOL_KEYS:
                        vals[k] = v.lower() in ("1", "true", "yes", "on")
        except (OSError, ValueError):
            return
        self.file_vals, self.file_sig = vals, sig

    def get(self):
        with self.lock:
            self._reload()
            cur = dict(self.base)
            cur.update(self.file_vals)
            for k, flip in self.sig_toggle.items():
                if flip:
                    cur[k] = not cur[k]
            return cur

    def toggle(self, key):
        with self.lock:
            self.sig_toggle[key] = not self.sig_toggle[key]


def http_date(ts):
    return email.utils.formatdate(ts, usegmt=True)


def parse_range(value, size):
    """Return (start, end_inclusive), None for no usable range, or
    "unsatisfiable". Only a single byte range is honoured; several ranges
    are answered with the whole body, which RFC 9110 allows."""
    if not value or not value.startswith("bytes="):
        return None
    spec = value[len("bytes="):].strip()
    if "," in spec:
        return None
    first, sep, last = spec.partition("-")
    if not sep:
        return None
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return "unsatisfiable"
            return (max(0, size - n), size - 1) if size else "unsatisfiable"
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "unsatisfiable"
    return (start, min(end, size - 1))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "slow_origin/1"

    def log_message(self, fmt, *args):
        pass

    def _log(self, status):
        srv = self.server
        if not srv.logf:
            return
        line = "%s %s %s %s\n" % (self.command, self.path,
                                  self.headers.get("Range", "-"), status)
        with srv.log_lock:
            srv.logf.write(line)
            srv.logf.flush()

    def _client_gone(self, timeout):
        """Wait up to timeout seconds; True if the peer closed meanwhile."""
        try:
            r, _, _ = select.select([self.connection], [], [], timeout)
            if not r:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _sleep(self, seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return True
            if self._client_gone(min(left, 0.1)):
                return False

    def _drop(self):
        self._log("dropped")
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _fs_path(self):
        raw = urllib.parse.urlsplit(self.path).path
        rel = urllib.parse.unquote(raw)
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if ".." in parts:
            return raw, None
        return raw, os.path.join(self.server.root, *parts)

    def _simple(self, status, body=b"", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._log(status)

    def do_HEAD(self):
        self._serve()

    def do_GET(self):
        self._serve()

    def _serve(self):
        knobs = self.server.knobs.get()
        if knobs["down"]:
            self._drop()
            return
        raw, path = self._fs_path()
        old, _, new = knobs["moved"].partition(">")
        if old and raw.startswith(old):
            self._pre_delay(knobs, data=False)
            self._simple(301, b"", [("Location", new + raw[len(old):])])
            return
        if path is None or not os.path.exists(path):
            self._pre_delay(knobs, data=False)
            self._simple(404, b"not found\n")
            return
        if os.path.isdir(path):
            self._pre_delay(knobs, data=False)
            if not raw.endswith("/"):
                self._simple(301, b"", [("Location", raw + "/")])
                return
            self._listing(raw, path, knobs)
            return
        data = self.command == "GET"
        if data and knobs["stall"]:
            if not self._stall():
                return
            knobs = self.server.knobs.get()
            if knobs["down"]:
                self._drop()
                return
        if not self._pre_delay(knobs, data=data):
            return
        if knobs["status"]:
            self._simple(knobs["status"], b"failing on purpose\n")
            return
        if self.command == "HEAD" and knobs["head_status"]:
            self._simple(knobs["head_status"], b"not for HEAD\n")
            return
        self._file(path, knobs)

    def _pre_delay(self, knobs, data):
        ms = knobs["delay_ms"]
        if ms <= 0 or (knobs["delay_data_only"] and not data):
            return True
        if self._sleep(ms / 1000.0):
            return True
        self._log("client-gone")
        self.close_connection = True
        return False

    def _stall(self):
        """Hold the request while stall is on; False if the client left."""
        self._log("stalled")
        end = time.monotonic() + STALL_MAX_S
        while time.monotonic() < end:
            if not self.server.knobs.get()["stall"]:
                return True
            if self._client_gone(0.1):
                self._log("client-gone")
                self.close_connection = True
                return False
        self.close_connection = True
        return False

    def _listing(self, raw, path, knobs):
        try:
            names = sorted(os.listdir(path))
        except OSError:
            self._simple(403, b"forbidden\n")
            return
        title = html.escape(urllib.parse.unquote(raw))
        rows = ['<a href="../">../</a>']
        for name in names:
            full = os.path.join(path, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            isdir = os.path.isdir(full)
            shown = name + ("/" if isdir else "")
            href = urllib.parse.quote(name) + ("/" if isdir else "")
            if knobs["absolute_hrefs"]:
                href = raw + href
            when = time.strftime("%d-%b-%Y %H:%M", time.gmtime(st.st_mtime))
            size = "-" if isdir else str(
                st.st_size + (LIE_EXTRA if knobs["lie_length"] else 0))
            pad = " " * max(1, 51 - len(shown))
            rows.append('<a href="%s">%s</a>%s%s %19s' %
                        (href, html.escape(shown), pad, when, size))
        body = ("<html>\r\n<head><title>Index of %s</title></head>\r\n"
                "<body>\r\n<h1>Index of %s</h1><hr><pre>%s\r\n"
                "</pre><hr></body>\r\n</html>\r\n" %
                (title, title, "\r\n".join(rows))).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._log(200)

    def _file(self, path, knobs):
        try:
            f = open(path, "rb")
        except OSError:
            self._simple(403, b"forbidden\n")
            return
        with f:
            st = os.fstat(f.fileno())
            real = st.st_size
            claimed = real + (LIE_EXTRA if knobs["lie_length"] else 0)
            etag = '"%x-%x"' % (int(st.st_mtime), claimed)
            rng = parse_range(self.headers.get("Range"), claimed)
            if_range = self.headers.get("If-Range")
            if if_range and if_range != etag and \
                    if_range != http_date(st.st_mtime):
                rng = None
            if knobs["ignore_range"]:
                rng = None
            if rng == "unsatisfiable":
                self._simple(416, b"", [("Content-Range",
                                         "bytes */%d" % claimed)])
                return
            if rng is None:
                status, start, length = 200, 0, claimed
            else:
                start, end = rng
                length = end - start + 1
                status = 206
                if knobs["wrong_range"]:
                    start = 0
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            if self.command != "HEAD" or not knobs["head_no_length"]:
                self.send_header("Content-Length", str(length))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", http_date(st.st_mtime))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", "bytes %d-%d/%d" %
                                 (start, start + length - 1, claimed))
            self.end_headers()
            self._log(status)
            if self.command == "HEAD":
                return
            todo = length
            if knobs["short_body"]:
                # At least one byte short, at most half the body sent.
                todo = min(length - 1, length // 2) if length else 0
            f.seek(start)
            sent = 0
            while sent < todo:
                buf = f.read(min(CHUNK, todo - sent))
                if not buf:
                    break
                self.wfile.write(buf)
                sent += len(buf)
            if sent < length:
                # The body is short (on purpose or past the real end):
                # closing is the only honest way to end it.
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    ap = argparse.ArgumentParser(
        description="HTTP/1.1 test origin with delay/stall/fault knobs")
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port-file")
    ap.add_argument("--control")
    ap.add_argument("--log")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--delay-data-only", action="store_true")
    ap.add_argument("--stall", action="store_true")
    ap.add_argument("--down", action="store_true")
    ap.add_argument("--ignore-range", action="store_true")
    ap.add_argument("--short-body", action="store_true")
    ap.add_argument("--lie-length", action="store_true")
    ap.add_argument("--wrong-range", action="store_true")
    ap.add_argument("--status", type=int, default=0)
    args = ap.parse_args()

    srv = Server((args.bind, args.port), Handler)
    srv.root = os.path.abspath(args.root)
    srv.knobs = Knobs(args)
    srv.log_lock = threading.Lock()
    srv.logf = open(args.log, "a", encoding="utf-8") if args.log else None

    signal.signal(signal.SIGUSR1, lambda s, f: srv.knobs.toggle("stall"))
    signal.signal(signal.SIGUSR2, lambda s, f: srv.knobs.toggle("down"))

    def stop(signum, frame):
        # shutdown() waits for serve_forever, so it cannot run here.
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    print("PORT %d" % port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
