"""A real SMTP server for alert's email tests (aiosmtpd).

usage: smtpd.py PORT OUTDIR MODE [CERT KEY USER PASSWORD]
MODE: none (plain, no auth), starttls (STARTTLS, AUTH required after it)
or tls (implicit TLS, AUTH required). Every message is saved to OUTDIR as
NNN.json: {"from", "to", "data"}. Prints READY when it listens; stops when
stdin closes.
"""
import json
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, outdir, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
user = password = None
tls_ctx = None
if mode != "none":
    cert, key, user, password = sys.argv[4:8]
    # PROTOCOL_TLS (not _SERVER): the controller's start-up probe wraps a
    # client socket with the same context.
    tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS)
    tls_ctx.load_cert_chain(cert, key)


class Save:
    async def handle_DATA(self, server, session, envelope):
        n = len(os.listdir(outdir))
        tmp = os.path.join(outdir, ".%03d.tmp" % n)
        with open(tmp, "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "data": envelope.content.decode("utf-8", "replace")}, f)
        os.rename(tmp, os.path.join(outdir, "%03d.json" % n))
        return "250 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == user.encode() and auth_data.password == password.encode())
    return AuthResult(success=ok, handled=False)


kw = {}
if mode == "starttls":
    kw = dict(tls_context=tls_ctx, require_starttls=True, authenticator=authenticate, auth_required=True)
elif mode == "tls":
    kw = dict(ssl_context=tls_ctx, authenticator=authenticate, auth_required=True, auth_require_tls=False)
c = Controller(Save(), hostname="127.0.0.1", port=port, **kw)
c.start()
print("READY", flush=True)
sys.stdin.read()
c.stop()
