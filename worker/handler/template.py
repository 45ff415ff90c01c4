"""MyT handler: your code between the broker and the database.

The worker imports this file once, in a long-lived python3 process, and
calls process(msg) for every message that arrives on myt.ingest. Any
library installed on the platform host can be imported.

msg is a dict:
    msg["id"]       unique message id (message-id property or content hash)
    msg["device"]   device name: the 2nd level of topic myt/<device>/<stream>
    msg["topic"]    the full MQTT-style topic, e.g. "myt/kitchen/env"
    msg["stream"]   the levels after the device, e.g. "env"
    msg["ts"]       RFC 3339 time: the payload's "ts"/"time"/"timestamp"
                    (RFC 3339 or epoch s/ms/us/ns) or the receive time
    msg["payload"]  the decoded JSON payload (dict, list, number, ...)

Return:
    a dict          -> one row; its keys are the fields. Optional keys:
                       "ts" (overrides the time) and "device".
    a list of dicts -> one row each (fan-out)
    None            -> drop this message on purpose
Raise an exception to reject the message: it goes to the myt.dead queue
with your exception text in the x-myt-reason header; the rest of the batch
is stored.

Fields declared in the design (database.fields) become typed columns;
other keys are kept as JSON. Test locally with:
    myt code test handler.py samples.ndjson
"""


def process(msg):
    p = msg["payload"]
    if not isinstance(p, dict):
        return {"value": p}
    out = dict(p)
    # Example: convert Fahrenheit to Celsius when a device sends "temp_f".
    if "temp_f" in out:
        out["temperature"] = round((float(out.pop("temp_f")) - 32) * 5 / 9, 2)
    return out
