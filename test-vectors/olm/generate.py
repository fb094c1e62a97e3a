#!/usr/bin/env python3
"""Regenerate the libolm Olm test vectors in this directory.

Run with a Python that has python-olm (which bundles libolm) and `cryptography`:
    .venv/bin/python test-vectors/olm/generate.py
Every random input is derived from SHA-256 of a text label, so the output is
byte-identical on every run.  The raw libolm C API (via python-olm's cffi
module `_libolm`) is used so that we can feed our own randomness.
"""
import json, os, sys
from importlib.metadata import version
from _libolm import ffi, lib

# The shared helpers live one directory up.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from libolm_tools import (  # noqa: E402
    Reader, b64d, cbuf, pickle_keys, scripted_random, unpickle_raw, write_json,
)


HERE = os.path.dirname(os.path.abspath(__file__))
ERR = lib.olm_error()
rnd = scripted_random("olmo-tv")
_keep = []  # cffi buffers backing libolm objects must outlive the objects


def check(ret, obj, errf):
    if ret == ERR:
        raise RuntimeError(ffi.string(errf(obj)).decode())
    return ret


def out_str(lenf, f, obj, errf, *args):
    n = lenf(obj)
    b = ffi.new("char[]", n)
    n = check(f(obj, *args, b, n), obj, errf)
    return ffi.unpack(b, n).decode()


# ---------------------------------------------------------------- accounts
class Account:
    def __init__(self, random):
        buf = ffi.new("uint8_t[]", lib.olm_account_size())
        _keep.append(buf)
        self.p = lib.olm_account(buf)
        assert lib.olm_create_account_random_length(self.p) == len(random) == 64
        self._c(lib.olm_create_account(self.p, *cbuf(random)))

    def _c(self, r):
        return check(r, self.p, lib.olm_account_last_error)

    def identity_keys(self):
        return json.loads(out_str(lib.olm_account_identity_keys_length,
                                  lib.olm_account_identity_keys, self.p, lib.olm_account_last_error))

    def one_time_keys(self):
        return json.loads(out_str(lib.olm_account_one_time_keys_length,
                                  lib.olm_account_one_time_keys, self.p, lib.olm_account_last_error))["curve25519"]

    def generate_one_time_keys(self, count, random):
        assert lib.olm_account_generate_one_time_keys_random_length(self.p, count) == len(random)
        self._c(lib.olm_account_generate_one_time_keys(self.p, count, *cbuf(random)))

    def generate_fallback_key(self, random):
        assert lib.olm_account_generate_fallback_key_random_length(self.p) == len(random)
        self._c(lib.olm_account_generate_fallback_key(self.p, *cbuf(random)))

    def fallback_key(self):
        return json.loads(out_str(lib.olm_account_unpublished_fallback_key_length,
                                  lib.olm_account_unpublished_fallback_key, self.p,
                                  lib.olm_account_last_error))["curve25519"]

    def mark_published(self):
        self._c(lib.olm_account_mark_keys_as_published(self.p))

    def sign(self, msg):
        n = lib.olm_account_signature_length(self.p)
        b = ffi.new("char[]", n)
        self._c(lib.olm_account_sign(self.p, *cbuf(msg), b, n))
        return ffi.unpack(b, n).decode()

    def pickle(self, key):
        return out_str(lib.olm_pickle_account_length, lib.olm_pickle_account, self.p,
                       lib.olm_account_last_error, *cbuf(key))


def key_entry(kid_b64, pub_b64, random=None):
    e = {"key_id": kid_b64, "key_id_u32": int.from_bytes(b64d(kid_b64), "big"),
         "public": b64d(pub_b64).hex(), "public_base64": pub_b64}
    if random is not None:
        e["private"] = random.hex()
    return e


def accounts():
    out = []
    for name in ["alice", "bob", "carol"]:
        r = rnd(f"account/{name}", 64)
        acc = Account(r)
        ik = acc.identity_keys()
        otk_r = rnd(f"account/{name}/otk", 3 * 32)
        acc.generate_one_time_keys(3, otk_r)
        otks = acc.one_time_keys()
        ids = sorted(otks, key=lambda k: int.from_bytes(b64d(k), "big"))
        fb_r = rnd(f"account/{name}/fallback", 32)
        acc.generate_fallback_key(fb_r)
        [(fb_id, fb_pub)] = acc.fallback_key().items()
        msg = f"olmo test message signed by {name}".encode()
        sig = acc.sign(msg)
        out.append({
            "name": name,
            "create_random": r.hex(),
            "ed25519_seed": r[:32].hex(), "curve25519_private": r[32:].hex(),
            "curve25519_public": b64d(ik["curve25519"]).hex(),
            "curve25519_public_base64": ik["curve25519"],
            "ed25519_public": b64d(ik["ed25519"]).hex(),
            "ed25519_public_base64": ik["ed25519"],
            "one_time_keys": {
                "count": 3, "random": otk_r.hex(),
                "keys": [key_entry(k, otks[k], otk_r[32 * i:32 * i + 32]) for i, k in enumerate(ids)],
            },
            "fallback_key": {"random": fb_r.hex(), **key_entry(fb_id, fb_pub, fb_r)},
            "signature": {"message": msg.decode(), "signature": b64d(sig).hex(),
                          "signature_base64": sig},
        })
    return out


# ---------------------------------------------------------------- sessions
class Session:
    def __init__(self):
        buf = ffi.new("uint8_t[]", lib.olm_session_size())
        _keep.append(buf)
        self.p = lib.olm_session(buf)

    def _c(self, r):
        return check(r, self.p, lib.olm_session_last_error)

    @classmethod
    def outbound(cls, acc, their_ik, their_otk, random):
        s = cls()
        assert lib.olm_create_outbound_session_random_length(s.p) == len(random) == 64
        s._c(lib.olm_create_outbound_session(s.p, acc.p, *cbuf(their_ik.encode()),
                                             *cbuf(their_otk.encode()), *cbuf(random)))
        return s

    @classmethod
    def inbound_from(cls, acc, their_ik, body_b64):
        s = cls()
        s._c(lib.olm_create_inbound_session_from(s.p, acc.p, *cbuf(their_ik.encode()),
                                                 *cbuf(body_b64.encode())))
        return s

    def session_id(self):
        return out_str(lib.olm_session_id_length, lib.olm_session_id, self.p, lib.olm_session_last_error)

    def encrypt(self, plaintext, random):
        pt = plaintext.encode()
        assert lib.olm_encrypt_random_length(self.p) == len(random)
        mtype = self._c(lib.olm_encrypt_message_type(self.p))
        n = lib.olm_encrypt_message_length(self.p, len(pt))
        b = ffi.new("char[]", n)
        rb = cbuf(random) if random else (ffi.NULL, 0)
        n = self._c(lib.olm_encrypt(self.p, *cbuf(pt), *rb, b, n))
        return mtype, ffi.unpack(b, n).decode()

    def decrypt(self, mtype, body_b64):
        n = self._c(lib.olm_decrypt_max_plaintext_length(self.p, mtype, *cbuf(body_b64.encode())))
        b = ffi.new("char[]", n)
        n = self._c(lib.olm_decrypt(self.p, mtype, *cbuf(body_b64.encode()), b, n))
        return ffi.unpack(b, n).decode()

    def pickle(self, key):
        return out_str(lib.olm_pickle_session_length, lib.olm_pickle_session, self.p,
                       lib.olm_session_last_error, *cbuf(key))


def start(label, use_fallback=False):
    """Create Alice and Bob, Bob's one-time (or fallback) key, and Alice's outbound session."""
    ar, br = rnd(f"{label}/alice", 64), rnd(f"{label}/bob", 64)
    alice, bob = Account(ar), Account(br)
    bob_ik = bob.identity_keys()["curve25519"]
    kr = rnd(f"{label}/bob/key", 32)
    if use_fallback:
        bob.generate_fallback_key(kr)
        [(kid, kpub)] = bob.fallback_key().items()
    else:
        bob.generate_one_time_keys(1, kr)
        [(kid, kpub)] = bob.one_time_keys().items()
    sr = rnd(f"{label}/alice/outbound", 64)
    a_sess = Session.outbound(alice, bob_ik, kpub, sr)
    info = {
        "alice_account_random": ar.hex(), "bob_account_random": br.hex(),
        "alice_identity_key": b64d(alice.identity_keys()["curve25519"]).hex(),
        "bob_identity_key": b64d(bob_ik).hex(),
        "bob_key_kind": "fallback" if use_fallback else "one_time",
        "bob_one_time_key_random": kr.hex(), "bob_one_time_key": key_entry(kid, kpub),
        "alice_outbound_random": sr.hex(),
        "alice_base_key_private": sr[:32].hex(), "alice_ratchet_key_private": sr[32:].hex(),
    }
    return alice, bob, a_sess, info


def converse(label, script, use_fallback=False, deliver=None):
    """script: list of (sender, plaintext).  deliver(i) -> False keeps message i undelivered."""
    alice, bob, a_sess, info = start(label, use_fallback)
    sess = {"alice": a_sess, "bob": None}
    msgs = []
    for i, (sender, text) in enumerate(script):
        s = sess[sender]
        rl = lib.olm_encrypt_random_length(s.p)
        r = rnd(f"{label}/msg/{i}", rl) if rl else b""
        mtype, body = s.encrypt(text, r)
        msgs.append({"sender": sender, "plaintext": text, "encrypt_random": r.hex(),
                     "message_type": mtype, "body": b64d(body).hex(), "body_base64": body})
        if deliver and not deliver(i):
            msgs[-1]["delivered"] = False
            continue
        if sender == "alice" and sess["bob"] is None:
            sess["bob"] = Session.inbound_from(bob, alice.identity_keys()["curve25519"], body)
        other = "bob" if sender == "alice" else "alice"
        assert sess[other].decrypt(mtype, body) == text
    assert sess["alice"].session_id() == sess["bob"].session_id()
    info["session_id_base64"] = sess["alice"].session_id()
    info["session_id"] = b64d(info["session_id_base64"]).hex()
    info["messages"] = msgs
    return info, sess


def sessions():
    A, B = "alice", "bob"
    ping_pong = [(A, "Hello Bob"), (B, "Hi Alice"), (A, "How are you?"), (B, "Fine, thanks."),
                 (A, "Good to hear 🙂"), (B, "Bye"), (A, "Bye!")]
    burst = [(A, "one"), (A, "two"), (A, "three"), (B, "got all three"),
             (B, "and a second reply"), (A, "ok"), (B, "")]
    convs = []
    for label, script, fb in [("ping_pong", ping_pong, False), ("burst", burst, False),
                              ("fallback", [(A, "to the fallback key"), (B, "works")], True)]:
        info, _ = converse(f"session/{label}", script, fb)
        convs.append({"name": label, **info})
    return convs


# ---------------------------------------------------------------- pickles
PICKLE_KEY = b"olmo pickle key for test vectors"


def parse_account(raw):
    r = Reader(raw)
    assert r.u32("pickle_version") == 4
    r.take("ed25519_public", 32); r.take("ed25519_private_expanded", 64)
    r.take("curve25519_public", 32); r.take("curve25519_private", 32)
    for i in range(r.u32("one_time_key_count")):
        r.u32(f"otk[{i}].id"); r.u8(f"otk[{i}].published")
        r.take(f"otk[{i}].public", 32); r.take(f"otk[{i}].private", 32)
    nfb = r.u8("fallback_key_count")
    for name in ["current_fallback", "previous_fallback"][:nfb]:
        r.u32(f"{name}.id"); r.u8(f"{name}.published")
        r.take(f"{name}.public", 32); r.take(f"{name}.private", 32)
    r.u32("next_one_time_key_id")
    assert r.o == len(raw)
    return r.fields


def parse_session(raw):
    r = Reader(raw)
    assert r.u32("pickle_version") == 1
    r.u8("received_message")
    r.take("alice_identity_key", 32); r.take("alice_base_key", 32); r.take("bob_one_time_key", 32)
    r.take("root_key", 32)
    for i in range(r.u32("sender_chain_count")):
        r.take(f"sender[{i}].ratchet_public", 32); r.take(f"sender[{i}].ratchet_private", 32)
        r.take(f"sender[{i}].chain_key", 32); r.u32(f"sender[{i}].chain_index")
    for i in range(r.u32("receiver_chain_count")):
        r.take(f"receiver[{i}].ratchet_public", 32)
        r.take(f"receiver[{i}].chain_key", 32); r.u32(f"receiver[{i}].chain_index")
    for i in range(r.u32("skipped_message_key_count")):
        r.take(f"skipped[{i}].ratchet_public", 32)
        r.take(f"skipped[{i}].message_key", 32); r.u32(f"skipped[{i}].message_index")
    assert r.o == len(raw)
    return r.fields


def pickles():
    aes, mk, iv = pickle_keys(PICKLE_KEY)
    # Account: fallback #1 + OTK #1, publish both, then fallback #2 (rotation) and OTK #2, #3.
    acc_r = rnd("pickle/account", 64)
    acc = Account(acc_r)
    steps = [("generate_fallback_key", rnd("pickle/account/fallback/1", 32)),
             ("generate_one_time_keys(1)", rnd("pickle/account/otk/1", 32)),
             ("mark_keys_as_published", b""),
             ("generate_fallback_key", rnd("pickle/account/fallback/2", 32)),
             ("generate_one_time_keys(2)", rnd("pickle/account/otk/2", 64))]
    for op, r in steps:
        if op == "generate_fallback_key":
            acc.generate_fallback_key(r)
        elif op.startswith("generate_one_time_keys"):
            acc.generate_one_time_keys(len(r) // 32, r)
        else:
            acc.mark_published()
    p = acc.pickle(PICKLE_KEY)
    raw = unpickle_raw(p, PICKLE_KEY)
    account = {
        "create_random": acc_r.hex(),
        "steps": [{"op": op, "random": r.hex()} for op, r in steps],
        "identity_keys": {k: b64d(v).hex() for k, v in acc.identity_keys().items()},
        "one_time_keys": {k: b64d(v).hex() for k, v in acc.one_time_keys().items()},
        "unpublished_fallback_key": {k: b64d(v).hex() for k, v in acc.fallback_key().items()},
        "pickle": p, "raw": raw.hex(), "fields": parse_account(raw),
    }
    # Session: messages both ways; Bob never receives message 4, so he holds a skipped key.
    A, B = "alice", "bob"
    script = [(A, "first"), (B, "second"), (A, "third"), (A, "fourth (lost)"), (A, "fifth")]
    info, sess = converse("pickle/session", script, deliver=lambda i: i != 3)
    sessions = {}
    for who in (A, B):
        sp = sess[who].pickle(PICKLE_KEY)
        sraw = unpickle_raw(sp, PICKLE_KEY)
        sessions[who] = {"pickle": sp, "raw": sraw.hex(), "fields": parse_session(sraw)}
    return {
        "pickle_key": PICKLE_KEY.hex(), "pickle_key_ascii": PICKLE_KEY.decode(),
        "derived": {"aes_key": aes.hex(), "mac_key": mk.hex(), "iv": iv.hex()},
        "account": account,
        "session": {"conversation": info, "alice": sessions[A], "bob": sessions[B]},
    }


def main():
    maj, mi, pa = (ffi.new("uint8_t*") for _ in range(3))
    lib.olm_get_library_version(maj, mi, pa)
    meta = {"generator": "test-vectors/olm/generate.py",
            "libolm_version": f"{maj[0]}.{mi[0]}.{pa[0]}", "python_olm_version": version("python-olm")}
    write_json(HERE, "accounts.json", {"meta": meta, "accounts": accounts()})
    write_json(HERE, "sessions.json", {"meta": meta, "conversations": sessions()})
    write_json(HERE, "pickles.json", {"meta": meta, **pickles()})


if __name__ == "__main__":
    main()
