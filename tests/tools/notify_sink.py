#!/usr/bin/env python3
"""HTTP sink for the notifier tests: records every POST (path, headers, body) as one JSON line
and answers like Slack ("ok") or an Alertmanager webhook consumer. Optionally fails the first
N requests (--fail-first, with --fail-status and --retry-after) to exercise retries, and
answers slowly (--delay) to show how many requests a receiver gets at once ("active").

Usage: notify_sink.py PORT_FILE RECORD_FILE [--fail-first N] [--fail-status 503]
                      [--retry-after S] [--delay S]
"""
import argparse
import http.server
import json
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("port_file")
ap.add_argument("record")
ap.add_argument("--fail-first", type=int, default=0)
ap.add_argument("--fail-status", type=int, default=503)
ap.add_argument("--retry-after", default=None)
ap.add_argument("--delay", type=float, default=0, help="seconds each answer takes")
args = ap.parse_args()
lock = threading.Lock()
seen = {"n": 0, "active": 0}


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            seen["active"] += 1
            active = seen["active"]
        try:
            self.answer(body, active)
        finally:
            with lock:
                seen["active"] -= 1

    def answer(self, body, active):
        time.sleep(args.delay)
        with lock:
            seen["n"] += 1
            failing = seen["n"] <= args.fail_first
            with open(args.record, "a") as f:
                f.write(json.dumps({"t": time.time(), "active": active, "path": self.path, "status": args.fail_status if failing else 200,
                                    "content_type": self.headers.get("Content-Type"),
                                    "body": body.decode()}) + "\n")
        if failing:
            self.send_response(args.fail_status)
            if args.retry_after is not None:
                self.send_header("Retry-After", args.retry_after)
            self.end_headers()
            self.wfile.write(b"unavailable")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, fmt, *a):
        pass


http.server.ThreadingHTTPServer.request_queue_size = 128
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(args.port_file + ".tmp", args.port_file)
srv.serve_forever()
