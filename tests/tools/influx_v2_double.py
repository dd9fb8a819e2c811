#!/usr/bin/env python3
"""A test double of InfluxDB 2.x's write API, which has no Debian package: the calls
damselfly-collector makes with output.api=v2, with InfluxDB's paths, headers and error bodies.

  POST /api/v2/write?org=ORG&bucket=BUCKET&precision=ns
       Authorization: Token TOKEN; Content-Encoding: gzip optional
       204 stored; 401 {"code":"unauthorized","message":"unauthorized access"};
       404 {"code":"not found","message":"bucket \"X\" not found"} (unknown org or bucket);
       400 {"code":"invalid","message":"..."} for a line without fields
  GET  /health   {"name":"influxdb","status":"pass"}

Faults (no auth): POST /__double/faults with a JSON list, served in order, one per write:
  [{"status": 429, "retry_after": 2}, {"status": 503}]
the write is answered with that status (and Retry-After) and nothing is stored.
Every write is appended to --log as one JSON line: time, status, query, headers, lines.
Stored lines are appended to --store.
"""
import argparse
import gzip
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
FAULTS = []
ARGS = None


def error(code, message):
    return json.dumps({"code": code, "message": message}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if body:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, b'{"name":"influxdb","status":"pass"}')
        else:
            self.reply(404, error("not found", "path not found"))

    def body(self):
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        return data.decode("utf-8")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__double/faults":
            with LOCK:
                FAULTS.extend(json.loads(self.body()))
            return self.reply(204)
        if url.path != "/api/v2/write":
            return self.reply(404, error("not found", "path not found"))
        query = urllib.parse.parse_qs(url.query)
        text = self.body()
        lines = [l for l in text.split("\n") if l.strip()]
        status, body, headers = self.write(query, lines)
        entry = {"time": time.time(), "status": status, "query": url.query,
                 "authorization": self.headers.get("Authorization"),
                 "encoding": self.headers.get("Content-Encoding"), "lines": len(lines)}
        with LOCK:
            with open(ARGS.log, "a") as log:
                log.write(json.dumps(entry) + "\n")
        self.reply(status, body, headers)

    def write(self, query, lines):
        with LOCK:
            fault = FAULTS.pop(0) if FAULTS else None
        if fault:
            headers = [("Retry-After", str(fault["retry_after"]))] if "retry_after" in fault else []
            return fault["status"], error("unavailable", "fault injected"), headers
        if self.headers.get("Authorization") != "Token " + ARGS.token:
            return 401, error("unauthorized", "unauthorized access"), []
        org, bucket = query.get("org", [""])[0], query.get("bucket", [""])[0]
        if org != ARGS.org:
            return 404, error("not found", f'organization name "{org}" not found'), []
        if bucket != ARGS.bucket:
            return 404, error("not found", f'bucket "{bucket}" not found'), []
        if query.get("precision", ["ns"])[0] != "ns":
            return 400, error("invalid", "this double takes precision=ns only"), []
        for i, line in enumerate(lines):
            if len(line.split(" ")) < 2:
                return 400, error("invalid", f"unable to parse '{line}': line {i + 1}"), []
        with LOCK:
            with open(ARGS.store, "a") as store:
                store.write("".join(l + "\n" for l in lines))
        return 204, b"", []


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--org", default="dsf")
    p.add_argument("--bucket", default="metrics")
    p.add_argument("--token", default="secret")
    p.add_argument("--log", required=True)
    p.add_argument("--store", required=True)
    ARGS = p.parse_args()
    ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
