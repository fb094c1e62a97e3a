#!/usr/bin/env python3
"""Regenerate the OMEMO 2 (urn:xmpp:omemo:2) vectors in this directory with python-omemo's
`twomemo` backend:
    .venv/bin/python test-vectors/omemo2/generate_twomemo.py
Every random input is SHA-256 of a text label (see ../omemo_tools.py), so the output is
byte-identical on every run, whatever PYTHONHASHSEED is.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from omemo_tools import (  # noqa: E402
    ALICE, BOB, CONVERSATION, Flavour, Generator, generate, protobuf_fields, run, token,
)

import twomemo.etree  # noqa: E402
import twomemo.twomemo  # noqa: E402
from twomemo.twomemo import CryptoProviderImpl, HashFunction  # noqa: E402

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


def message_draws(number, empty):
    return [] if empty else [token(f"message {number}/payload key", 32)]


def script():
    """CONVERSATION with each body in an SCE envelope, its <rpad> numbered."""
    out = []
    for sender, body in CONVERSATION:
        names = (ALICE[0], BOB[0]) if sender == "alice" else (BOB[0], ALICE[0])
        rpad = f"pad{len(out) + 1}"
        out.append((sender, None if body is None else envelope(body, *names, rpad)))
    return out


PAYLOADS = [
    ("envelope", envelope("A payload vector: several AES blocks of SCE envelope.",
                          ALICE[0], BOB[0], "p4dd1ng")),
    ("empty plaintext", b""),
    ("one block", b"sixteen bytes!!!"),
]


GENERATOR = Generator(
    fl=FL,
    title="OMEMO 2",
    prefix="olmo-omemo2",
    script=script(),
    message_draws=message_draws,
    receive_draws=lambda number, empty: [],
    parse_key=parse_key,
    describe_payload=describe_payload,
    payloads=PAYLOADS,
    payload_draws=lambda name: [token(f"payload {name}/key", 32)],
)


if __name__ == "__main__":
    generate(GENERATOR, __file__)
