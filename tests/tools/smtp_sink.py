#!/usr/bin/env python3
"""SMTP sink for the notifier tests, on python3's smtpd: stores each received message as
DIR/N.eml and its envelope as DIR/N.json. It offers neither STARTTLS nor AUTH.

Usage: smtp_sink.py PORT_FILE DIR
"""
import asyncore
import json
import os
import sys
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
import smtpd  # noqa: E402  (deprecated, still shipped by Debian 12's python3.11)

port_file, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)


class Sink(smtpd.SMTPServer):
    count = 0

    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        Sink.count += 1
        with open(os.path.join(out, f"{Sink.count}.eml"), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        with open(os.path.join(out, f"{Sink.count}.json"), "w") as f:
            json.dump({"from": mailfrom, "to": rcpttos}, f)
        return None


srv = Sink(("127.0.0.1", 0), None, decode_data=False)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.socket.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
asyncore.loop()
