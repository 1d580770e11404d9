#!/usr/bin/env python3
"""A strict front for s3rver in the S3 tests, on 127.0.0.1 only.

s3rver speaks S3 well enough for listings and objects, but it accepts any
SigV4 signature, ignores If-Match and rewrites objects in place. This front
checks every signature itself (AWS's algorithm, written from the spec, so
the client's key encoding and signed headers are checked for real),
answers If-Match, serializes reads and writes of one key so a replacement
is atomic, does ListObjectsV2 grouping and paging itself (see
list_objects), and serves a few broken "buckets" that real endpoints can
produce. Everything else is forwarded to s3rver unsigned.

Usage: s3-front.py --upstream PORT --portfile FILE [--key K --secret S]
       [--token T] [--expired-token T] [--region R] [--allow-anonymous]
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import http.server
import os
import re
import sys
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as xml_escape

ARGS = None
KEY_LOCKS = {}
KEY_LOCKS_GUARD = threading.Lock()
SLOWDOWN_COUNT = {}


def key_lock(path):
    with KEY_LOCKS_GUARD:
        return KEY_LOCKS.setdefault(path, threading.Lock())


def s3_quote(s, safe):
    return urllib.parse.quote(s, safe=safe)


def error_xml(code, message, extra=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message>%s<RequestId>front</RequestId></Error>'
            % (code, message, extra)).encode()


class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if os.environ.get("S3_FRONT_DEBUG"):
            sys.stderr.write("front: " + fmt % args + "\n")

    def reply(self, status, body, ctype="application/xml", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def fail(self, status, code, message, extra=""):
        self.reply(status, error_xml(code, message, extra))

    # --- SigV4, from the AWS documentation ---------------------------
    def check_auth(self):
        auth = self.headers.get("Authorization")
        if not auth:
            if ARGS.allow_anonymous:
                return True
            self.fail(403, "AccessDenied", "Access Denied")
            return False
        m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/"
                     r"s3/aws4_request, ?SignedHeaders=([^,]+), ?"
                     r"Signature=([0-9a-f]{64})$", auth)
        if not m:
            self.fail(400, "AuthorizationHeaderMalformed",
                      "The authorization header is malformed")
            return False
        key, date, region, signed, sig = m.groups()
        if key != ARGS.key:
            self.fail(403, "InvalidAccessKeyId",
                      "The AWS Access Key Id you provided does not exist "
                      "in our records.")
            return False
        if region != ARGS.region:
            self.fail(400, "AuthorizationHeaderMalformed",
                      "the region '%s' is wrong; expecting '%s'"
                      % (region, ARGS.region),
                      "<Region>%s</Region>" % ARGS.region)
            return False
        payload = self.headers.get("x-amz-content-sha256")
        if payload is None:
            self.fail(400, "InvalidRequest", "Missing required header for "
                      "this request: x-amz-content-sha256")
            return False
        names = signed.split(";")
        for h in self.headers.keys():
            if h.lower().startswith("x-amz-") and h.lower() not in names:
                self.fail(403, "AccessDenied", "There were headers present "
                          "in the request which were not signed")
                return False
        for req in ("host", "x-amz-date", "x-amz-content-sha256"):
            if req not in names:
                self.fail(403, "AccessDenied", "%s is not signed" % req)
                return False
        raw_path, _, raw_query = self.path.partition("?")
        # S3 signs the path URI-encoded once, from its decoded form: a
        # client that left a reserved byte unencoded does not match.
        uri = s3_quote(urllib.parse.unquote(raw_path), "/~")
        pairs = []
        for part in raw_query.split("&") if raw_query else []:
            k, _, v = part.partition("=")
            pairs.append((s3_quote(urllib.parse.unquote(k), "~"),
                          s3_quote(urllib.parse.unquote(v), "~")))
        query = "&".join("%s=%s" % kv for kv in sorted(pairs))
        canon_headers = "".join(
            "%s:%s\n" % (n, " ".join((self.headers.get(n) or "").split()))
            for n in names)
        creq = "\n".join([self.command, uri, query, canon_headers, signed,
                          payload])
        amz_date = self.headers.get("x-amz-date", "")
        scope = "%s/%s/s3/aws4_request" % (date, region)
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(creq.encode()).hexdigest()])
        k = ("AWS4" + ARGS.secret).encode()
        for part in (date, region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig):
            self.fail(403, "SignatureDoesNotMatch",
                      "The request signature we calculated does not match "
                      "the signature you provided. Check your key and "
                      "signing method.")
            return False
        token = self.headers.get("x-amz-security-token")
        if ARGS.expired_token and token == ARGS.expired_token:
            self.fail(400, "ExpiredToken",
                      "The provided token has expired.")
            return False
        if ARGS.token and token not in (ARGS.token,):
            self.fail(403, "InvalidToken",
                      "The provided token is malformed or otherwise invalid.")
            return False
        return True

    # --- broken endpoints ----------------------------------------------
    def fault(self, bucket):
        if bucket == "not-s3":
            self.reply(200, b"<!DOCTYPE html><html><head><title>Welcome"
                       b"</title></head><body><p>It works!</p></body></html>",
                       "text/html")
        elif bucket == "truncated":
            self.reply(200, b'<?xml version="1.0" encoding="UTF-8"?>\n'
                       b"<ListBucketResult><Name>truncated</Name><IsTruncat"
                       b"ed>false</IsTruncated><Contents><Key>a</Key><Si")
        elif bucket == "token-loop":
            self.reply(200, b'<?xml version="1.0" encoding="UTF-8"?>\n'
                       b"<ListBucketResult><Name>token-loop</Name>"
                       b"<IsTruncated>true</IsTruncated>"
                       b"<NextContinuationToken>again</NextContinuationToken>"
                       b"<Contents><Key>a</Key><Size>1</Size></Contents>"
                       b"</ListBucketResult>")
        elif bucket == "slow-down":
            n = SLOWDOWN_COUNT.get(self.path, 0)
            SLOWDOWN_COUNT[self.path] = n + 1
            if n < 2:
                self.fail(503, "SlowDown", "Please reduce your request rate.")
            else:
                self.reply(200, b'<?xml version="1.0" encoding="UTF-8"?>\n'
                           b"<ListBucketResult><Name>slow-down</Name>"
                           b"<IsTruncated>false</IsTruncated><Contents>"
                           b"<Key>survived</Key><Size>0</Size></Contents>"
                           b"</ListBucketResult>")
        elif bucket == "no-length":
            # A HEAD without Content-Length (a proxy that re-chunks).
            self.send_response(200)
            self.send_header("ETag", '"v1"')
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(b"0\r\n\r\n")
        elif bucket == "long-etag":
            # An ETag longer than any client keeps; If-Match with
            # anything but the whole value fails, as S3's would.
            etag = '"' + "e" * 200 + '"'
            data = b"abcd"
            im = self.headers.get("If-Match")
            rng = re.match(r"bytes=(\d+)-(\d+)$",
                           self.headers.get("Range") or "")
            if im is not None and im != etag:
                self.fail(412, "PreconditionFailed",
                          "At least one of the pre-conditions you "
                          "specified did not hold")
            elif self.command == "HEAD" or not rng:
                self.reply(200, data, "application/octet-stream",
                           {"ETag": etag})
            else:
                a, b = int(rng.group(1)), min(int(rng.group(2)), 3)
                self.reply(206, data[a:b + 1], "application/octet-stream",
                           {"ETag": etag, "Content-Range":
                            "bytes %d-%d/%d" % (a, b, len(data))})
        elif bucket == "odd-names":
            # Keys no file system can show, beside two that it can.
            long_name = "L" * 300
            keys = ["ok-file", ".", "..", long_name, "", "dot/../escape"]
            prefixes = ["ok-dir/", "/", "../", "./", long_name + "/"]
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                    "<ListBucketResult><Name>odd-names</Name>"
                    "<EncodingType>url</EncodingType>"
                    "<IsTruncated>false</IsTruncated>")
            for k in keys:
                body += ("<Contents><Key>%s</Key><Size>2</Size>"
                         "<ETag>&quot;x&quot;</ETag></Contents>"
                         % urllib.parse.quote(k, safe="/"))
            for k in prefixes:
                body += ("<CommonPrefixes><Prefix>%s</Prefix>"
                         "</CommonPrefixes>" % urllib.parse.quote(k, safe="/"))
            self.reply(200, (body + "</ListBucketResult>").encode())
        else:
            return False
        return True

    # --- forwarding -------------------------------------------------------
    def forward(self):
        if not self.check_auth():
            return
        parts = self.path.split("?")[0].split("/")
        bucket = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
        if self.fault(bucket):
            return
        is_object = len(parts) > 2 and parts[2] != ""
        query = urllib.parse.parse_qs(self.path.partition("?")[2],
                                      keep_blank_values=True)
        if self.command == "GET" and not is_object and "list-type" in query:
            self.list_objects(bucket, {k: v[0] for k, v in query.items()})
            return
        lock = key_lock(self.path.split("?")[0]) if is_object else None
        if lock:
            lock.acquire()
        try:
            self.forward_locked()
        finally:
            if lock:
                lock.release()

    # --- ListObjectsV2 ----------------------------------------------------
    # s3rver prunes its walk below the first delimiter, so keys two levels
    # down never become common prefixes. The front lists flat (no
    # delimiter, which s3rver gets right), then groups and pages itself,
    # with encoding-type=url as S3 does it ('+' for a space).
    def upstream_keys(self, bucket, prefix):
        keys, token = [], None
        for _ in range(100000):
            q = {"list-type": "2", "max-keys": "1000", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            conn = http.client.HTTPConnection("127.0.0.1", ARGS.upstream,
                                              timeout=60)
            try:
                conn.request("GET", "/%s?%s" % (urllib.parse.quote(bucket),
                                                urllib.parse.urlencode(q)))
                resp = conn.getresponse()
                body = resp.read()
            finally:
                conn.close()
            if resp.status != 200:
                return resp.status, body
            root = ET.fromstring(body)
            for el in root:
                if el.tag.endswith("Contents"):
                    o = {c.tag.split("}")[-1]: c.text or "" for c in el}
                    keys.append(o)
            trunc = root.find("{*}IsTruncated")
            token_el = root.find("{*}NextContinuationToken")
            if trunc is None or trunc.text != "true" or token_el is None:
                return 200, keys
            token = token_el.text
        return 500, error_xml("InternalError", "upstream listing loops")

    def list_objects(self, bucket, q):
        prefix = q.get("prefix", "")
        delim = q.get("delimiter", "")
        url = q.get("encoding-type") == "url"
        try:
            max_keys = int(q.get("max-keys", "1000"))
        except ValueError:
            self.fail(400, "InvalidArgument", "bad max-keys")
            return
        max_keys = max(0, min(max_keys, 1000))
        after = q.get("start-after", "")
        if "continuation-token" in q:
            try:
                after = base64.b64decode(q["continuation-token"],
                                         validate=True).decode()
            except Exception:
                self.fail(400, "InvalidArgument",
                          "The continuation token provided is incorrect")
                return
        status, keys = self.upstream_keys(bucket, prefix)
        if status != 200:
            self.reply(status, keys)
            return
        items = {}
        for o in keys:
            k = o["Key"]
            rest = k[len(prefix):]
            if delim and delim in rest:
                cp = k[:len(prefix) + rest.index(delim) + len(delim)]
                items[cp] = None
            else:
                items[k] = o
        names = sorted(n for n in items if n > after)
        page, more = names[:max_keys], len(names) > max_keys

        def enc(v):
            v = urllib.parse.quote_plus(v, safe="/") if url else v
            return xml_escape(v)

        out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult '
               'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">']
        out.append("<Name>%s</Name><Prefix>%s</Prefix>" % (
            xml_escape(bucket), enc(prefix)))
        if "continuation-token" in q:
            out.append("<ContinuationToken>%s</ContinuationToken>"
                       % xml_escape(q["continuation-token"]))
        if more:
            out.append("<NextContinuationToken>%s</NextContinuationToken>"
                       % base64.b64encode(page[-1].encode()).decode())
        out.append("<KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys>"
                   % (len(page), max_keys))
        if delim:
            out.append("<Delimiter>%s</Delimiter>" % enc(delim))
        if url:
            out.append("<EncodingType>url</EncodingType>")
        out.append("<IsTruncated>%s</IsTruncated>"
                   % ("true" if more else "false"))
        for n in page:
            o = items[n]
            if o is not None:
                out.append("<Contents><Key>%s</Key><LastModified>%s"
                           "</LastModified><ETag>%s</ETag><Size>%s</Size>"
                           "<StorageClass>STANDARD</StorageClass></Contents>"
                           % (enc(n), xml_escape(o.get("LastModified", "")),
                              xml_escape(o.get("ETag", "")),
                              o.get("Size", "0")))
        for n in page:
            if items[n] is None:
                out.append("<CommonPrefixes><Prefix>%s</Prefix>"
                           "</CommonPrefixes>" % enc(n))
        out.append("</ListBucketResult>")
        self.reply(200, "".join(out).encode())

    def forward_locked(self):
        length = int(self.headers.get("Content-Length") or 0)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("authorization", "connection",
                                        "host", "if-match")}
        conn = http.client.HTTPConnection("127.0.0.1", ARGS.upstream,
                                          timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True,
                            skip_accept_encoding=True)
            conn.putheader("Host", "127.0.0.1:%d" % ARGS.upstream)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            left = length
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                conn.send(chunk)
                left -= len(chunk)
            resp = conn.getresponse()
            if_match = self.headers.get("If-Match")
            if (if_match and resp.status in (200, 206)
                    and resp.getheader("ETag") != if_match):
                resp.read()
                self.fail(412, "PreconditionFailed", "At least one of the "
                          "pre-conditions you specified did not hold",
                          "<Condition>If-Match</Condition>")
                return
            body_len = resp.getheader("Content-Length")
            if body_len is None and self.command != "HEAD":
                body = resp.read()
                body_len = str(len(body))
            else:
                body = None
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("connection", "transfer-encoding",
                                     "content-length", "keep-alive", "date",
                                     "server"):
                    self.send_header(k, v)
            if body_len is not None:
                self.send_header("Content-Length", body_len)
            self.end_headers()
            if self.command == "HEAD":
                return
            if body is not None:
                self.wfile.write(body)
                return
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                self.wfile.write(chunk)
        finally:
            conn.close()

    do_GET = forward
    do_HEAD = forward
    do_PUT = forward
    do_DELETE = forward


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", type=int, required=True)
    p.add_argument("--portfile", required=True)
    p.add_argument("--key", default="S3RVER")
    p.add_argument("--secret", default="S3RVER")
    p.add_argument("--token")
    p.add_argument("--expired-token")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--allow-anonymous", action="store_true")
    ARGS = p.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Front)
    srv.daemon_threads = True
    tmp = ARGS.portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, ARGS.portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
