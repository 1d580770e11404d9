#!/usr/bin/env python3
"""A fake EC2 instance metadata service (IMDSv2) on 127.0.0.1 for the S3
tests. It insists on the session-token flow and hands out the given
session tokens one after the other (the last one again once they run out),
so a test can start a client on a token the endpoint calls expired.

Usage: s3-imds.py --portfile FILE --key K --secret S --tokens T1,T2,...
"""

import argparse
import datetime
import http.server
import json
import os
import threading

ARGS = None
LOCK = threading.Lock()
SERVED = [0]


class Imds(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        if self.path != "/latest/api/token":
            return self.answer(404)
        if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.answer(400)
        self.answer(200, b"IMDS-SESSION")

    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != "IMDS-SESSION":
            return self.answer(401)
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            return self.answer(200, b"test-role")
        if self.path != base + "test-role":
            return self.answer(404)
        tokens = ARGS.tokens.split(",")
        with LOCK:
            n = SERVED[0]
            SERVED[0] += 1
        exp = (datetime.datetime.now(datetime.timezone.utc)
               + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        doc = {"Code": "Success", "Type": "AWS-HMAC",
               "AccessKeyId": ARGS.key, "SecretAccessKey": ARGS.secret,
               "Token": tokens[min(n, len(tokens) - 1)], "Expiration": exp}
        self.answer(200, json.dumps(doc).encode())


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--portfile", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--tokens", required=True)
    ARGS = p.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Imds)
    srv.daemon_threads = True
    with open(ARGS.portfile + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(ARGS.portfile + ".tmp", ARGS.portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()
