"""The JSON-lines protocol every interop peer speaks (tests/common/peer.rs is the other end).

One request per line, `{"op": NAME, ...}`; one response per line, `{"ok": true, ...}` or
`{"ok": false, "error": "Type: message"}`. A failing op never kills the peer; `quit` ends it.
"""

import json
import sys


class Ops:
    """A peer's operations, registered with `@ops.op("name")`."""

    def __init__(self):
        self.table = {}
        self.op("quit")(_quit)

    def op(self, name):
        def register(fn):
            if name in self.table:
                raise RuntimeError("duplicate op %s" % name)
            self.table[name] = fn
            return fn

        return register

    def handle_line(self, line):
        """Returns (response dict, quit?)."""
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("request must be a JSON object")
            fn = self.table.get(req.get("op"))
            if fn is None:
                raise ValueError("unknown op %r" % (req.get("op"),))
            result = fn(req)
        except _Quit:
            return {"ok": True}, True
        except Exception as exc:  # noqa: BLE001 - the peer must never die
            return _error(exc), False
        response = {"ok": True}
        response.update(result)
        return response, False

    def serve(self):
        """Answers requests from stdin until `quit` or end of input."""
        out = sys.stdout
        for raw in sys.stdin.buffer:
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            response, quit_now = self.handle_line(line)
            try:
                text = json.dumps(response, ensure_ascii=True)
            except Exception as exc:  # noqa: BLE001
                text = json.dumps(_error(exc), ensure_ascii=True)
            out.write(text + "\n")
            out.flush()
            if quit_now:
                break
        return 0


class _Quit(Exception):
    pass


def _quit(req):
    raise _Quit()


def _error(exc):
    return {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
