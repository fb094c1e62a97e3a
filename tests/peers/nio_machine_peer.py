#!/usr/bin/env python3
"""Interop peer: one matrix-nio E2EE device (`nio.crypto.Olm`) with no homeserver.

The test harness plays the homeserver: it asks this peer for the Client-Server API request
bodies nio would send (`/keys/upload`, `/keys/query`, `/keys/claim`, `/sendToDevice`), answers
with the server's response bodies, and passes to-device and room events through. Everything
cryptographic (signing, checking query and claim responses, Olm, Megolm, trust) is nio's own
code; the peer only does what nio's clients (`nio.client`) do around the machine.

Protocol: tests/peers/peer_protocol.py (one JSON request per line, one response per line).
One device per process: `create` first, once. Bodies are the spec's JSON, unchanged.
nio reports most failures only in its log: ops that may fail quietly add `log`, nio's warnings.

Ops (request fields -> response fields):
  create {user_id, device_id, store_dir?} -> {curve25519, ed25519}
      store_dir: nio's on-disk SqliteStore there (reopened by a later `create` in a new
      process); otherwise an in-memory SqliteMemoryStore.
  keys_upload {} -> {body: /keys/upload body | null}
  keys_upload_response {body: {one_time_key_counts}} -> {}
  otk_count {signed_curve25519} -> {upload_needed}          (sync's device_one_time_keys_count)
  keys_query_request {users?} -> {body: /keys/query body | null}
  keys_query_response {body} -> {changed: {user: [device]}, invalidated_rooms: [room]}
  keys_claim_request {users?} -> {body: /keys/claim body | null}
  keys_claim_response {body} -> {sessions: {user: [device]}}   (devices that now have a session)
  devices {user_id} -> {devices: [{device_id, curve25519, ed25519, trust, deleted}]}
  trust {user_id, device_id, level: verified|unverified|blacklisted|ignored} -> {}
  receive_to_device {events: [{type, sender, content}]} -> {results: [...]}, each result
      {decrypted: true, type, content, sender, sender_device, keys, nio_event, room_key_stored?}
      {decrypted: false, error, nio_event?}   (error: nio's log warnings; nio never raises here)
      {plain: true, nio_event}                (a to-device event that was not encrypted)
  encrypt_to_device {user_id, device_id, type, content} -> {type: "m.room.encrypted", messages}
  outgoing_to_device {} -> {requests: [{type, messages}]}    (nio's queue: m.dummy, key requests;
      handed over once, marked sent)
  share_room_key {room_id, users, ignore_unverified?=true}
      -> {type: "m.room.encrypted", messages, session_id, shared: bool, without_session}
  encrypt_room {room_id, type, content} -> {content}
  decrypt_room {room_id, event} -> {type, content, verified, session_id} | error
  rotate_room_key {room_id} -> {invalidated}  (false: no session, or one never shared)
  room_key_info {room_id} -> {session_id, message_index, shared, expired} | nulls
  export_keys {path, passphrase, rounds?} -> {}
  import_keys {path, passphrase} -> {sessions}
  wedged {} -> {devices: {user: [device]}}
  age_olm_sessions {minutes} -> {}   (test hook: nio unwedges only sessions older than an hour)
"""

import json
import logging
import os
import sys
from collections import defaultdict
from datetime import timedelta

from nio.api import Api
from nio.crypto import Olm
from nio.events import MegolmEvent, ToDeviceEvent
from nio.responses import (
    ErrorResponse,
    KeysClaimResponse,
    KeysQueryResponse,
    KeysUploadResponse,
    ToDeviceResponse,
)
from nio.store import SqliteMemoryStore, SqliteStore

from peer_protocol import Ops

OLM_ENCRYPTED = "m.room.encrypted"
TRUST_LEVELS = ("verified", "unverified", "blacklisted", "ignored")


class _LogTail(logging.Handler):
    """Keeps nio's warnings and errors of the current op: nio reports most failures only there."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def take(self):
        lines, self.lines = self.lines, []
        return lines


LOG = _LogTail()
_NIO_LOGGER = logging.getLogger("nio")
_NIO_LOGGER.addHandler(LOG)
_NIO_LOGGER.setLevel(logging.WARNING)
_NIO_LOGGER.propagate = False  # stdout carries responses only


class PeerOlm(Olm):
    """nio's machine, remembering the last Olm payload it decrypted and checked.

    nio hands only m.room_key, m.forwarded_room_key and m.dummy to its client; the hook lets the
    peer report every decrypted type. It runs after nio's own sender/recipient checks."""

    last_payload = None

    def _handle_olm_event(self, sender, sender_key, payload):
        self.last_payload = payload
        return super()._handle_olm_event(sender, sender_key, payload)


STATE = {"olm": None, "rooms": defaultdict(set)}

OPS = Ops()
op = OPS.op


def _field(req, name, kind, default=None, required=True):
    if name not in req or req[name] is None:
        if required:
            raise KeyError("missing field %r" % name)
        return default
    value = req[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError("field %r must be %s" % (name, kind.__name__))
    return value


def _olm():
    if STATE["olm"] is None:
        raise RuntimeError("no device: call create first")
    return STATE["olm"]


def _device(olm, user_id, device_id):
    try:
        return olm.device_store[user_id][device_id]
    except KeyError:
        raise KeyError("unknown device %s %s (query its keys first)" % (user_id, device_id))


def _body(api_call):
    """The JSON body of one of nio's Api request builders."""
    return json.loads(api_call[2])


def _response(cls, body, *args):
    response = cls.from_dict(body, *args)
    if isinstance(response, ErrorResponse):
        raise ValueError("nio refused the response: %s" % response)
    return response


def _users_devices(pairs):
    out = defaultdict(list)
    for user_id, device_id in pairs:
        out[user_id].append(device_id)
    return {user: sorted(devices) for user, devices in out.items()}


def _trust(olm, device):
    if olm.is_device_blacklisted(device):
        return "blacklisted"
    if olm.is_device_verified(device):
        return "verified"
    if olm.is_device_ignored(device):
        return "ignored"
    return "unverified"


@op("ping")
def op_ping(req):
    from importlib.metadata import version

    return {"matrix_nio": version("matrix-nio"), "vodozemac": version("vodozemac")}


@op("create")
def op_create(req):
    if STATE["olm"] is not None:
        raise RuntimeError("this peer already holds a device")
    user_id = _field(req, "user_id", str)
    device_id = _field(req, "device_id", str)
    store_dir = _field(req, "store_dir", str, required=False)
    if store_dir:
        os.makedirs(store_dir, exist_ok=True)
        store = SqliteStore(user_id, device_id, store_dir)
    else:
        store = SqliteMemoryStore(user_id, device_id)
    olm = PeerOlm(user_id, device_id, store)
    STATE["olm"] = olm
    keys = olm.account.identity_keys
    return {"curve25519": keys["curve25519"], "ed25519": keys["ed25519"]}


@op("keys_upload")
def op_keys_upload(req):
    """What nio's client uploads when `should_upload_keys`: device keys (first time) and signed
    one-time keys up to the account's maximum. nio makes no fallback keys."""
    olm = _olm()
    if not olm.should_upload_keys:
        return {"body": None}
    return {"body": _body(Api.keys_upload("", olm.share_keys()))}


@op("keys_upload_response")
def op_keys_upload_response(req):
    body = _field(req, "body", dict)
    counts = dict(body.get("one_time_key_counts") or {})
    # nio's response class requires a "curve25519" count that servers no longer send.
    counts.setdefault("curve25519", 0)
    counts.setdefault("signed_curve25519", 0)
    _olm().handle_response(_response(KeysUploadResponse, dict(body, one_time_key_counts=counts)))
    return {}


@op("otk_count")
def op_otk_count(req):
    """Sync's device_one_time_keys_count, as nio's client applies it (a zero count is ignored)."""
    olm = _olm()
    count = _field(req, "signed_curve25519", int)
    if count:
        olm.uploaded_key_count = count
    return {"upload_needed": olm.should_upload_keys}


@op("keys_query_request")
def op_keys_query_request(req):
    olm = _olm()
    olm.add_changed_users(set(_field(req, "users", list, default=[], required=False)))
    if not olm.should_query_keys:
        return {"body": None}
    return {"body": _body(Api.keys_query("", sorted(olm.users_for_key_query)))}


@op("keys_query_response")
def op_keys_query_response(req):
    """nio checks each device (ids match, self-signature, unchanged Ed25519 key) and stores it.
    Like nio's client, outbound room sessions shared with a user whose devices changed are
    invalidated (the next share_room_key makes a new session)."""
    olm = _olm()
    response = _response(KeysQueryResponse, _field(req, "body", dict))
    olm.handle_response(response)
    changed = {user: sorted(devices) for user, devices in response.changed.items()}
    invalidated = []
    for room_id, users in STATE["rooms"].items():
        if users & set(changed) and _invalidate(olm, room_id):
            invalidated.append(room_id)
    return {"changed": changed, "invalidated_rooms": sorted(invalidated), "log": LOG.take()}


@op("keys_claim_request")
def op_keys_claim_request(req):
    """One-time keys for the given users' devices without an Olm session, plus the devices
    nio marked as wedged."""
    olm = _olm()
    wanted = defaultdict(set)
    for user_id, devices in olm.get_missing_sessions(
        _field(req, "users", list, default=[], required=False)
    ).items():
        wanted[user_id].update(devices)
    for device in olm.wedged_devices:
        wanted[device.user_id].add(device.device_id)
    if not wanted:
        return {"body": None}
    return {"body": _body(Api.keys_claim("", {u: sorted(d) for u, d in wanted.items()}))}


@op("keys_claim_response")
def op_keys_claim_response(req):
    """nio checks each one-time key's signature with the device's Ed25519 key and starts an
    outbound Olm session; a wedged device also gets an m.dummy queued (see outgoing_to_device)."""
    olm = _olm()
    body = _field(req, "body", dict)
    response = _response(KeysClaimResponse, body)
    before = {d.curve25519: len(olm.session_store[d.curve25519]) for d in _claimed(olm, body)}
    olm.handle_response(response)
    created = [
        (d.user_id, d.device_id)
        for d in _claimed(olm, body)
        if len(olm.session_store[d.curve25519]) > before[d.curve25519]
    ]
    return {"sessions": _users_devices(created), "log": LOG.take()}


def _claimed(olm, body):
    for user_id, devices in (body.get("one_time_keys") or {}).items():
        for device_id in devices:
            device = olm.device_store[user_id].get(device_id)
            if device is not None:
                yield device


@op("devices")
def op_devices(req):
    olm = _olm()
    user_id = _field(req, "user_id", str)
    devices = [
        {
            "device_id": d.device_id,
            "curve25519": d.curve25519,
            "ed25519": d.ed25519,
            "trust": _trust(olm, d),
            "deleted": d.deleted,
        }
        for d in olm.device_store[user_id].values()
    ]
    return {"devices": sorted(devices, key=lambda d: d["device_id"])}


@op("trust")
def op_trust(req):
    olm = _olm()
    device = _device(olm, _field(req, "user_id", str), _field(req, "device_id", str))
    level = _field(req, "level", str)
    if level not in TRUST_LEVELS:
        raise ValueError("level must be one of %s" % ", ".join(TRUST_LEVELS))
    olm.unverify_device(device)
    olm.unblacklist_device(device)
    olm.unignore_device(device)
    if level == "verified":
        olm.verify_device(device)
    elif level == "blacklisted":
        olm.blacklist_device(device)
    elif level == "ignored":
        olm.ignore_device(device)
    return {}


@op("receive_to_device")
def op_receive_to_device(req):
    olm = _olm()
    results = []
    for raw in _field(req, "events", list):
        LOG.take()
        olm.last_payload = None
        try:
            results.append(_receive_one(olm, raw))
        except Exception as exc:  # noqa: BLE001 - one bad event must not hide the others
            results.append({"decrypted": False, "error": "%s: %s" % (type(exc).__name__, exc)})
    return {"results": results}


def _receive_one(olm, raw):
    if not isinstance(raw, dict):
        raise TypeError("a to-device event must be an object")
    event = ToDeviceEvent.parse_event(raw)
    name = type(event).__name__ if event is not None else None
    if event is None or name in ("BadEvent", "UnknownBadEvent"):
        return {"decrypted": False, "error": "nio could not parse the event", "nio_event": name}
    if raw.get("type") != OLM_ENCRYPTED:
        olm.handle_to_device_event(event)
        return {"plain": True, "nio_event": name}
    result = olm.handle_to_device_event(event)
    payload = olm.last_payload
    log = LOG.take()
    if payload is None:
        error = "; ".join(log) if log else "not decrypted"
        return {"decrypted": False, "error": error, "nio_event": name}
    out = {
        "decrypted": True,
        "type": payload["type"],
        "content": payload["content"],
        "sender": payload["sender"],
        "sender_device": payload.get("sender_device"),
        "keys": payload.get("keys"),
        "nio_event": type(result).__name__ if result is not None else None,
    }
    if payload["type"] == "m.room_key":
        content = payload["content"]
        stored = olm.inbound_group_store.get(
            content.get("room_id"), event.sender_key, content.get("session_id")
        )
        out["room_key_stored"] = stored is not None
    if log:
        out["log"] = log
    return out


@op("encrypt_to_device")
def op_encrypt_to_device(req):
    """nio's own Olm encryption (the one it uses for m.room_key and m.dummy) of any payload,
    with the newest session for the device (keys_claim first)."""
    olm = _olm()
    device = _device(olm, _field(req, "user_id", str), _field(req, "device_id", str))
    session = olm.session_store.get(device.curve25519)
    if session is None:
        raise KeyError("no Olm session with %s %s" % (device.user_id, device.device_id))
    content = olm._olm_encrypt(
        session, device, _field(req, "type", str), _field(req, "content", dict)
    )
    return {"type": OLM_ENCRYPTED, "messages": {device.user_id: {device.device_id: content}}}


@op("outgoing_to_device")
def op_outgoing_to_device(req):
    olm = _olm()
    pending = list(olm.outgoing_to_device_messages)
    requests = [{"type": m.type, "messages": m.as_dict()["messages"]} for m in pending]
    for message in pending:
        olm.handle_response(ToDeviceResponse(message))
    # Marking an m.dummy sent may queue room key re-requests; they are handed over next time.
    return {"requests": requests}


@op("share_room_key")
def op_share_room_key(req):
    """What nio's client does before sending in an encrypted room: if the room has no outbound
    session, or it is expired or not yet shared, share one (a session marked shared is never
    re-shared: nio makes a new one) with every device of `users` that has an Olm session.
    Unverified devices make nio refuse unless ignore_unverified (default), which marks them
    ignored: they still get the key. Blacklisted devices get nothing."""
    olm = _olm()
    room_id = _field(req, "room_id", str)
    users = _field(req, "users", list)
    ignore_unverified = _field(req, "ignore_unverified", bool, default=True, required=False)
    STATE["rooms"][room_id].update(users)
    messages = {}
    if olm.should_share_group_session(room_id):
        shared_with = set()
        for sharing_with, to_device in olm.share_group_session_parallel(
            room_id, users, ignore_unverified_devices=ignore_unverified
        ):
            shared_with.update(sharing_with)
            for user_id, devices in to_device["messages"].items():
                messages.setdefault(user_id, {}).update(devices)
        session = olm.outbound_group_sessions[room_id]
        session.users_shared_with.update(shared_with)
        session.shared = True
        shared = True
    else:
        shared = False
    without_session = olm.get_missing_sessions(users)
    return {
        "type": OLM_ENCRYPTED,
        "messages": messages,
        "session_id": olm.outbound_group_sessions[room_id].id,
        "shared": shared,
        "without_session": {u: sorted(d) for u, d in without_session.items()},
        "log": LOG.take(),
    }


@op("encrypt_room")
def op_encrypt_room(req):
    olm = _olm()
    content = olm.group_encrypt(
        _field(req, "room_id", str),
        {"type": _field(req, "type", str), "content": _field(req, "content", dict)},
    )
    return {"content": content}


@op("decrypt_room")
def op_decrypt_room(req):
    """nio's decrypt_megolm_event: errors (no session, unknown index, replay with another event
    id or timestamp, device key mismatch) are raised as EncryptionError."""
    olm = _olm()
    room_id = _field(req, "room_id", str)
    raw = dict(_field(req, "event", dict))
    raw.setdefault("room_id", room_id)
    event = MegolmEvent.from_dict(raw)
    if not isinstance(event, MegolmEvent):
        raise ValueError("not a Megolm event: %s" % type(event).__name__)
    decrypted = olm.decrypt_megolm_event(event, room_id)
    source = getattr(decrypted, "source", None) or {}
    LOG.take()
    return {
        "type": source.get("type"),
        "content": source.get("content"),
        "verified": bool(getattr(decrypted, "verified", False)),
        "session_id": event.session_id,
        "nio_event": type(decrypted).__name__,
    }


def _invalidate(olm, room_id):
    """nio's client's invalidate_outbound_session: drops a shared outbound session."""
    session = olm.outbound_group_sessions.get(room_id)
    if session is None or not session.shared:
        return False
    del olm.outbound_group_sessions[room_id]
    return True


@op("rotate_room_key")
def op_rotate_room_key(req):
    return {"invalidated": _invalidate(_olm(), _field(req, "room_id", str))}


@op("room_key_info")
def op_room_key_info(req):
    session = _olm().outbound_group_sessions.get(_field(req, "room_id", str))
    if session is None:
        return {"session_id": None, "message_index": None, "shared": None, "expired": None}
    return {
        "session_id": session.id,
        "message_index": session.message_index,
        "shared": session.shared,
        "expired": bool(session.expired),
    }


@op("export_keys")
def op_export_keys(req):
    rounds = _field(req, "rounds", int, default=10000, required=False)
    _olm().export_keys(_field(req, "path", str), _field(req, "passphrase", str), rounds)
    return {}


@op("import_keys")
def op_import_keys(req):
    olm = _olm()
    olm.import_keys(_field(req, "path", str), _field(req, "passphrase", str))
    sessions = [
        {"room_id": s.room_id, "sender_key": s.sender_key, "session_id": s.id}
        for s in olm.inbound_group_store
    ]
    return {"sessions": sessions, "log": LOG.take()}


@op("age_olm_sessions")
def op_age_olm_sessions(req):
    """Test hook: makes every Olm session look `minutes` older (in memory only), so nio's
    unwedging, which leaves sessions younger than an hour alone, can be driven in a test."""
    olm = _olm()
    delta = timedelta(minutes=_field(req, "minutes", int))
    for session in olm.session_store:
        session.creation_time -= delta
    return {}


@op("wedged")
def op_wedged(req):
    return {"devices": _users_devices((d.user_id, d.device_id) for d in _olm().wedged_devices)}


if __name__ == "__main__":
    sys.exit(OPS.serve())
