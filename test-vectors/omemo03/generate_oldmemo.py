#!/usr/bin/env python3
"""Regenerate the OMEMO 0.3 (eu.siacs.conversations.axolotl) vectors in this directory with
python-omemo's `oldmemo` backend:
    .venv/bin/python test-vectors/omemo03/generate_oldmemo.py
Every random input is SHA-256 of a text label (see ../omemo_tools.py), so the output is
byte-identical on every run, whatever PYTHONHASHSEED is.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from omemo_tools import (  # noqa: E402
    CONVERSATION, Flavour, Generator, generate, protobuf_fields, token,
)

import oldmemo.etree  # noqa: E402
import oldmemo.oldmemo  # noqa: E402

FL = Flavour("omemo03", oldmemo.oldmemo, oldmemo.etree, oldmemo.oldmemo.Oldmemo,
             "preKeyPublic", "preKeyId", "signedPreKeySignature")
VERSION_BYTE = 0x33
MAC_LENGTH = 8


def key(data):
    """libsignal's `0x05 ‖ key` -> the 32-byte key."""
    assert len(data) == 33 and data[0] == 0x05
    return data[1:]


def parse_authenticated(data):
    """0x33 ‖ SignalMessage{1 ratchetKey, 2 counter, 3 previousCounter, 4 ciphertext} ‖ mac[8]."""
    assert data[0] == VERSION_BYTE
    message, mac = data[:-MAC_LENGTH], data[-MAC_LENGTH:]
    inner = protobuf_fields(message[1:])
    assert sorted(inner) == [1, 2, 3, 4]
    return {"ratchet_public": key(inner[1]), "n": inner[2], "pn": inner[3],
            "authenticated_message": data, "message": message, "mac": mac,
            "ciphertext": inner[4]}


def parse_key(kex, data):
    """0x33 ‖ PreKeySignalMessage{1 preKeyId, 2 baseKey, 3 identityKey, 4 message,
    6 signedPreKeyId} (oldmemo writes no 5 registrationId) or the bare message."""
    if not kex:
        return parse_authenticated(data)
    assert data[0] == VERSION_BYTE
    fields = protobuf_fields(data[1:])
    assert sorted(fields) == [1, 2, 3, 4, 6]
    out = parse_authenticated(fields[4])
    out["key_exchange"] = {"pre_key_id": fields[1], "signed_pre_key_id": fields[6],
                           "identity_key": fields[3].hex(), "base_key": fields[2].hex(),
                           "registration_id": None}
    return out


def describe_payload(content, pkm, empty):
    if empty:  # oldmemo's empty message: a fresh key for KeyTransportMessage use, and an IV
        assert content.empty and len(pkm.key) == 16 and pkm.auth_tag == b""
        return {"key": pkm.key.hex(), "iv": content.initialization_vector.hex()}
    return {"key": pkm.key.hex(), "iv": content.initialization_vector.hex(),
            "ciphertext": content.ciphertext.hex(), "tag": pkm.auth_tag.hex()}


def message_draws(number, empty):
    if empty:  # encrypt_empty: ContentImpl.make_empty (IV), then PlainKeyMaterialImpl's key
        return [token(f"message {number}/iv", 12), token(f"message {number}/key", 16)]
    return [token(f"message {number}/key", 16), token(f"message {number}/iv", 12)]


def receive_draws(number, empty):
    # oldmemo.etree.parse_message gives an element without <payload> a fresh
    # ContentImpl.make_empty(), IV included, which nothing uses.
    return [token(f"message {number}/parser's placeholder iv", 12)] if empty else []


PAYLOADS = [
    ("body", "A payload vector: a message body of a few AES-GCM blocks, with ümlauts.".encode()),
    ("empty plaintext", b""),
    ("one byte", b"!"),
]


GENERATOR = Generator(
    fl=FL,
    title="OMEMO 0.3",
    prefix="olmo-omemo03",
    script=[(sender, None if body is None else body.encode("utf-8"))
            for sender, body in CONVERSATION],
    message_draws=message_draws,
    receive_draws=receive_draws,
    parse_key=parse_key,
    describe_payload=describe_payload,
    payloads=PAYLOADS,
    payload_draws=lambda name: [token(f"payload {name}/key", 16), token(f"payload {name}/iv", 12)],
)


if __name__ == "__main__":
    generate(GENERATOR, __file__)
