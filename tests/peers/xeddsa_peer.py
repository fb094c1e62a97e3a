#!/usr/bin/env python3
"""Interop peer: drives the PyPI `xeddsa` package (libxeddsa), the primitives python-omemo,
twomemo, oldmemo and x3dh are built on, for olmo's OMEMO identity tests.

Protocol as in libolm_peer.py: one JSON object per line on stdin, exactly one JSON response line
per request, {"ok": true, ...} or {"ok": false, "error": "<ExceptionClass>: <message>"}.  No
exception ends the peer; {"op": "quit"} or EOF do.  Every byte string is lowercase hex.

The ops are thin wrappers: the tests compose them the way the python OMEMO stack does, e.g.
oldmemo's bundle parsing is `curve25519_pub_to_ed25519_pub(u, sig[63] >> 7)` then
`ed25519_verify` with bit 7 cleared; x3dh with Curve25519 identities signs with
`priv_force_sign(priv, False)` and verifies with the sign-0 lift.
"""

import sys

import xeddsa

from peer_protocol import Ops


def _bytes(req, name, size=None):
    value = req[name]
    if not isinstance(value, str):
        raise TypeError("field %r must be a hex string" % name)
    data = bytes.fromhex(value)
    if size is not None and len(data) != size:
        raise ValueError("field %r must be %d bytes, got %d" % (name, size, len(data)))
    return data


def _bool(req, name):
    value = req[name]
    if not isinstance(value, bool):
        raise TypeError("field %r must be a boolean" % name)
    return value


OPS = Ops()
op = OPS.op


@op("ping")
def op_ping(req):
    from importlib.metadata import version

    return {"xeddsa": version("xeddsa")}


@op("seed_info")
def op_seed_info(req):
    """A seed's X25519 private key and its two public forms."""
    seed = _bytes(req, "seed", xeddsa.SEED_SIZE)
    priv = xeddsa.seed_to_priv(seed)
    return {
        "priv": priv.hex(),
        "ed25519_pub": xeddsa.seed_to_ed25519_pub(seed).hex(),
        "curve25519_pub": xeddsa.priv_to_curve25519_pub(priv).hex(),
        "priv_ed25519_pub": xeddsa.priv_to_ed25519_pub(priv).hex(),
    }


@op("priv_info")
def op_priv_info(req):
    priv = _bytes(req, "priv", xeddsa.PRIV_SIZE)
    return {
        "curve25519_pub": xeddsa.priv_to_curve25519_pub(priv).hex(),
        "ed25519_pub": xeddsa.priv_to_ed25519_pub(priv).hex(),
    }


@op("ed25519_to_curve25519")
def op_ed25519_to_curve25519(req):
    """Raises XEdDSAException for keys libsodium's conversion refuses."""
    pub = _bytes(req, "ed25519_pub", xeddsa.ED_25519_PUB_SIZE)
    return {"curve25519_pub": xeddsa.ed25519_pub_to_curve25519_pub(pub).hex()}


@op("curve25519_to_ed25519")
def op_curve25519_to_ed25519(req):
    """A plain formula in libxeddsa: no validity checks at all."""
    pub = _bytes(req, "curve25519_pub", xeddsa.CURVE_25519_PUB_SIZE)
    return {"ed25519_pub": xeddsa.curve25519_pub_to_ed25519_pub(pub, _bool(req, "set_sign_bit")).hex()}


@op("priv_force_sign")
def op_priv_force_sign(req):
    priv = _bytes(req, "priv", xeddsa.PRIV_SIZE)
    return {"priv": xeddsa.priv_force_sign(priv, _bool(req, "set_sign_bit")).hex()}


@op("priv_sign")
def op_priv_sign(req):
    """Signs under A = priv·B as given (no negation, no sign bit in the signature).  With a
    "nonce" (64 bytes, XEdDSA's Z) the signature is deterministic."""
    priv = _bytes(req, "priv", xeddsa.PRIV_SIZE)
    nonce = _bytes(req, "nonce", xeddsa.NONCE_SIZE) if req.get("nonce") is not None else None
    return {"signature": xeddsa.ed25519_priv_sign(priv, _bytes(req, "message"), nonce).hex()}


@op("seed_sign")
def op_seed_sign(req):
    """Plain RFC 8032 Ed25519 with a seed."""
    seed = _bytes(req, "seed", xeddsa.SEED_SIZE)
    return {"signature": xeddsa.ed25519_seed_sign(seed, _bytes(req, "message")).hex()}


@op("verify")
def op_verify(req):
    # -> {"valid": bool}; a bad signature is not an error here.
    valid = xeddsa.ed25519_verify(
        _bytes(req, "signature", xeddsa.ED_25519_SIGNATURE_SIZE),
        _bytes(req, "ed25519_pub", xeddsa.ED_25519_PUB_SIZE),
        _bytes(req, "message"),
    )
    return {"valid": bool(valid)}


@op("x25519")
def op_x25519(req):
    priv = _bytes(req, "priv", xeddsa.PRIV_SIZE)
    pub = _bytes(req, "curve25519_pub", xeddsa.CURVE_25519_PUB_SIZE)
    return {"shared": xeddsa.x25519(priv, pub).hex()}


if __name__ == "__main__":
    sys.exit(OPS.serve())
