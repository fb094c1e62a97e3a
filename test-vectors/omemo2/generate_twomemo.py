#!/usr/bin/env python3
"""Regenerate the OMEMO 2 (urn:xmpp:omemo:2) vectors in this directory with python-omemo's
`twomemo` backend:
    /work/main/.venv/bin/python test-vectors/omemo2/generate_twomemo.py
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

import twomemo.etree  # noqa: E402
import twomemo.twomemo  # noqa: E402
from twomemo.twomemo import CryptoProviderImpl, HashFunction  # noqa: E402

PREFIX = "olmo-omemo2"
ALICE = ("alice@example.org", 31415926)
BOB = ("bob@example.org", 27182818)
FL = Flavour("omemo2", twomemo.twomemo, twomemo.etree, twomemo.twomemo.Twomemo, "pk", "id",
             "spks")


def envelope(body, sender, recipient, rpad):
    """An SCE envelope in the canonical form olmo's stanza::Envelope writes."""
    return (f"<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>{body}</body>"
            f"</content><rpad>{rpad}</rpad><to jid='{recipient}'/><from jid='{sender}'/>"
            "</envelope>").encode("utf-8")


def parse_authenticated(data):
    """OMEMOAuthenticatedMessage{1 mac, 2 message = OMEMOMessage{1 n, 2 pn, 3 dh_pub,
    4 ciphertext}}."""
    outer = protobuf_fields(data)
    inner = protobuf_fields(outer[2])
    assert sorted(outer) == [1, 2] and sorted(inner) == [1, 2, 3, 4]
    return {"ratchet_public": inner[3], "n": inner[1], "pn": inner[2],
            "authenticated_message": data, "message": outer[2], "mac": outer[1],
            "ciphertext": inner[4]}


def parse_key(kex, data):
    """OMEMOKeyExchange{1 pk_id, 2 spk_id, 3 ik, 4 ek, 5 message} or the bare message."""
    if not kex:
        return parse_authenticated(data)
    fields = protobuf_fields(data)
    assert sorted(fields) == [1, 2, 3, 4, 5]
    out = parse_authenticated(fields[5])
    out["key_exchange"] = {"pre_key_id": fields[1], "signed_pre_key_id": fields[2],
                           "identity_key": fields[3].hex(), "base_key": fields[4].hex()}
    return out


async def payload_keys(key):
    """HKDF-SHA-256(salt 0³², key, "OMEMO Payload", 80) through python-omemo's own provider:
    AES-256-CBC key, HMAC key, IV."""
    okm = await CryptoProviderImpl.hkdf_derive(HashFunction.SHA_256, 80, b"\x00" * 32,
                                               b"OMEMO Payload", key)
    return okm[:32], okm[32:64], okm[64:]


def describe_payload(content, pkm, empty):
    if empty:
        assert content.empty and pkm.key == bytes(32) and pkm.auth_tag == b""
        return None
    enc, mac, iv = run(payload_keys(pkm.key))
    return {"key": pkm.key.hex(), "encryption_key": enc.hex(), "authentication_key": mac.hex(),
            "iv": iv.hex(), "hmac": pkm.auth_tag.hex(), "ciphertext": content.ciphertext.hex()}


class Hooks:
    def __init__(self, recorder, chosen_pre_key_public):
        self.recorder = recorder
        self.chosen_pre_key_public = chosen_pre_key_public

    @staticmethod
    def payload_draws(number, empty):
        return [] if empty else [token(f"message {number}/payload key", 32)]

    @staticmethod
    def receive_draws(number, empty):
        return []

    @staticmethod
    def parse_key(kex, data):
        return parse_key(kex, data)

    @staticmethod
    def describe_payload(content, pkm, number, empty):
        return describe_payload(content, pkm, empty)


PAYLOADS = [
    ("envelope", envelope("A payload vector: several AES blocks of SCE envelope.",
                          ALICE[0], BOB[0], "p4dd1ng")),
    ("empty plaintext", b""),
    ("one block", b"sixteen bytes!!!"),
]


def payload_vectors(tape, backend):
    out = []
    for name, plaintext in PAYLOADS:
        label = f"payload {name}/key"
        with tape.draws(token(label, 32)):
            content, pkm = run(backend.encrypt_plaintext(plaintext))
        assert run(backend.decrypt_plaintext(content, pkm)) == plaintext
        out.append({"name": name, "plaintext_hex": plaintext.hex(),
                    **describe_payload(content, pkm, False),
                    "key_material": (pkm.key + pkm.auth_tag).hex()})
    return out


def run_conversation(tape, deliver=None):
    recorder = Recorder(twomemo.twomemo.StateImpl)
    alice = PeerDevice(FL, tape, "alice", *ALICE)
    bob = PeerDevice(FL, tape, "bob", *BOB)
    alice.create([1, 2, 3])
    bob.create([1, 2, 3])
    chosen = 2
    hooks = Hooks(recorder, next(pub for pub, i in bob.bundle.pre_key_ids.items() if i == chosen))
    script = []
    for sender, body in CONVERSATION:
        names = (ALICE[0], BOB[0]) if sender == "alice" else (BOB[0], ALICE[0])
        rpad = f"pad{len(script) + 1}"
        script.append((sender, None if body is None else envelope(body, *names, rpad)))
    session, messages = conversation(FL, tape, alice, bob, script, hooks, deliver)
    assert session["pre_key_id"] == chosen
    return alice, bob, session, messages


def main():
    tape = Tape(PREFIX)
    tape.install()
    alice, bob, session, messages = run_conversation(tape)
    vectors = {
        "description": "An OMEMO 2 conversation made by python-omemo (twomemo) with scripted "
                       "randomness. See README.md.",
        "generator": "test-vectors/omemo2/generate_twomemo.py",
        "libraries": library_versions(),
        "namespace": FL.uri,
        "random": f'SHA-256("{PREFIX}/<label>/<i>") for i = 0, 1, ... joined and cut to length',
        "devices": {"alice": alice.describe(), "bob": bob.describe()},
        "session": session,
        "messages": messages,
        "random_draws": list(tape.log),
    }
    # Payload vectors, on a third device's backend (payload encryption needs no session).
    carol = PeerDevice(FL, Tape(PREFIX + "-payload"), "carol", "carol@example.org", 1)
    carol.tape.install()
    payloads = {
        "description": "OMEMO 2 payload encryption by twomemo's encrypt_plaintext. See README.md.",
        "generator": "test-vectors/omemo2/generate_twomemo.py",
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
