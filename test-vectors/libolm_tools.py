"""What the libolm vector generators (olm/, megolm/) share: scripted randomness, base64,
cffi buffers, libolm's pickle encryption, a field-by-field reader for raw pickles, and JSON
output. Only Python's standard library, python-olm's cffi module and `cryptography`."""

import base64
import hashlib
import json
import os

from _libolm import ffi
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def scripted_random(prefix):
    """rnd(label, n): n bytes of SHA-256("<prefix>/<label>/<i>") for i = 0, 1, ...."""

    def rnd(label, n):
        out, i = b"", 0
        while len(out) < n:
            out += hashlib.sha256(f"{prefix}/{label}/{i}".encode()).digest()
            i += 1
        return out[:n]

    return rnd


def b64d(s):
    return base64.b64decode(s + "=" * (-len(s) % 4))


def cbuf(data):
    # libolm wipes random buffers and decodes base64 in place: always pass a copy.
    return ffi.new("uint8_t[]", bytes(data)), len(data)


def pickle_keys(key):
    k = HKDF(hashes.SHA256(), 80, salt=None, info=b"Pickle").derive(key)
    return k[:32], k[32:64], k[64:]


def unpickle_raw(s, key):
    """The raw bytes inside a libolm pickle, after checking its MAC and padding."""
    raw = b64d(s)
    aes, mk, iv = pickle_keys(key)
    ct, mac = raw[:-8], raw[-8:]
    h = hmac.HMAC(mk, hashes.SHA256())
    h.update(ct)
    assert h.finalize()[:8] == mac
    d = Cipher(algorithms.AES(aes), modes.CBC(iv)).decryptor()
    pt = d.update(ct) + d.finalize()
    assert 1 <= pt[-1] <= 16 and pt[-pt[-1]:] == bytes([pt[-1]]) * pt[-1]
    return pt[:-pt[-1]]


class Reader:
    """Reads big-endian fields of a raw pickle, recording each for the vector file."""

    def __init__(self, data):
        self.d, self.o, self.fields = data, 0, []

    def take(self, name, n):
        v = self.d[self.o:self.o + n]
        assert len(v) == n
        self.fields.append({"name": name, "offset": self.o, "length": n, "hex": v.hex()})
        self.o += n
        return v

    def u32(self, name):
        return int.from_bytes(self.take(name, 4), "big")

    def u8(self, name):
        return self.take(name, 1)[0]


def write_json(directory, name, obj):
    with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
