# MyT's stdout callback for ansible-playbook: one JSON object per line for
# each play, task, result and the final recap, so the deploy job can show
# progress ("task 23/41") and say why a task failed. Only ansible-core
# APIs are used. Results of no_log tasks carry no output.
from __future__ import annotations

import json
import sys

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: myt
    type: stdout
    short_description: JSON lines for the MyT deploy job
    description:
      - One JSON object per line for each play, task, result and the recap.
"""

_LIMIT = 4000


def _text(v):
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        v = "\n".join(str(x) for x in v)
    s = str(v)
    if len(s) > _LIMIT:
        s = "[...]" + s[-_LIMIT:]
    return s


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "myt"

    def _emit(self, **kw):
        sys.stdout.write(json.dumps(kw, default=str) + "\n")
        sys.stdout.flush()

    def v2_playbook_on_play_start(self, play):
        self._emit(event="play", name=play.get_name())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._emit(event="task", name=task.get_name())

    def v2_playbook_on_handler_task_start(self, task):
        self._emit(event="task", name=task.get_name(), handler=True)

    def _result(self, status, result):
        r = result._result
        out = {
            "event": "result",
            "status": status,
            "host": result._host.get_name(),
            "task": result._task.get_name(),
            "changed": bool(r.get("changed")),
        }
        if r.get("_ansible_no_log") or result._task.no_log:
            out["msg"] = "(output hidden: no_log)"
        else:
            if r.get("msg"):
                out["msg"] = _text(r.get("msg"))
            if status == "changed" and r.get("diff"):
                out["diff"] = _text(self._diffs(r.get("diff")))
            if status in ("failed", "unreachable"):
                for k in ("stdout", "stderr"):
                    if r.get(k):
                        out[k] = _text(r.get(k))
                if r.get("results"):
                    msgs = [_text(x.get("msg")) for x in r["results"] if isinstance(x, dict) and x.get("failed")]
                    if msgs:
                        out["items"] = msgs
        self._emit(**out)

    def _diffs(self, diff):
        # --diff results: file attributes before/after, or a text diff.
        lines = []
        for d in diff if isinstance(diff, list) else [diff]:
            if not isinstance(d, dict):
                continue
            before, after = d.get("before"), d.get("after")
            if isinstance(before, dict) and isinstance(after, dict):
                for k in sorted(set(before) | set(after)):
                    if k != "path" and before.get(k) != after.get(k):
                        lines.append("%s: %s -> %s" % (k, before.get(k), after.get(k)))
            elif isinstance(before, str) and isinstance(after, str):
                lines.append(self._get_diff(d))
        return "\n".join(x for x in lines if x)

    def v2_runner_item_on_ok(self, result):
        r = result._result
        if r.get("changed") and r.get("diff") and not (r.get("_ansible_no_log") or result._task.no_log):
            self._emit(event="item", task=result._task.get_name(), item=_text(self._get_item_label(r)), diff=_text(self._diffs(r.get("diff"))))

    def v2_runner_on_ok(self, result):
        self._result("changed" if result._result.get("changed") else "ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_skipped(self, result):
        self._result("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._result("unreachable", result)

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for h in sorted(stats.processed.keys()):
            hosts[h] = stats.summarize(h)
        self._emit(event="stats", hosts=hosts)
