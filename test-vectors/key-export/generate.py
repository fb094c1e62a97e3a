#!/usr/bin/env python3
"""Regenerate the room key export vectors in this directory (vectors.json).

Run with the peers' venv (`.ci/setup-python.sh`), which has `cryptography` and
`matrix-nio[e2e]`:
    .venv/bin/python test-vectors/key-export/generate.py [--refresh-nio]

File: armour around base64(0x01 ‖ salt[16] ‖ iv[16] ‖ rounds u32 BE ‖ AES-256-CTR(plaintext)
‖ HMAC-SHA-256(every byte before)), with AES key ‖ HMAC key =
PBKDF2-HMAC-SHA-512(UTF-8 passphrase, salt, rounds, 64).

Two producers, neither of them olmo:
* This script, on pyca/cryptography: PBKDF2, HMAC, and AES-256-CTR over the whole 128-bit
  block, or, for the 64-bit counter (only the low 64 bits of the block count and wrap without
  carrying into the high half), AES-256-ECB over counter blocks built here. All inputs are
  fixed (salts and IVs are SHA-256 of a text label), so this part is byte-identical on every run.
* matrix-nio's own writer, `nio.crypto.key_export.encrypt_and_save`. nio draws its salt and IV
  at random, so its files are a frozen output: kept from vectors.json when present and only
  re-checked (with nio's reader and with the implementation here). `--refresh-nio` writes new
  ones, which changes their bytes.
"""
import base64, hashlib, json, os, sys, tempfile
from importlib.metadata import version

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "vectors.json")
HEADER = "-----BEGIN MEGOLM SESSION DATA-----"
FOOTER = "-----END MEGOLM SESSION DATA-----"
LINE = 128  # base64 characters per armour line (96 bytes)
CRYPTOGRAPHY = f"generate.py on python cryptography {version('cryptography')}"


def rnd(label, n):
    """n fixed bytes: SHA-256("olmo-key-export-tv/<label>/<i>") concatenated."""
    out, i = b"", 0
    while len(out) < n:
        out += hashlib.sha256(f"olmo-key-export-tv/{label}/{i}".encode()).digest()
        i += 1
    return out[:n]


def b64u(data):
    return base64.b64encode(data).decode().rstrip("=")


# ------------------------------------------------------------------ the format, independently
def derive(passphrase, salt, rounds):
    kdf = PBKDF2HMAC(algorithm=hashes.SHA512(), length=64, salt=salt, iterations=rounds)
    keys = kdf.derive(passphrase.encode("utf-8"))
    return keys[:32], keys[32:]


def ctr128(key, iv, data):
    """AES-256-CTR with the whole 16-byte block as a big-endian counter (cryptography's CTR)."""
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def ctr64(key, iv, data):
    """AES-256-CTR counting in the low 64 bits only, wrapping without carry (WebCrypto with
    `length: 64`): AES-ECB over counter blocks built by hand."""
    high, low = iv[:8], int.from_bytes(iv[8:], "big")
    blocks = b"".join(high + ((low + i) % (1 << 64)).to_bytes(8, "big")
                      for i in range(-(-len(data) // 16)))
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    stream = encryptor.update(blocks) + encryptor.finalize()
    return bytes(a ^ b for a, b in zip(data, stream))


CTR = {"128": ctr128, "64": ctr64}


def mac(key, data):
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


def seal(plaintext, passphrase, rounds, salt, iv, counter):
    aes_key, mac_key = derive(passphrase, salt, rounds)
    body = bytes([1]) + salt + iv + rounds.to_bytes(4, "big") + CTR[counter](aes_key, iv, plaintext)
    return body + mac(mac_key, body)


def armour(data):
    text = base64.b64encode(data).decode()
    lines = [text[i:i + LINE] for i in range(0, len(text), LINE)]
    return "\n".join([HEADER, *lines, FOOTER]) + "\n"


def unarmour(text):
    start = text.index(HEADER) + len(HEADER)
    body = "".join(text[start:text.index(FOOTER, start)].split())
    return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)


def counters_disagree(iv, length):
    """Whether the low 64 bits of the IV wrap before the last block."""
    blocks = -(-length // 16)
    return blocks > 0 and int.from_bytes(iv[8:], "big") + blocks - 1 >= 1 << 64


def check(vector):
    """Open the file with this module's reader; the wrong passphrase and, where the low half
    wraps, the other counter must not give the plaintext."""
    data = unarmour(vector["file"])
    assert data[0] == 1 and len(data) >= 37 + 32, vector["name"]
    salt, iv = data[1:17], data[17:33]
    rounds = int.from_bytes(data[33:37], "big")
    assert rounds == vector["rounds"], vector["name"]
    aes_key, mac_key = derive(vector["passphrase"], salt, rounds)
    assert mac(mac_key, data[:-32]) == data[-32:], f"{vector['name']}: MAC"
    _, wrong_mac_key = derive("wrong", salt, rounds)
    assert mac(wrong_mac_key, data[:-32]) != data[-32:]
    ciphertext = data[37:-32]
    expected = vector["plaintext"].encode("utf-8")
    assert CTR[vector["counter"]](aes_key, iv, ciphertext) == expected, vector["name"]
    other = CTR["64" if vector["counter"] == "128" else "128"](aes_key, iv, ciphertext)
    assert (other != expected) == counters_disagree(iv, len(ciphertext)), vector["name"]
    return counters_disagree(iv, len(ciphertext))


# ------------------------------------------------------------------ plaintexts
def room_keys_json():
    """Two room keys in the export JSON, from fixed key material (valid Ed25519/Curve25519)."""
    keys = []
    for i, (index, shared) in enumerate([(0, False), (1234, True)]):
        ratchet = rnd(f"room-key/{i}/ratchet", 128)
        signing = Ed25519PrivateKey.from_private_bytes(rnd(f"room-key/{i}/ed25519", 32))
        signing_public = signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        sender = X25519PrivateKey.from_private_bytes(rnd(f"room-key/{i}/curve25519", 32))
        sender_key = b64u(sender.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        device = Ed25519PrivateKey.from_private_bytes(rnd(f"room-key/{i}/device", 32))
        device_key = b64u(device.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        # Exported session key: 0x01 ‖ index u32 BE ‖ ratchet[128] ‖ Ed25519 public[32].
        session_key = b64u(bytes([1]) + index.to_bytes(4, "big") + ratchet + signing_public)
        keys.append({
            "algorithm": "m.megolm.v1.aes-sha2",
            "room_id": f"!vectors{i}:example.org",
            "sender_key": sender_key,
            "session_id": b64u(signing_public),
            "session_key": session_key,
            "sender_claimed_keys": {"ed25519": device_key},
            "forwarding_curve25519_key_chain": [] if i == 0 else [sender_key],
            "m.shared_history": shared,
        })
    return json.dumps(keys, separators=(",", ":"))


ROOM_KEYS = room_keys_json()
MULTI_BLOCK = ("A plaintext of several AES blocks, so the counter really steps: "
               "one, two, three, four, five, six, seven blocks and a bit.")


def iv_bit63_clear(label):
    iv = bytearray(rnd(label, 16))
    iv[8] &= 0x7F
    return bytes(iv)


# ------------------------------------------------------------------ the vectors
def ours():
    """(name, plaintext, passphrase, rounds, counter, iv); the salt comes from the name."""
    carry_iv = rnd("carry-128/iv", 8) + bytes.fromhex("fffffffffffffffe")
    return [
        ("short", "olmo key export", "correct horse battery staple", 10, "128",
         iv_bit63_clear("short/iv")),
        ("empty-plaintext", "", "nothing inside", 10, "128", iv_bit63_clear("empty/iv")),
        ("multi-block", MULTI_BLOCK, "a longer passphrase, with spaces", 1000, "128",
         iv_bit63_clear("multi-block/iv")),
        ("utf8-passphrase", "plaintext with ümlauts and an emoji 🙂", "pässwörd ✓ 🔑", 10, "128",
         iv_bit63_clear("utf8-passphrase/iv")),
        ("room-keys", ROOM_KEYS, "room keys passphrase", 1000, "128",
         iv_bit63_clear("room-keys/iv")),
        # Low half 0xff…fe: it wraps after two blocks and the 128-bit counter carries.
        ("carry-128", ROOM_KEYS, "carry passphrase", 10, "128", carry_iv),
        # IV all ones: every block after the first differs between the two counters.
        ("wrap-64", ROOM_KEYS, "wrapping passphrase", 10, "64", b"\xff" * 16),
    ]


NIO = [  # name, plaintext, passphrase (ASCII: nio encodes passphrases as Latin-1), rounds
    ("nio-short", "olmo key export written by matrix-nio", "nio passphrase", 10),
    ("nio-room-keys", ROOM_KEYS, "nio room keys", 1000),
]


def nio_vector(name, plaintext, passphrase, rounds):
    from nio.crypto.key_export import encrypt_and_save
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "export.txt")
        encrypt_and_save(plaintext.encode("utf-8"), path, passphrase, count=rounds)
        with open(path, encoding="utf-8") as f:
            text = f.read()
    return {"name": name, "plaintext": plaintext, "passphrase": passphrase, "rounds": rounds,
            "counter": "128", "file": text,
            "producer": f"matrix-nio {version('matrix-nio')} encrypt_and_save "
                        f"(pycryptodome {version('pycryptodome')})"}


def nio_reads(vector):
    from nio.crypto.key_export import decrypt_and_read
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "export.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(vector["file"])
        return decrypt_and_read(path, vector["passphrase"]).decode("utf-8")


def main():
    refresh_nio = "--refresh-nio" in sys.argv[1:]
    vectors = []
    for name, plaintext, passphrase, rounds, counter, iv in ours():
        salt = rnd(f"{name}/salt", 16)
        data = seal(plaintext.encode("utf-8"), passphrase, rounds, salt, iv, counter)
        vectors.append({"name": name, "plaintext": plaintext, "passphrase": passphrase,
                        "rounds": rounds, "counter": counter, "file": armour(data),
                        "producer": CRYPTOGRAPHY})
    # Sanity of the two CTR modes: they agree while the low half does not wrap, and the
    # ECB-built 64-bit stream matches cryptography's CTR there.
    key, iv = rnd("sanity/key", 32), iv_bit63_clear("sanity/iv")
    assert ctr64(key, iv, MULTI_BLOCK.encode()) == ctr128(key, iv, MULTI_BLOCK.encode())

    frozen = {}
    if os.path.exists(OUT) and not refresh_nio:
        with open(OUT, encoding="utf-8") as f:
            frozen = {v["name"]: v for v in json.load(f) if v["producer"].startswith("matrix-nio")}
    for name, plaintext, passphrase, rounds in NIO:
        vector = frozen.get(name)
        if vector is None:
            vector = nio_vector(name, plaintext, passphrase, rounds)
        assert (vector["plaintext"], vector["passphrase"], vector["rounds"]) == \
            (plaintext, passphrase, rounds), f"{name}: frozen entry differs from NIO; --refresh-nio"
        assert nio_reads(vector) == plaintext, name  # nio still reads its own file
        vectors.append(vector)

    wraps = {v["name"] for v in vectors if check(v)}
    assert wraps == {"carry-128", "wrap-64"}, wraps
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(vectors, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(vectors)} vectors to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
