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

    def group_encrypt_decrypt():
        out = peer.call({"op": "group_outbound_new"})
        assert out["message_index"] == 0 and len(out["session_id"]) == 43, out
        inb = peer.call({"op": "group_inbound_new", "session_key": out["session_key"]})
        assert inb["session_id"] == out["session_id"], inb
        assert inb["first_known_index"] == 0 and inb["is_verified"] is True, inb
        one = peer.call({"op": "group_encrypt", "session": out["session"], "plaintext": "grüße 0"})
        assert one["message_index"] == 0, one
        many = peer.call({"op": "group_encrypt", "session": out["session"],
                          "plaintexts": ["m1", "m2", "m3"]})
        assert many["message_indices"] == [1, 2, 3], many
        bodies = [one["body"]] + many["bodies"]
        texts = ["grüße 0", "m1", "m2", "m3"]
        for index in (3, 0, 2, 1):
            p = peer.call({"op": "group_decrypt", "session": inb["session"], "body": bodies[index]})
            assert p == {"ok": True, "plaintext": texts[index], "message_index": index}, p
        info = peer.call({"op": "group_outbound_info", "session": out["session"]})
        assert info["message_index"] == 4 and info["session_key"] != out["session_key"], info
        st["g_out"], st["g_in"], st["g_bodies"], st["g_texts"] = (
            out["session"], inb["session"], bodies, texts)

    def group_export_import():
        exp = peer.call({"op": "group_export", "session": st["g_in"], "index": 2})
        assert len(exp["exported_key"]) == 220, exp  # 165 bytes, unpadded base64
        imp = peer.call({"op": "group_inbound_import", "exported_key": exp["exported_key"]})
        assert imp["first_known_index"] == 2 and imp["is_verified"] is False, imp
        early = peer.raw({"op": "group_decrypt", "session": imp["session"],
                          "body": st["g_bodies"][1]})
        assert early["ok"] is False and "UNKNOWN_MESSAGE_INDEX" in early["error"], early
        p = peer.call({"op": "group_decrypt", "session": imp["session"], "body": st["g_bodies"][3]})
        assert p["plaintext"] == "m3" and p["message_index"] == 3, p
        # libolm counts a successful decryption as evidence that the key is genuine.
        info = peer.call({"op": "group_inbound_info", "session": imp["session"]})
        assert info["is_verified"] is True, info
        # libolm compares indices modulo 2^32: 2^31 or more ahead of both its latest ratchet
        # (now 3) and its first known index (2) counts as "in the past".
        far = peer.raw({"op": "group_export", "session": imp["session"], "index": 3 + (1 << 31)})
        assert far["ok"] is False and "UNKNOWN_MESSAGE_INDEX" in far["error"], far
        # Just under 2^31 ahead of the latest ratchet works (and moves that ratchet there).
        peer.call({"op": "group_export", "session": imp["session"], "index": 2 + (1 << 31)})
        peer.call({"op": "group_export", "session": imp["session"], "index": 3 + (1 << 31)})
        for bad in (-1, 1 << 32, True, "3"):
            r = peer.raw({"op": "group_export", "session": imp["session"], "index": bad})
            assert r["ok"] is False and "u32" in r["error"], r

    def group_pickles():
        pk = peer.call({"op": "group_pickle_outbound", "session": st["g_out"], "key": "kë"})
        again = peer.call({"op": "group_pickle_outbound", "session": st["g_out"], "key": "kë"})
        assert pk["pickle"] == again["pickle"], "libolm pickles are deterministic"
        out = peer.call({"op": "group_unpickle_outbound", "pickle": pk["pickle"], "key": "kë"})
        assert out["message_index"] == 4, out
        bad = peer.raw({"op": "group_unpickle_outbound", "pickle": pk["pickle"], "key": "k"})
        assert bad["ok"] is False and "BAD_ACCOUNT_KEY" in bad["error"], bad
        ipk = peer.call({"op": "group_pickle_inbound", "session": st["g_in"], "key": ""})["pickle"]
        inb = peer.call({"op": "group_unpickle_inbound", "pickle": ipk, "key": ""})
        assert inb["first_known_index"] == 0 and inb["is_verified"] is True, inb
        m = peer.call({"op": "group_encrypt", "session": out["session"], "plaintext": "after"})
        assert m["message_index"] == 4, m
        p = peer.call({"op": "group_decrypt", "session": inb["session"], "body": m["body"]})
        assert p["plaintext"] == "after" and p["message_index"] == 4, p
        for h in (out["session"], inb["session"]):
            peer.call({"op": "drop", "handle": h})
        r = peer.raw({"op": "group_encrypt", "session": out["session"], "plaintext": "x"})
        assert r["ok"] is False and "unknown outbound group session" in r["error"], r

    def group_errors():
        other = peer.call({"op": "group_outbound_new"})
        m = peer.call({"op": "group_encrypt", "session": other["session"], "plaintext": "x"})
        r = peer.raw({"op": "group_decrypt", "session": st["g_in"], "body": m["body"]})
        assert r["ok"] is False and "BAD_SIGNATURE" in r["error"], r
        for bad in ("!!", "AAAA"):
            r = peer.raw({"op": "group_inbound_new", "session_key": bad})
            assert r["ok"] is False, r
        r = peer.raw({"op": "group_inbound_import", "exported_key": other["session_key"]})
        assert r["ok"] is False and "BAD_SESSION_KEY" in r["error"], r
        r = peer.raw({"op": "group_encrypt", "session": st["g_out"], "plaintexts": ["a", 1]})
        assert r["ok"] is False and "TypeError" in r["error"], r

    check("accounts", accounts)
    check("one-time and fallback keys", otks)
    check("outbound / pre-key / inbound", outbound_prekey_inbound)
    check("reply", reply)
    check("5 messages back and forth", back_and_forth)
    check("pickle / unpickle", pickles)
    check("errors keep the peer alive", errors_keep_peer_alive)
    check("group: encrypt / decrypt", group_encrypt_decrypt)
    check("group: export / import", group_export_import)
    check("group: pickles", group_pickles)
    check("group: errors", group_errors)
    check("quit", peer.close)

    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
