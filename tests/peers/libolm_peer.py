#!/usr/bin/env python3
"""Interop peer: drives libolm (via python-olm) for olmo's integration tests.

Protocol: one JSON object per line on stdin, exactly one JSON response line on
stdout per request.  Every response is either

    {"ok": true, ...fields...}
    {"ok": false, "error": "<ExceptionClass>: <message>"}

No exception ever terminates the peer; only {"op": "quit"} or EOF on stdin do
(both exit with status 0).  Nothing else is ever written to stdout.

Objects (accounts, sessions, outbound and inbound group sessions) live in
dicts keyed by string handles such as "a1", "s3", "g4" or "i5".  Handles are never reused within one peer.

Encodings:
  * Keys, signatures, message bodies, session ids and pickles are strings
    exactly as python-olm/libolm produce them (unpadded standard base64).
  * Plaintexts are UTF-8 strings.  Decryption decodes strictly, so a
    plaintext that is not valid UTF-8 is reported as an error instead of
    being silently replaced with U+FFFD.
  * Pickle keys: python-olm takes a *str* passphrase and passes
    ``passphrase.encode("utf-8")`` verbatim to libolm as the pickle key (an
    empty string becomes an empty key).  libolm then derives the pickle
    encryption keys from those raw bytes.  So the Rust side must use the
    UTF-8 bytes of the same string as its pickle key.  Non-str keys are
    rejected here (python-olm would raise TypeError on bytes anyway).

To add an op, write a function taking the request dict and returning a dict of
response fields, and decorate it with ``@op("name")``.
"""

import sys

import _libolm  # python-olm's cffi module; only for functions it does not wrap
import olm

from peer_protocol import Ops

# --------------------------------------------------------------------------
# Object store
# --------------------------------------------------------------------------

ACCOUNTS = {}
SESSIONS = {}
# Reserved for Megolm: outbound / inbound group sessions.
OUTBOUND_GROUP_SESSIONS = {}
INBOUND_GROUP_SESSIONS = {}

_COUNTER = [0]


def _store(table, prefix, obj):
    _COUNTER[0] += 1
    handle = "%s%d" % (prefix, _COUNTER[0])
    table[handle] = obj
    return handle


def _get(table, kind, handle):
    if not isinstance(handle, str) or handle not in table:
        raise KeyError("unknown %s handle %r" % (kind, handle))
    return table[handle]


def _account(req):
    return _get(ACCOUNTS, "account", req["account"])


def _session(req):
    return _get(SESSIONS, "session", req["session"])


def _str_field(req, name):
    value = req[name]
    if not isinstance(value, str):
        raise TypeError("field %r must be a string, got %s" % (name, type(value).__name__))
    return value


def _opt_str_field(req, name):
    value = req.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("field %r must be a string or null" % name)
    return value


def _pickle_key(req):
    # See the module docstring: python-olm encodes the str passphrase as UTF-8.
    return _str_field(req, "key")


def _curve_keys(listing):
    """python-olm lists keys as {"curve25519": {key_id: key}}; flatten it."""
    return dict(listing.get("curve25519", {}))


def _message(msg_type, body):
    if msg_type == 0:
        return olm.OlmPreKeyMessage(body)
    if msg_type == 1:
        return olm.OlmMessage(body)
    raise ValueError("unknown message type %r" % (msg_type,))


def _decrypt(session, message):
    return session.decrypt(message, unicode_errors="strict")


def _account_info(handle, account):
    keys = account.identity_keys
    return {"account": handle, "curve25519": keys["curve25519"], "ed25519": keys["ed25519"]}


# --------------------------------------------------------------------------
# Ops
# --------------------------------------------------------------------------

OPS = Ops()
op = OPS.op


@op("ping")
def op_ping(req):
    try:
        from importlib.metadata import version

        olm_version = version("python-olm")
    except Exception:  # noqa: BLE001
        olm_version = None
    return {"python_olm": olm_version}


# ---- accounts ------------------------------------------------------------


@op("account_new")
def op_account_new(req):
    account = olm.Account()
    return _account_info(_store(ACCOUNTS, "a", account), account)


@op("account_identity_keys")
def op_account_identity_keys(req):
    keys = _account(req).identity_keys
    return {"curve25519": keys["curve25519"], "ed25519": keys["ed25519"]}


@op("account_sign")
def op_account_sign(req):
    return {"signature": _account(req).sign(_str_field(req, "message"))}


@op("ed25519_verify")
def op_ed25519_verify(req):
    # -> {"valid": bool}; a bad signature is not an error here.
    try:
        olm.ed25519_verify(
            _str_field(req, "key"), _str_field(req, "message"), _str_field(req, "signature")
        )
    except olm.OlmVerifyError:
        return {"valid": False}
    return {"valid": True}


@op("account_max_one_time_keys")
def op_account_max_one_time_keys(req):
    return {"max": _account(req).max_one_time_keys}


@op("generate_one_time_keys")
def op_generate_one_time_keys(req):
    account = _account(req)
    count = req["count"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("count must be a non-negative integer")
    account.generate_one_time_keys(count)
    return {"keys": _curve_keys(account.one_time_keys)}


@op("account_one_time_keys")
def op_account_one_time_keys(req):
    return {"keys": _curve_keys(_account(req).one_time_keys)}


@op("mark_keys_as_published")
def op_mark_keys_as_published(req):
    # libolm marks both the one-time keys and the fallback key as published.
    _account(req).mark_keys_as_published()
    return {}


@op("generate_fallback_key")
def op_generate_fallback_key(req):
    account = _account(req)
    account.generate_fallback_key()
    return {"keys": _curve_keys(account.fallback_key)}


@op("account_fallback_key")
def op_account_fallback_key(req):
    # The *unpublished* fallback key (empty once marked as published).
    return {"keys": _curve_keys(_account(req).fallback_key)}


@op("forget_old_fallback_key")
def op_forget_old_fallback_key(req):
    account = _account(req)
    if not hasattr(account, "forget_old_fallback_key"):
        raise NotImplementedError("python-olm has no Account.forget_old_fallback_key")
    account.forget_old_fallback_key()
    return {}


@op("remove_one_time_keys")
def op_remove_one_time_keys(req):
    _account(req).remove_one_time_keys(_session(req))
    return {}


@op("pickle_account")
def op_pickle_account(req):
    return {"pickle": _account(req).pickle(_pickle_key(req)).decode("ascii")}


@op("unpickle_account")
def op_unpickle_account(req):
    pickle = _str_field(req, "pickle").encode("ascii")
    account = olm.Account.from_pickle(pickle, _pickle_key(req))
    return _account_info(_store(ACCOUNTS, "a", account), account)


# ---- sessions ------------------------------------------------------------


@op("outbound_session")
def op_outbound_session(req):
    session = olm.OutboundSession(
        _account(req), _str_field(req, "identity_key"), _str_field(req, "one_time_key")
    )
    return {"session": _store(SESSIONS, "s", session), "session_id": session.id}


@op("inbound_session")
def op_inbound_session(req):
    """Create an inbound session from a pre-key message, then remove the used
    one-time key from the account (unless "remove_one_time_keys": false) and
    decrypt the message.  "sender_key": null skips the sender-key check."""
    account = _account(req)
    msg_type = req.get("type", 0)
    if msg_type != 0:
        raise ValueError("inbound_session needs a pre-key message (type 0), got %r" % (msg_type,))
    message = olm.OlmPreKeyMessage(_str_field(req, "body"))
    session = olm.InboundSession(account, message, _opt_str_field(req, "sender_key"))
    if req.get("remove_one_time_keys", True):
        account.remove_one_time_keys(session)
    plaintext = _decrypt(session, message)
    return {
        "session": _store(SESSIONS, "s", session),
        "session_id": session.id,
        "plaintext": plaintext,
    }


@op("encrypt")
def op_encrypt(req):
    message = _session(req).encrypt(_str_field(req, "plaintext"))
    return {"type": message.message_type, "body": message.ciphertext}


@op("decrypt")
def op_decrypt(req):
    session = _session(req)
    message = _message(req["type"], _str_field(req, "body"))
    return {"plaintext": _decrypt(session, message)}


@op("matches")
def op_matches(req):
    session = _session(req)
    message = olm.OlmPreKeyMessage(_str_field(req, "body"))
    return {"matches": session.matches(message, _opt_str_field(req, "sender_key"))}


@op("session_id")
def op_session_id(req):
    return {"session_id": _session(req).id}


@op("session_describe")
def op_session_describe(req):
    return {"description": _session(req).describe()}


@op("pickle_session")
def op_pickle_session(req):
    return {"pickle": _session(req).pickle(_pickle_key(req)).decode("ascii")}


@op("unpickle_session")
def op_unpickle_session(req):
    pickle = _str_field(req, "pickle").encode("ascii")
    session = olm.Session.from_pickle(pickle, _pickle_key(req))
    return {"session": _store(SESSIONS, "s", session), "session_id": session.id}


# ---- Megolm group sessions -------------------------------------------------
#
# Handles: "g<n>" for outbound (sending) sessions, "i<n>" for inbound ones.
# Keys (session keys, exported keys), message bodies and session ids are the
# unpadded base64 strings libolm produces.  Message indices are u32 integers.


def _outbound_group(req):
    return _get(OUTBOUND_GROUP_SESSIONS, "outbound group session", req["session"])


def _inbound_group(req):
    return _get(INBOUND_GROUP_SESSIONS, "inbound group session", req["session"])


def _u32_field(req, name):
    value = req[name]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        raise ValueError("field %r must be a u32, got %r" % (name, value))
    return value


def _outbound_group_info(handle, session):
    return {
        "session": handle,
        "session_id": session.id,
        "message_index": session.message_index,
        "session_key": session.session_key,
    }


def _inbound_group_info(handle, session):
    # python-olm does not wrap olm_inbound_group_session_is_verified; call it
    # directly.  libolm sets the flag for signed session keys *and* after the
    # first successful decryption.
    verified = bool(_libolm.lib.olm_inbound_group_session_is_verified(session._session))
    return {
        "session": handle,
        "session_id": session.id,
        "first_known_index": session.first_known_index,
        "is_verified": verified,
    }


@op("group_outbound_new")
def op_group_outbound_new(req):
    session = olm.OutboundGroupSession()
    return _outbound_group_info(_store(OUTBOUND_GROUP_SESSIONS, "g", session), session)


@op("group_outbound_info")
def op_group_outbound_info(req):
    """-> session_id, message_index (of the next message) and the signed
    session key at that index."""
    return _outbound_group_info(req["session"], _outbound_group(req))


@op("group_encrypt")
def op_group_encrypt(req):
    """{"plaintext": str} -> {"body", "message_index"}, or
    {"plaintexts": [str, ...]} -> {"bodies": [...], "message_indices": [...]}
    (one round trip for a long run of messages)."""
    session = _outbound_group(req)
    if "plaintexts" in req:
        texts = req["plaintexts"]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise TypeError("field 'plaintexts' must be a list of strings")
        bodies, indices = [], []
        for text in texts:
            indices.append(session.message_index)
            bodies.append(session.encrypt(text))
        return {"bodies": bodies, "message_indices": indices}
    index = session.message_index
    return {"body": session.encrypt(_str_field(req, "plaintext")), "message_index": index}


@op("group_pickle_outbound")
def op_group_pickle_outbound(req):
    return {"pickle": _outbound_group(req).pickle(_pickle_key(req)).decode("ascii")}


@op("group_unpickle_outbound")
def op_group_unpickle_outbound(req):
    pickle = _str_field(req, "pickle").encode("ascii")
    session = olm.OutboundGroupSession.from_pickle(pickle, _pickle_key(req))
    return _outbound_group_info(_store(OUTBOUND_GROUP_SESSIONS, "g", session), session)


@op("group_inbound_new")
def op_group_inbound_new(req):
    """From a signed session key (m.room_key)."""
    session = olm.InboundGroupSession(_str_field(req, "session_key"))
    return _inbound_group_info(_store(INBOUND_GROUP_SESSIONS, "i", session), session)


@op("group_inbound_import")
def op_group_inbound_import(req):
    """From an exported (unsigned) session key."""
    session = olm.InboundGroupSession.import_session(_str_field(req, "exported_key"))
    return _inbound_group_info(_store(INBOUND_GROUP_SESSIONS, "i", session), session)


@op("group_inbound_info")
def op_group_inbound_info(req):
    return _inbound_group_info(req["session"], _inbound_group(req))


@op("group_decrypt")
def op_group_decrypt(req):
    plaintext, index = _inbound_group(req).decrypt(_str_field(req, "body"), unicode_errors="strict")
    return {"plaintext": plaintext, "message_index": index}


@op("group_export")
def op_group_export(req):
    """The exported key at "index".  Note that libolm moves its cached latest
    ratchet when exporting at or after it (visible in a later pickle)."""
    return {"exported_key": _inbound_group(req).export_session(_u32_field(req, "index"))}


@op("group_pickle_inbound")
def op_group_pickle_inbound(req):
    return {"pickle": _inbound_group(req).pickle(_pickle_key(req)).decode("ascii")}


@op("group_unpickle_inbound")
def op_group_unpickle_inbound(req):
    pickle = _str_field(req, "pickle").encode("ascii")
    session = olm.InboundGroupSession.from_pickle(pickle, _pickle_key(req))
    return _inbound_group_info(_store(INBOUND_GROUP_SESSIONS, "i", session), session)


# ---- misc ----------------------------------------------------------------


@op("drop")
def op_drop(req):
    """Forget a handle of any kind: {"op": "drop", "handle": h}."""
    handle = _str_field(req, "handle")
    for table in (ACCOUNTS, SESSIONS, OUTBOUND_GROUP_SESSIONS, INBOUND_GROUP_SESSIONS):
        if handle in table:
            del table[handle]
            return {}
    raise KeyError("unknown handle %r" % (handle,))


if __name__ == "__main__":
    sys.exit(OPS.serve())
