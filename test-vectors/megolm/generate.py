#!/usr/bin/env python3
"""Regenerate the libolm Megolm test vectors in this directory.

Run with a Python that has python-olm (which bundles libolm) and `cryptography`:
    .venv/bin/python test-vectors/megolm/generate.py
Every random input is derived from SHA-256 of a text label, so the output is
byte-identical on every run.  The raw libolm C API (via python-olm's cffi
module `_libolm`) is used so that we can feed our own randomness.  Takes ~10 s:
the outbound session really encrypts 65,537 messages.
"""
import base64, json, os, sys
from importlib.metadata import version
from _libolm import ffi, lib
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# The shared helpers live one directory up.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from libolm_tools import (  # noqa: E402
    Reader, b64d, cbuf, pickle_keys, scripted_random, unpickle_raw, write_json,
)


HERE = os.path.dirname(os.path.abspath(__file__))
ERR = lib.olm_error()
rnd = scripted_random("olmo-megolm-tv")
_keep = []  # cffi buffers backing libolm objects must outlive the objects
PICKLE_KEY = b"olmo megolm vectors"
PLAINTEXTS = ["Hello room", "", "second line\nwith a newline", "emoji 🙂 and ümlauts",
              "x" * 15, "y" * 16, "z" * 100]
LATER = [255, 256, 257, 1000, 65535, 65536]  # outbound indices with a key and a message
EXPORT_AT = [0, 1, 255, 256, 257, 1000, 65535, 65536, 1 << 24, 0x01020304, (1 << 31) - 1]


def b64e(b):
    return base64.b64encode(b).decode().rstrip("=")


class Libolm(Exception):
    pass


def out_str(n, f, *args, tail=()):
    b = ffi.new("char[]", n)
    n = f(*args, b, n, *tail)
    return n, (ffi.unpack(b, n).decode() if n != ERR else None)


# ---------------------------------------------------------------- sessions
class Outbound:
    def __init__(self, random):
        buf = ffi.new("uint8_t[]", lib.olm_outbound_group_session_size())
        _keep.append(buf)
        self.p = lib.olm_outbound_group_session(buf)
        assert lib.olm_init_outbound_group_session_random_length(self.p) == len(random) == 160
        self._c(lib.olm_init_outbound_group_session(self.p, *cbuf(random)))

    def _c(self, r):
        if r == ERR:
            raise Libolm(ffi.string(lib.olm_outbound_group_session_last_error(self.p)).decode())
        return r

    def _s(self, n, f, *args, tail=()):
        r, s = out_str(n, f, self.p, *args, tail=tail)
        self._c(r)
        return s

    def index(self):
        return lib.olm_outbound_group_session_message_index(self.p)

    def session_id(self):
        return self._s(lib.olm_outbound_group_session_id_length(self.p), lib.olm_outbound_group_session_id)

    def session_key(self):
        return self._s(lib.olm_outbound_group_session_key_length(self.p), lib.olm_outbound_group_session_key)

    def encrypt(self, text):
        pt = text.encode()
        return self._s(lib.olm_group_encrypt_message_length(self.p, len(pt)), lib.olm_group_encrypt, *cbuf(pt))

    def pickle(self, key):
        return self._s(lib.olm_pickle_outbound_group_session_length(self.p),
                       lib.olm_pickle_outbound_group_session, *cbuf(key))


class Inbound:
    def __init__(self, key_b64, imported):
        buf = ffi.new("uint8_t[]", lib.olm_inbound_group_session_size())
        _keep.append(buf)
        self.p = lib.olm_inbound_group_session(buf)
        f = lib.olm_import_inbound_group_session if imported else lib.olm_init_inbound_group_session
        self._c(f(self.p, *cbuf(key_b64.encode())))

    def _c(self, r):
        if r == ERR:
            raise Libolm(ffi.string(lib.olm_inbound_group_session_last_error(self.p)).decode())
        return r

    def _s(self, n, f, *args, tail=()):
        r, s = out_str(n, f, self.p, *args, tail=tail)
        self._c(r)
        return s

    def first_known_index(self):
        return lib.olm_inbound_group_session_first_known_index(self.p)

    def is_verified(self):
        return bool(lib.olm_inbound_group_session_is_verified(self.p))

    def session_id(self):
        return self._s(lib.olm_inbound_group_session_id_length(self.p), lib.olm_inbound_group_session_id)

    def export(self, index):
        return self._s(lib.olm_export_inbound_group_session_length(self.p),
                       lib.olm_export_inbound_group_session, tail=(index,))

    def decrypt(self, msg_b64):
        n = self._c(lib.olm_group_decrypt_max_plaintext_length(self.p, *cbuf(msg_b64.encode())))
        b, idx = ffi.new("char[]", n), ffi.new("uint32_t*")
        n = self._c(lib.olm_group_decrypt(self.p, *cbuf(msg_b64.encode()), b, n, idx))
        return ffi.unpack(b, n).decode(), idx[0]

    def pickle(self, key):
        return self._s(lib.olm_pickle_inbound_group_session_length(self.p),
                       lib.olm_pickle_inbound_group_session, *cbuf(key))


def export_fields(exp_b64):
    raw = b64d(exp_b64)
    assert len(raw) == 165 and raw[0] == 1
    return {"index": int.from_bytes(raw[1:5], "big"), "ratchet": raw[5:133].hex(),
            "signing_key": raw[133:].hex(), "export_base64": exp_b64}


def message_entry(index, text, msg_b64):
    return {"index": index, "plaintext": text, "message": b64d(msg_b64).hex(), "message_base64": msg_b64}


def sessions():
    random = rnd("outbound", 160)
    out = Outbound(random)
    sid = out.session_id()
    key0 = out.session_key()
    raw0 = b64d(key0)
    # The layout check the replay relies on: random = ratchet[128] ‖ Ed25519 seed[32].
    assert raw0[5:133] == random[:128]
    seed_pub = Ed25519PrivateKey.from_private_bytes(random[128:]).public_key()
    assert seed_pub.public_bytes(Encoding.Raw, PublicFormat.Raw) == b64d(sid) == raw0[133:165]
    messages = [message_entry(out.index(), t, out.encrypt(t)) for t in PLAINTEXTS]
    later = []
    for target in LATER:
        while out.index() < target:
            out.encrypt("filler")
        text = f"message at index {target}"
        later.append({"session_key_base64": out.session_key(), **message_entry(target, text, out.encrypt(text))})

    inbound = Inbound(key0, imported=False)
    assert inbound.session_id() == sid and inbound.first_known_index() == 0
    for m in messages + later:
        assert inbound.decrypt(m["message_base64"]) == (m["plaintext"], m["index"])
    for m in later:
        late = Inbound(m["session_key_base64"], imported=False)
        assert late.first_known_index() == m["index"]
        assert late.decrypt(m["message_base64"]) == (m["plaintext"], m["index"])

    fresh = Inbound(key0, imported=False)
    exports = [export_fields(fresh.export(i)) for i in EXPORT_AT]
    assert all(e["index"] == i for e, i in zip(exports, EXPORT_AT))
    # An import from the export at 256 knows nothing before 256.
    imp = Inbound(exports[3]["export_base64"], imported=True)
    assert imp.first_known_index() == 256 and not imp.is_verified()
    try:
        imp.export(255)
        below = None
    except Libolm as e:
        below = str(e)
    imported = {"from_export_index": 256, "first_known_index": 256, "is_verified": False,
                "export_at_255_libolm_error": below,
                "export_at_1000": export_fields(imp.export(1000))}
    assert imported["export_at_1000"] == exports[5]
    return {
        "outbound": {
            "random": random.hex(), "ratchet_random": random[:128].hex(),
            "ed25519_seed": random[128:].hex(), "session_id_base64": sid,
            "signing_key": b64d(sid).hex(), "session_key_base64": key0,
            "messages": messages, "later": later,
        },
        "inbound_exports": {"created_from": "session_key_base64 (olm_init_inbound_group_session)",
                            "exports": exports, "imported": imported},
    }


# ---------------------------------------------------------------- ratchet table
RATCHET_TARGETS = [0, 1, 2, 255, 256, 257, 0x1FF, 0x200, 65535, 65536, 65537, 0x12345,
                   (1 << 24) - 1, 1 << 24, (1 << 24) + 3, 0x01020304, 0x12345678,
                   (1 << 31) - 1, 1 << 31, (1 << 31) + 1, 0xABCDEF01, 0xFFFFFFFE, 0xFFFFFFFF]
HOP = (1 << 31) - 1  # the longest jump libolm's inbound session accepts


def ratchet_at(r_bytes, start, target, pub):
    """Import (0x01 ‖ start ‖ R ‖ pub) and export at target; returns (export_b64, error)."""
    s = Inbound(b64e(b"\x01" + start.to_bytes(4, "big") + r_bytes + pub), imported=True)
    try:
        return s.export(target), None
    except Libolm as e:
        return None, str(e)


def ratchet_table(label, start):
    r = rnd(f"ratchet/{label}", 128)
    pub = Ed25519PrivateKey.from_private_bytes(rnd(f"ratchet/{label}/ed25519", 32)) \
        .public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    rows = []
    for target in [t for t in RATCHET_TARGETS if t >= start]:
        exp, err = ratchet_at(r, start, target, pub)
        row = {"index": target}
        if err is None:
            row["ratchet"] = export_fields(exp)["ratchet"]
            row["libolm"] = "direct"
        else:
            # libolm refuses jumps of 2^31 or more ("in the past"); reach the index in hops
            # of at most 2^31 - 1, each a fresh import of the previous hop's export.
            row["libolm_error"] = err
            cur, cur_r, via = start, r, []
            while cur != target:
                nxt = min(target, cur + HOP)
                exp, e2 = ratchet_at(cur_r, cur, nxt, pub)
                assert e2 is None, e2
                cur, cur_r = nxt, bytes.fromhex(export_fields(exp)["ratchet"])
                via.append(cur)
            row["ratchet"] = cur_r.hex()
            row["libolm"] = "via exports at " + ", ".join(str(v) for v in via)
        rows.append(row)
    return {"label": label, "start_index": start, "start_ratchet": r.hex(),
            "signing_key": pub.hex(), "advances": rows}


# ---------------------------------------------------------------- pickles


def parse(raw, inbound):
    r = Reader(raw)
    assert r.u32("pickle_version") == (2 if inbound else 1)
    for name in (["initial_ratchet", "latest_ratchet"] if inbound else ["ratchet"]):
        r.take(f"{name}.data", 128)
        r.u32(f"{name}.counter")
    r.take("signing_key.public", 32)
    if inbound:
        assert r.take("signing_key_verified", 1)[0] in (0, 1)
    else:
        r.take("signing_key.private_expanded", 64)
    assert r.o == len(raw)
    return r.fields


def pickle_entry(obj, inbound, **info):
    p = obj.pickle(PICKLE_KEY)
    raw = unpickle_raw(p, PICKLE_KEY)
    return {**info, "pickle": p, "raw": raw.hex(), "fields": parse(raw, inbound)}


def pickles():
    aes, mk, iv = pickle_keys(PICKLE_KEY)
    random = rnd("pickle/outbound", 160)
    out = Outbound(random)
    key0 = out.session_key()
    fresh = pickle_entry(out, False, random=random.hex(), message_index=0)
    msgs = [message_entry(out.index(), t, out.encrypt(t)) for t in ["one", "two", "three"]]
    advanced = pickle_entry(out, False, message_index=3, session_key_base64=out.session_key())
    after = message_entry(out.index(), "four", out.encrypt("four"))  # decrypts after unpickling

    new = Inbound(key0, imported=False)
    new_p = pickle_entry(new, True, created_from="outbound.session_key_at_0", first_known_index=0,
                         is_verified=new.is_verified())
    dec = Inbound(key0, imported=False)
    for m in (msgs[2], msgs[0]):  # out of order: latest ratchet at 2, initial still at 0
        assert dec.decrypt(m["message_base64"]) == (m["plaintext"], m["index"])
    dec_p = pickle_entry(dec, True, created_from="outbound.session_key_at_0, then decrypted 2 and 0",
                         first_known_index=0, is_verified=dec.is_verified())
    export1 = new.export(1)
    imp = Inbound(export1, imported=True)
    imp_p = pickle_entry(imp, True, created_from="export_at_1 (olm_import_inbound_group_session)",
                         export_base64=export1, first_known_index=1, is_verified=imp.is_verified())
    assert imp.decrypt(msgs[1]["message_base64"]) == ("two", 1)
    imp_dec_p = pickle_entry(imp, True, created_from="export_at_1, then decrypted 1",
                             first_known_index=1, is_verified=imp.is_verified())
    assert not imp_p["is_verified"] and imp_dec_p["is_verified"] and new_p["is_verified"]
    return {
        "pickle_key": PICKLE_KEY.hex(), "pickle_key_ascii": PICKLE_KEY.decode(),
        "derived": {"aes_key": aes.hex(), "mac_key": mk.hex(), "iv": iv.hex()},
        "outbound": {"session_id_base64": out.session_id(), "session_key_at_0_base64": key0,
                     "messages": msgs, "message_after_pickle": after,
                     "pickles": {"fresh": fresh, "advanced": advanced}},
        "inbound": {"new": new_p, "decrypted": dec_p, "imported": imp_p,
                    "imported_decrypted": imp_dec_p},
    }


def main():
    maj, mi, pa = (ffi.new("uint8_t*") for _ in range(3))
    lib.olm_get_library_version(maj, mi, pa)
    meta = {"generator": "test-vectors/megolm/generate.py",
            "libolm_version": f"{maj[0]}.{mi[0]}.{pa[0]}", "python_olm_version": version("python-olm")}
    write_json(HERE, "ratchet.json", {"meta": meta, "tables": [ratchet_table("from_zero", 0),
                                                    ratchet_table("from_0x00fffff0", 0x00FFFFF0)]})
    write_json(HERE, "sessions.json", {"meta": meta, **sessions()})
    write_json(HERE, "pickles.json", {"meta": meta, **pickles()})


if __name__ == "__main__":
    main()
