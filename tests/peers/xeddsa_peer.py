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

import json
import sys

import xeddsa


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


OPS = {}


def op(name):
    def register(fn):
        if name in OPS:
            raise RuntimeError("duplicate op %s" % name)
        OPS[name] = fn
        return fn

    return register


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


class _Quit(Exception):
    pass


@op("quit")
def op_quit(req):
    raise _Quit()


def _error(exc):
    return {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}


def handle_line(line):
    """Returns (response dict, quit?)."""
    try:
        req = json.loads(line)
        if not isinstance(req, dict):
            raise ValueError("request must be a JSON object")
        fn = OPS.get(req.get("op"))
        if fn is None:
            raise ValueError("unknown op %r" % (req.get("op"),))
        result = fn(req)
    except _Quit:
        return {"ok": True}, True
    except Exception as exc:  # noqa: BLE001 - the peer must never die
        return _error(exc), False
    response = {"ok": True}
    response.update(result)
    return response, False


def main():
    for raw in sys.stdin.buffer:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line:
            continue
        response, quit_now = handle_line(line)
        sys.stdout.write(json.dumps(response, ensure_ascii=True) + "\n")
        sys.stdout.flush()
        if quit_now:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
