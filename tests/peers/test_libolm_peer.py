#!/usr/bin/env python3
"""Self-check for libolm_peer.py: run with the venv's python3,
`.venv/bin/python3 tests/peers/test_libolm_peer.py`.  Prints "N passed, M failed"."""

import json
import os
import subprocess
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "libolm_peer.py")
# Prefer the repo venv (made by .ci/setup-python.sh) so `python3 <this file>` works.
VENV_PY = os.path.join(HERE, "..", "..", ".venv", "bin", "python3")
PYTHON = VENV_PY if os.path.exists(VENV_PY) else sys.executable


class Peer:
    def __init__(self):
        self.proc = subprocess.Popen(
            [PYTHON, PEER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def raw(self, req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("peer closed stdout")
        return json.loads(line)

    def call(self, req):
        resp = self.raw(req)
        if not resp.get("ok"):
            raise AssertionError("%s failed: %s" % (req.get("op"), resp.get("error")))
        return resp

    def close(self):
        resp = self.raw({"op": "quit"})
        assert resp == {"ok": True}, resp
        rc = self.proc.wait(timeout=10)
        assert rc == 0, rc


RESULTS = {"passed": 0, "failed": 0}


def check(name, fn):
    try:
        fn()
    except Exception:  # noqa: BLE001
        RESULTS["failed"] += 1
        print("FAIL %s" % name)
        traceback.print_exc()
    else:
        RESULTS["passed"] += 1
        print("ok   %s" % name)


def main():
    peer = Peer()
    st = {}

    def accounts():
        st["alice"] = peer.call({"op": "account_new"})
        st["bob"] = peer.call({"op": "account_new"})
        for who in ("alice", "bob"):
            assert len(st[who]["curve25519"]) == 43 and len(st[who]["ed25519"]) == 43
            assert "=" not in st[who]["curve25519"]
        sig = peer.call({"op": "account_sign", "account": st["alice"]["account"], "message": "hi"})
        assert len(sig["signature"]) == 86
        v = peer.call({"op": "ed25519_verify", "key": st["alice"]["ed25519"],
                       "message": "hi", "signature": sig["signature"]})
        assert v["valid"] is True
        v = peer.call({"op": "ed25519_verify", "key": st["alice"]["ed25519"],
                       "message": "ho", "signature": sig["signature"]})
        assert v["valid"] is False

    def otks():
        bob = st["bob"]["account"]
        keys = peer.call({"op": "generate_one_time_keys", "account": bob, "count": 3})["keys"]
        assert len(keys) == 3, keys
        assert peer.call({"op": "account_one_time_keys", "account": bob})["keys"] == keys
        peer.call({"op": "mark_keys_as_published", "account": bob})
        assert peer.call({"op": "account_one_time_keys", "account": bob})["keys"] == {}
        st["bob_otk"] = sorted(keys.values())[0]
        fb = peer.call({"op": "generate_fallback_key", "account": bob})["keys"]
        assert len(fb) == 1, fb
        peer.call({"op": "forget_old_fallback_key", "account": bob})

    def outbound_prekey_inbound():
        alice, bob = st["alice"], st["bob"]
        out = peer.call({"op": "outbound_session", "account": alice["account"],
                         "identity_key": bob["curve25519"], "one_time_key": st["bob_otk"]})
        msg = peer.call({"op": "encrypt", "session": out["session"], "plaintext": "hello bob ✓"})
        assert msg["type"] == 0, msg
        inb = peer.call({"op": "inbound_session", "account": bob["account"],
                         "sender_key": alice["curve25519"], "type": 0, "body": msg["body"]})
        assert inb["plaintext"] == "hello bob ✓", inb
        assert inb["session_id"] == out["session_id"]
        m = peer.call({"op": "matches", "session": inb["session"],
                       "sender_key": alice["curve25519"], "body": msg["body"]})
        assert m["matches"] is True
        m = peer.call({"op": "matches", "session": inb["session"],
                       "sender_key": bob["curve25519"], "body": msg["body"]})
        assert m["matches"] is False
        # The used one-time key was removed: a replay cannot make a new session.
        again = peer.raw({"op": "inbound_session", "account": bob["account"],
                          "sender_key": None, "type": 0, "body": msg["body"]})
        assert again["ok"] is False and "BAD_MESSAGE_KEY_ID" in again["error"], again
        st["a_s"], st["b_s"] = out["session"], inb["session"]

    def reply():
        r = peer.call({"op": "encrypt", "session": st["b_s"], "plaintext": "hi alice"})
        assert r["type"] == 1, r
        p = peer.call({"op": "decrypt", "session": st["a_s"], "type": r["type"], "body": r["body"]})
        assert p["plaintext"] == "hi alice"

    def back_and_forth():
        for i in range(5):
            for src, dst in (("a_s", "b_s"), ("b_s", "a_s")):
                text = "%s -> %s #%d" % (src, dst, i)
                m = peer.call({"op": "encrypt", "session": st[src], "plaintext": text})
                assert m["type"] == 1, m
                p = peer.call({"op": "decrypt", "session": st[dst], "type": 1, "body": m["body"]})
                assert p["plaintext"] == text, p

    def pickles():
        for who in ("alice", "bob"):
            h = st[who]["account"]
            pk = peer.call({"op": "pickle_account", "account": h, "key": "pässwörd"})["pickle"]
            un = peer.call({"op": "unpickle_account", "pickle": pk, "key": "pässwörd"})
            assert un["curve25519"] == st[who]["curve25519"]
            assert un["ed25519"] == st[who]["ed25519"]
            bad = peer.raw({"op": "unpickle_account", "pickle": pk, "key": "wrong"})
            assert bad["ok"] is False and "BAD_ACCOUNT_KEY" in bad["error"], bad
        sid = peer.call({"op": "session_id", "session": st["a_s"]})["session_id"]
        new = {}
        for name in ("a_s", "b_s"):
            pk = peer.call({"op": "pickle_session", "session": st[name], "key": ""})["pickle"]
            un = peer.call({"op": "unpickle_session", "pickle": pk, "key": ""})
            assert un["session_id"] == sid
            new[name] = un["session"]
        m = peer.call({"op": "encrypt", "session": new["a_s"], "plaintext": "after pickle"})
        p = peer.call({"op": "decrypt", "session": new["b_s"], "type": m["type"], "body": m["body"]})
        assert p["plaintext"] == "after pickle"

    def errors_keep_peer_alive():
        for bad in ({"op": "nope"}, {"op": "decrypt", "session": "s999", "type": 1, "body": "x"},
                    {"op": "decrypt", "session": st["a_s"], "type": 1, "body": "!!notb64"}):
            r = peer.raw(bad)
            assert r["ok"] is False and ": " in r["error"], r
        assert peer.call({"op": "ping"})["ok"] is True

    check("accounts", accounts)
    check("one-time and fallback keys", otks)
    check("outbound / pre-key / inbound", outbound_prekey_inbound)
    check("reply", reply)
    check("5 messages back and forth", back_and_forth)
    check("pickle / unpickle", pickles)
    check("errors keep the peer alive", errors_keep_peer_alive)
    check("quit", peer.close)

    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
