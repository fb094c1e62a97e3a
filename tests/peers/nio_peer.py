#!/usr/bin/env python3
"""Interop peer: drives matrix-nio's end-to-end machinery for olmo's key export tests.

Same protocol as libolm_peer.py: one JSON object per line on stdin, exactly one JSON
response line on stdout per request, each either

    {"ok": true, ...fields...}
    {"ok": false, "error": "<ExceptionClass>: <message>"}

No exception ever ends the peer; only {"op": "quit"} or EOF on stdin do.

Each "machine" is a real `nio.crypto.Olm` over an in-memory `SqliteMemoryStore`, so keys
go the way a nio client sends them: `group_encrypt` for room events, the store's pickles
for inbound sessions, `Olm.export_keys` / `Olm.import_keys` for key export files (those
write and read a file on disk: the peer uses a temporary directory), and
`decrypt_megolm_event` to decrypt. Handles ("m1", ...) are never reused.

Encodings: keys, ciphertexts and session keys are the unpadded base64 strings nio uses;
plaintexts are the exact JSON strings encrypted; file texts are strings.

To add an op, write a function taking the request dict and returning a dict of response
fields, and decorate it with ``@op("name")``.
"""

import logging
import os
import sys
import tempfile

from nio.api import Api
from nio.crypto import Olm
from nio.crypto import key_export
from nio.events import MegolmEvent
from nio.store import SqliteMemoryStore

from peer_protocol import Ops

# nio logs to the root logger; keep stdout for responses only.
logging.disable(logging.CRITICAL)

MACHINES = {}
_COUNTER = [0]
_TMP = tempfile.TemporaryDirectory(prefix="olmo-nio-peer-")


def _handle(prefix):
    _COUNTER[0] += 1
    return "%s%d" % (prefix, _COUNTER[0])


def _str(req, name):
    value = req[name]
    if not isinstance(value, str):
        raise TypeError("field %r must be a string, got %s" % (name, type(value).__name__))
    return value


def _int(req, name, default=None):
    value = req.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("field %r must be an integer" % name)
    return value


def _machine(req):
    handle = req.get("machine")
    if handle not in MACHINES:
        raise KeyError("unknown machine handle %r" % (handle,))
    return MACHINES[handle]


def _temp_path():
    return os.path.join(_TMP.name, _handle("file") + ".txt")


OPS = Ops()
op = OPS.op


@op("ping")
def op_ping(req):
    from importlib.metadata import version

    return {"matrix_nio": version("matrix-nio"), "vodozemac": version("vodozemac")}


@op("machine_create")
def op_machine_create(req):
    """A fresh nio Olm machine (account created and stored by nio)."""
    user_id = _str(req, "user_id")
    device_id = _str(req, "device_id")
    machine = Olm(user_id, device_id, SqliteMemoryStore(user_id, device_id))
    handle = _handle("m")
    MACHINES[handle] = machine
    keys = machine.account.identity_keys
    return {"machine": handle, "curve25519": keys["curve25519"], "ed25519": keys["ed25519"]}


@op("outbound_create")
def op_outbound_create(req):
    """Olm.create_outbound_group_session (also stores our inbound copy), marked as shared."""
    machine = _machine(req)
    room_id = _str(req, "room_id")
    machine.create_outbound_group_session(room_id)
    session = machine.outbound_group_sessions[room_id]
    session.mark_as_shared()
    return {"session_id": session.id}


@op("outbound_session_key")
def op_outbound_session_key(req):
    """The m.room_key session key at the outbound session's current index."""
    session = _machine(req).outbound_group_sessions[_str(req, "room_id")]
    return {"session_key": session.session_key, "message_index": session.message_index}


@op("group_encrypt")
def op_group_encrypt(req):
    """Olm.group_encrypt of an m.room.message with `body`; returns the event content, the
    message index used and the exact plaintext JSON that was encrypted."""
    machine = _machine(req)
    room_id = _str(req, "room_id")
    body = _str(req, "body")
    session = machine.outbound_group_sessions[room_id]
    index = session.message_index
    content = {"msgtype": "m.text", "body": body}
    plaintext = Api.to_json({"type": "m.room.message", "content": content, "room_id": room_id})
    payload = machine.group_encrypt(room_id, {"type": "m.room.message", "content": content})
    return {"content": payload, "message_index": index, "plaintext": plaintext}


@op("add_inbound")
def op_add_inbound(req):
    """Olm.create_group_session: what nio does on receiving m.room_key."""
    machine = _machine(req)
    machine.create_group_session(
        _str(req, "sender_key"),
        _str(req, "ed25519"),
        _str(req, "room_id"),
        _str(req, "session_id"),
        _str(req, "session_key"),
    )
    session = machine.inbound_group_store.get(
        _str(req, "room_id"), _str(req, "sender_key"), _str(req, "session_id")
    )
    if session is None:
        raise ValueError("nio refused the session key")
    return {"first_known_index": session.first_known_index}


@op("export_keys")
def op_export_keys(req):
    """Olm.export_keys: every inbound session in the store, written to a file; returns its text."""
    path = _temp_path()
    _machine(req).export_keys(path, _str(req, "passphrase"), _int(req, "rounds", 10000))
    with open(path, encoding="utf-8") as f:
        text = f.read()
    os.remove(path)
    return {"text": text}


@op("import_keys")
def op_import_keys(req):
    """Olm.import_keys from a file holding `text`; lists the machine's inbound sessions after."""
    machine = _machine(req)
    path = _temp_path()
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(_str(req, "text"))
    try:
        machine.import_keys(path, _str(req, "passphrase"))
    finally:
        os.remove(path)
    sessions = [
        {
            "room_id": session.room_id,
            "sender_key": session.sender_key,
            "session_id": session.id,
            "ed25519": session.ed25519,
            "first_known_index": session.first_known_index,
            "forwarding_chain": session.forwarding_chain,
        }
        for session in machine.inbound_group_store
    ]
    return {"sessions": sessions}


@op("decrypt_file")
def op_decrypt_file(req):
    """nio's key_export.decrypt_and_read alone: the raw JSON text inside a key export file."""
    path = _temp_path()
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(_str(req, "text"))
    try:
        data = key_export.decrypt_and_read(path, _str(req, "passphrase"))
    finally:
        os.remove(path)
    return {"json": data.decode("utf-8")}


@op("decrypt_event")
def op_decrypt_event(req):
    """Olm.decrypt_megolm_event of an m.room.encrypted event with `content`."""
    machine = _machine(req)
    room_id = _str(req, "room_id")
    event = MegolmEvent.from_dict(
        {
            "type": "m.room.encrypted",
            "event_id": _str(req, "event_id"),
            "sender": _str(req, "sender"),
            "origin_server_ts": 1,
            "room_id": room_id,
            "content": req["content"],
        }
    )
    if not isinstance(event, MegolmEvent):
        raise ValueError("not a Megolm event: %s" % type(event).__name__)
    decrypted = machine.decrypt_megolm_event(event, room_id)
    source = getattr(decrypted, "source", None)
    return {
        "event_class": type(decrypted).__name__,
        "body": getattr(decrypted, "body", None),
        "decrypted_room_id": (source or {}).get("room_id"),
    }


if __name__ == "__main__":
    sys.exit(OPS.serve())
