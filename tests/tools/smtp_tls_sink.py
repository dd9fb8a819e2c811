#!/usr/bin/python3
"""SMTP server for the notifier's TLS test, on aiosmtpd (Debian's python3-aiosmtpd): STARTTLS
required before anything else, AUTH (PLAIN/LOGIN) required before MAIL. Stores each message as
DIR/N.eml and DIR/N.json (envelope, whether the session was TLS and authenticated).

Usage: smtp_tls_sink.py PORT PORT_FILE DIR CERT KEY USER PASSWORD
"""
import json
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, port_file, out, cert, key, user, password = sys.argv[1:]
os.makedirs(out, exist_ok=True)


class Handler:
    count = 0

    async def handle_DATA(self, server, session, envelope):
        Handler.count += 1
        with open(os.path.join(out, f"{Handler.count}.eml"), "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(os.path.join(out, f"{Handler.count}.json"), "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "tls": bool(session.ssl), "authenticated": bool(session.authenticated)}, f)
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
          and auth_data.password == password.encode())
    return AuthResult(success=ok, handled=False)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
ctl = Controller(Handler(), hostname="127.0.0.1", port=int(port), tls_context=ctx,
                 require_starttls=True, authenticator=authenticate, auth_required=True)
ctl.start()
with open(port_file + ".tmp", "w") as f:
    f.write(port)
os.rename(port_file + ".tmp", port_file)
while True:
    time.sleep(3600)
