#!/usr/bin/env python3
"""Regenerate the OMEMO 0.3 (eu.siacs.conversations.axolotl) vectors in this directory with
python-omemo's `oldmemo` backend:
    /work/main/.venv/bin/python test-vectors/omemo03/generate_oldmemo.py
Every random input is SHA-256 of a text label (see ../omemo_tools.py), so the output is
byte-identical on every run, whatever PYTHONHASHSEED is.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from omemo_tools import (  # noqa: E402
    CONVERSATION, Flavour, PeerDevice, Recorder, Tape, check_olmo_conversation, conversation,
    library_versions, protobuf_fields, run, token, write_json,
)

import oldmemo.etree  # noqa: E402
import oldmemo.oldmemo  # noqa: E402

PREFIX = "olmo-omemo03"
ALICE = ("alice@example.org", 31415926)
BOB = ("bob@example.org", 27182818)
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


class Hooks:
    def __init__(self, recorder, chosen_pre_key_public):
        self.recorder = recorder
        self.chosen_pre_key_public = chosen_pre_key_public

    @staticmethod
    def payload_draws(number, empty):
        if empty:  # encrypt_empty: ContentImpl.make_empty (IV), then PlainKeyMaterialImpl's key
            return [token(f"message {number}/iv", 12), token(f"message {number}/key", 16)]
        return [token(f"message {number}/key", 16), token(f"message {number}/iv", 12)]

    @staticmethod
    def receive_draws(number, empty):
        # oldmemo.etree.parse_message gives an element without <payload> a fresh
        # ContentImpl.make_empty(), IV included, which nothing uses.
        return [token(f"message {number}/parser's placeholder iv", 12)] if empty else []

    @staticmethod
    def parse_key(kex, data):
        return parse_key(kex, data)

    @staticmethod
    def describe_payload(content, pkm, number, empty):
        return describe_payload(content, pkm, empty)


PAYLOADS = [
    ("body", "A payload vector: a message body of a few AES-GCM blocks, with ümlauts.".encode()),
    ("empty plaintext", b""),
    ("one byte", b"!"),
]


def payload_vectors(tape, backend):
    out = []
    for name, plaintext in PAYLOADS:
        with tape.draws(token(f"payload {name}/key", 16), token(f"payload {name}/iv", 12)):
            content, pkm = run(backend.encrypt_plaintext(plaintext))
        if plaintext:  # decrypt_plaintext asserts a non-empty content
            assert run(backend.decrypt_plaintext(content, pkm)) == plaintext
        out.append({"name": name, "plaintext_hex": plaintext.hex(),
                    **describe_payload(content, pkm, False),
                    "key_material": (pkm.key + pkm.auth_tag).hex()})
    return out


def run_conversation(tape, deliver=None):
    recorder = Recorder(oldmemo.oldmemo.StateImpl)
    alice = PeerDevice(FL, tape, "alice", *ALICE)
    bob = PeerDevice(FL, tape, "bob", *BOB)
    alice.create([1, 2, 3])
    bob.create([1, 2, 3])
    chosen = 2
    hooks = Hooks(recorder, next(pub for pub, i in bob.bundle.pre_key_ids.items() if i == chosen))
    script = [(sender, None if body is None else body.encode("utf-8"))
              for sender, body in CONVERSATION]
    session, messages = conversation(FL, tape, alice, bob, script, hooks, deliver)
    assert session["pre_key_id"] == chosen
    return alice, bob, session, messages


def main():
    tape = Tape(PREFIX)
    tape.install()
    alice, bob, session, messages = run_conversation(tape)
    vectors = {
        "description": "An OMEMO 0.3 conversation made by python-omemo (oldmemo) with scripted "
                       "randomness. See README.md.",
        "generator": "test-vectors/omemo03/generate_oldmemo.py",
        "libraries": library_versions(),
        "namespace": FL.uri,
        "random": f'SHA-256("{PREFIX}/<label>/<i>") for i = 0, 1, ... joined and cut to length',
        "devices": {"alice": alice.describe(), "bob": bob.describe()},
        "session": session,
        "messages": messages,
        "random_draws": list(tape.log),
    }
    carol = PeerDevice(FL, Tape(PREFIX + "-payload"), "carol", "carol@example.org", 1)
    carol.tape.install()
    payloads = {
        "description": "OMEMO 0.3 payload encryption by oldmemo's encrypt_plaintext. "
                       "See README.md.",
        "generator": "test-vectors/omemo03/generate_oldmemo.py",
        "libraries": library_versions(),
        "random": f'SHA-256("{PREFIX}-payload/<label>/<i>") for i = 0, 1, ...',
        "payloads": payload_vectors(carol.tape, carol.backend),
    }
    write_json(HERE, "conversation.json", vectors)
    write_json(HERE, "payloads.json", payloads)
    print(f"wrote conversation.json ({len(messages)} messages) and payloads.json "
          f"({len(payloads['payloads'])} payloads)")
    check_olmo_conversation(HERE, FL, run_conversation, PREFIX + "-check")


if __name__ == "__main__":
    main()
