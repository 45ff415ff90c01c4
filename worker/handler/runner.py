# MyT handler runner: loads the user's handler.py and serves batches over
# stdin/stdout. Protocol (one JSON value per line):
#   runner -> worker: {"ready": true} once loaded, or {"fatal": "..."}
#   worker -> runner: a JSON array of messages (one batch)
#   runner -> worker: one line per message, in order: {"r": result} or {"e": "error"}
# The user's print() goes to stderr so it cannot corrupt the protocol.
import datetime
import decimal
import importlib.util
import json
import os
import sys
import traceback


def _default(o):
    if isinstance(o, (datetime.datetime, datetime.date)):
        if isinstance(o, datetime.datetime) and o.tzinfo is None:
            o = o.replace(tzinfo=datetime.timezone.utc)
        return o.isoformat()
    if isinstance(o, decimal.Decimal):
        return float(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError("result value of type %s is not JSON serializable" % type(o).__name__)


def main():
    out = os.fdopen(os.dup(1), "w", buffering=1 << 16)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    path = sys.argv[1]
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        spec = importlib.util.spec_from_file_location("handler", path)
        if spec is None:
            raise ImportError("cannot load %s" % path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["handler"] = mod
        spec.loader.exec_module(mod)
        process = getattr(mod, "process", None)
        if not callable(process):
            raise TypeError("handler.py must define process(msg)")
    except BaseException as e:  # noqa: BLE001 - report any load failure
        traceback.print_exc()
        out.write(json.dumps({"fatal": "%s: %s" % (type(e).__name__, e)}) + "\n")
        out.flush()
        sys.exit(3)
    out.write('{"ready":true}\n')
    out.flush()
    dumps = json.dumps
    for line in sys.stdin.buffer:
        batch = json.loads(line)
        for msg in batch:
            try:
                s = '{"r":' + dumps(process(msg), allow_nan=False, default=_default) + "}\n"
            except Exception as e:  # noqa: BLE001 - per-message errors go back
                s = dumps({"e": "%s: %s" % (type(e).__name__, e)}) + "\n"
            out.write(s)
            out.flush()


main()
