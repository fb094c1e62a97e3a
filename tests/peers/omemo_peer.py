#!/usr/bin/env python3
"""Interop peer: drives python-omemo 2.1 (`omemo`) with its real backends `twomemo` (OMEMO 2,
urn:xmpp:omemo:2) and `oldmemo` (OMEMO 0.3, eu.siacs.conversations.axolotl) for olmo's OMEMO tests.

Protocol as in peer_protocol.py: one JSON object per line on stdin, exactly one JSON response line
per request, {"ok": true, ...} or {"ok": false, "error": "<ExceptionClass>: <message>"}; the class is
the library's own (DecryptionFailed, KeyExchangeFailed, NoSession, XMLSchemaValidationError, ...) and
the message names the underlying cause.  No exception ends the peer; {"op": "quit"} or EOF do.
Byte strings are lowercase hex.  XML travels as strings: what the libraries' `etree` helpers build,
written with ElementTree as `<bundle xmlns="urn:xmpp:omemo:2">…` (default namespace, no prefixes), and
incoming XML is parsed with the same helpers (schema-validated).  `ns` is "omemo2" or "omemo03".

Backend-level devices: one backend (Twomemo or Oldmemo) over an in-memory omemo.Storage per `name`,
no SessionManager; the ops replay what SessionManager.encrypt/decrypt do around the backend calls.
  ping                                           -> {omemo, twomemo, oldmemo, x3dh, doubleratchet, xeddsa}
  device_new {name, ns, jid, device_id}          -> {bundle_xml, identity_ed25519, identity_curve25519,
                                                     fingerprint, identity_seed}   (100 pre-keys)
  device_import {name, ns, jid, device_id, identity_seed, signed_pre_key {id, priv, [sig], [timestamp]},
                 pre_keys [{id, priv}]}          -> same fields as device_new
  bundle {name}                                  -> {bundle_xml}
  encrypt {name, to [{jid, device_id, [bundle_xml]}], plaintext}         -> {encrypted_xml}
  encrypt_empty {name, to [...]}                 -> {encrypted_xml}
  decrypt {name, from_jid, encrypted_xml, [sender_bundle_xml], [sender_identity_ed25519]}
                                                 -> {plaintext (null if empty), kex, sender_device,
                                                     needs_empty_reply, [pre_key_id, signed_pre_key_id,
                                                     sender_identity_ed25519]}
  session_info {name, jid, device_id}            -> {exists, [initiation, confirmed, sends_kex,
                                                     receiving_chain_length, sending_chain_length,
                                                     previous_sending_chain_length, skipped_keys,
                                                     pre_key_id, signed_pre_key_id, associated_data]}
  encrypt_key_material {name, jid, device_id, key_material, [bundle_xml]} -> {key, kex}
  decrypt_key_material {name, jid, device_id, key, kex, [sender_identity_ed25519]}
                                                 -> {key_material, needs_empty_reply}
`key_material` is what the ratchet carries (OMEMO 2: key 32 ‖ HMAC 16, empty message 32 zero bytes;
0.3: AES-GCM key 16 ‖ tag 16, empty message a random 16-byte key).  `key` is the <key> content.
0.3 key exchanges carry the Montgomery identity only; its Ed25519 sign bit comes from a bundle seen
(encrypt's bundle_xml, sender_bundle_xml) or sender_identity_ed25519, else 0 (DH and MAC use the
Montgomery form, so only the reported identity can differ).  `needs_empty_reply` is the manager's
rule: a key exchange, or a receiving chain longer than 53.

SessionManager level: omemo.SessionManager subclasses (both backends, Twomemo first, every device
trusted, history synchronisation ended right after creation) sharing one in-memory "server" of
published bundles and device lists (XML strings).  Device lists are re-downloaded before each
sm_encrypt, as a client does when a chat opens; a sender not yet known is looked up by the library.
  sm_new {name, jid, [label], [namespaces [ns, ...]]}
                                                 -> {device_id, identity_ed25519, fingerprint}
                                                    (label: signed into the OMEMO 2 list only;
                                                    namespaces: the backends loaded, default both,
                                                    ["omemo03"] is an oldmemo-only client)
  sm_publish {ns, jid, device_id, bundle_xml}    -> {}
  sm_publish_devices {ns, jid, device_list_xml}  -> {}
  sm_published {ns, jid}                         -> {device_list_xml (or null), bundles {device_id: xml}}
  sm_encrypt {name, to_jid, plaintext, [plaintexts {ns: hex}], [priority [ns, ...]]}
                                                 -> {messages {ns: encrypted_xml}, errors [...]}
  sm_decrypt {name, from_jid, ns, encrypted_xml} -> {plaintext (null if empty), sender_device}
  sm_outbox {name}                               -> {messages [{ns, to_jid, encrypted_xml}]} (drained)
  sm_set_trust {name, jid, identity_ed25519, trust ("trusted"|"distrusted"|"undecided")} -> {}
                                                    (distrusted: not encrypted to, its messages
                                                    refused with SenderDistrusted)
  sm_restart {name}                              -> {device_id} (shut down, created again from its
                                                    storage)
  sm_bench {operation, iterations, ...}          -> {seconds_per_op, messages}  (omemo_bench.py)

The SessionManager does not build SCE envelopes: it encrypts the bytes given per namespace as they
are, so the caller passes the <envelope xmlns='urn:xmpp:sce:1'> for omemo2 and the body for omemo03.
"""

import asyncio
import atexit
import base64
import copy
import functools
import logging
import os
import sys
import time
import xml.etree.ElementTree as ET
from importlib.metadata import version
from typing import NamedTuple

import omemo
import oldmemo.etree
import oldmemo.oldmemo
import twomemo.etree
import twomemo.twomemo
import x3dh
import x3dh.identity_key_pair
import x3dh.signed_pre_key_pair
import xeddsa
from omemo.identity_key_pair import IdentityKeyPair
from omemo.session import Initiation

from peer_protocol import Ops

# The in-memory omemo.Storage and the sender lookup oldmemo's parser asks for are the OMEMO vector
# generators' (importing omemo_tools patches nothing: its scripted randomness is installed only by
# the generators).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "test-vectors"))
from omemo_tools import MemoryStorage, SenderLookup  # noqa: E402

# SessionManager's defaults, replayed by the backend-level devices.
PRE_KEY_COUNT = 100
PRE_KEY_REFILL_THRESHOLD = 99
STALENESS = omemo.SessionManager.STALENESS_MAGIC_NUMBER

LOOP = asyncio.new_event_loop()

# python-omemo logs routine events (own device re-added, sender found by a device list refresh) as
# warnings; OMEMO_PEER_LOG=DEBUG|INFO|WARNING shows them on stderr.
logging.basicConfig(stream=sys.stderr, level=os.environ.get("OMEMO_PEER_LOG", "ERROR"))


def run(coro):
    return LOOP.run_until_complete(coro)


# --------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------


class Flavour(NamedTuple):
    short: str
    uri: str
    impl: object  # twomemo.twomemo / oldmemo.oldmemo
    etree: object
    backend: type


FLAVOURS = {
    "omemo2": Flavour("omemo2", twomemo.twomemo.NAMESPACE, twomemo.twomemo, twomemo.etree,
                      twomemo.twomemo.Twomemo),
    "omemo03": Flavour("omemo03", oldmemo.oldmemo.NAMESPACE, oldmemo.oldmemo, oldmemo.etree,
                       oldmemo.oldmemo.Oldmemo),
}
BY_URI = {f.uri: f for f in FLAVOURS.values()}


def flavour(name):
    if name not in FLAVOURS:
        raise ValueError("unknown ns %r (want one of %s)" % (name, sorted(FLAVOURS)))
    return FLAVOURS[name]


def to_xml(element, fl):
    """The element as `<tag xmlns="ns">…` (ElementTree would write `ns0:` prefixes, and its
    default_namespace option refuses the unqualified attributes)."""
    element = copy.deepcopy(element)
    qualifier = "{%s}" % fl.uri
    for node in element.iter():
        if not node.tag.startswith(qualifier):
            raise ValueError("element %s outside %s" % (node.tag, fl.uri))
        node.tag = node.tag[len(qualifier):]
    element.set("xmlns", fl.uri)
    return ET.tostring(element, encoding="unicode")


def parse_bundle(fl, xml, jid, device_id):
    return fl.etree.parse_bundle(ET.fromstring(xml), jid, device_id)


def serialize_kex(fl, kex, authenticated_message):
    out = kex.serialize(authenticated_message)
    return out[0] if fl.short == "omemo03" else out  # oldmemo adds the identity's sign bit


def parse_kex(fl, data, identity):
    """oldmemo's key exchange carries the Montgomery identity only: the Ed25519 sign bit comes from
    the sender's bundle identity (0 when unknown; DH and AD use the Montgomery form either way)."""
    if fl.short == "omemo03":
        return fl.impl.KeyExchangeImpl.parse(data, bool(identity and identity[31] & 0x80))
    return fl.impl.KeyExchangeImpl.parse(data)


# --------------------------------------------------------------------------
# Request helpers
# --------------------------------------------------------------------------


def _bytes(req, name, size=None):
    value = req[name]
    if not isinstance(value, str):
        raise TypeError("field %r must be a hex string" % name)
    data = bytes.fromhex(value)
    if size is not None and len(data) != size:
        raise ValueError("field %r must be %d bytes, got %d" % (name, size, len(data)))
    return data


def _opt_bytes(req, name, size=None):
    return None if req.get(name) is None else _bytes(req, name, size)


def _int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError("field %r must be an integer" % name)
    return int(value)


def _hex(data):
    return None if data is None else data.hex()


def _with_cause(fn):
    """Keeps the library's exception class but appends the chained causes to its message, so a
    DecryptionFailed says whether the MAC, the padding or the ratchet refused."""

    @functools.wraps(fn)
    def wrapper(req):
        try:
            return fn(req)
        except Exception as exc:
            causes = []
            inner = exc.__cause__
            while inner is not None and len(causes) < 4:
                causes.append("%s: %s" % (type(inner).__name__, inner))
                inner = inner.__cause__
            if causes:
                try:
                    exc.args = ("%s [caused by %s]" % (exc, " <- ".join(causes)),)
                except Exception:  # noqa: BLE001 - exotic exception types keep their message
                    pass
            raise

    return wrapper


OPS = Ops()


def op(name):
    def register(fn):
        return OPS.op(name)(_with_cause(fn))

    return register


@op("ping")
def op_ping(req):
    return {name: version(name) for name in
            ("omemo", "twomemo", "oldmemo", "x3dh", "doubleratchet", "xeddsa")}


# --------------------------------------------------------------------------
# Backend-level devices
# --------------------------------------------------------------------------


class Device:
    """One OMEMO device on one backend: its storage, ids, and identities learned from bundles."""

    def __init__(self, fl, jid, device_id, storage):
        self.fl = fl
        self.jid = jid
        self.device_id = device_id
        self.storage = storage
        self.backend = fl.backend(storage)
        self.identities = {}  # (jid, device_id) -> Ed25519 identity seen in a bundle

    def learn_bundle(self, xml, jid, device_id):
        bundle = parse_bundle(self.fl, xml, jid, device_id)
        self.identities[(jid, device_id)] = bundle.identity_key
        return bundle


DEVICES = {}


def _device(req):
    name = req["name"]
    if name not in DEVICES:
        raise KeyError("no device named %r" % name)
    return DEVICES[name]


async def _describe(dev):
    ikp = await IdentityKeyPair.get(dev.storage)
    ik = ikp.identity_key
    bundle = await dev.backend.get_bundle(dev.jid, dev.device_id)
    return {
        "bundle_xml": to_xml(dev.fl.etree.serialize_bundle(bundle), dev.fl),
        "identity_ed25519": ik.hex(),
        "identity_curve25519": xeddsa.ed25519_pub_to_curve25519_pub(ik).hex(),
        "fingerprint": "".join(omemo.SessionManager.format_identity_key(ik)),
        "identity_seed": ikp.seed.hex() if ikp.is_seed else None,
    }


def _new_device(req):
    fl = flavour(req["ns"])
    name = req["name"]
    if name in DEVICES:
        raise ValueError("device %r exists" % name)
    return name, Device(fl, req["jid"], _int(req["device_id"], "device_id"), MemoryStorage())


@op("device_new")
def op_device_new(req):
    name, dev = _new_device(req)
    run(dev.backend.generate_pre_keys(PRE_KEY_COUNT))
    DEVICES[name] = dev
    return run(_describe(dev))


async def _import_keys(dev, seed, spk, pre_keys):
    """Writes the storage entries Twomemo/Oldmemo read back: the identity seed (/ikp), the X3DH state
    (x3dh's own model) and the backend's public-key -> id maps with its id counter."""
    impl, ns, storage = dev.fl.impl, dev.fl.uri, dev.storage
    await storage.store("/ikp/is_seed", True)
    await storage.store_bytes("/ikp/key", seed)
    spk_priv = bytes.fromhex(spk["priv"])
    spk_pub = xeddsa.priv_to_curve25519_pub(spk_priv)
    sig = _opt_bytes(spk, "sig", 64)
    if sig is None:  # what x3dh signs: the key as StateImpl encodes it, with the seed's scalar
        encoded = impl.StateImpl._encode_public_key(x3dh.IdentityKeyFormat.CURVE_25519, spk_pub)
        sig = xeddsa.ed25519_priv_sign(xeddsa.seed_to_priv(seed), encoded)
    # A 0.3 bundle's signature carries the identity's sign bit in bit 7 of byte 63; x3dh stores the
    # plain Ed25519 signature (bit clear) and oldmemo's serialize_bundle sets it again.
    sig = sig[:63] + bytes([sig[63] & 0x7F])
    timestamp = _int(spk.get("timestamp", int(time.time())), "timestamp")
    privs = {bytes.fromhex(pk["priv"]): _int(pk["id"], "id") for pk in pre_keys}
    model = x3dh.BaseStateModel(
        identity_key=x3dh.identity_key_pair.IdentityKeyPairSeed(seed).model,
        signed_pre_key=x3dh.signed_pre_key_pair.SignedPreKeyPair(spk_priv, sig, timestamp).model,
        old_signed_pre_key=None,
        pre_keys=frozenset(privs),
    )
    state = impl.StateImpl.from_model(model, x3dh.IdentityKeyFormat.ED_25519, x3dh.HashFunction.SHA_256,
                                      impl.StateImpl.INFO)
    await storage.store("/%s/x3dh" % ns, state.json)
    b64 = lambda key: base64.b64encode(key).decode("ascii")  # noqa: E731
    await storage.store("/%s/signed_pre_key_ids" % ns, {b64(spk_pub): _int(spk["id"], "id")})
    await storage.store("/%s/pre_key_ids" % ns,
                        {b64(xeddsa.priv_to_curve25519_pub(priv)): i for priv, i in privs.items()})
    await storage.store("/%s/pre_key_id_counter" % ns, max(privs.values(), default=0))


@op("device_import")
def op_device_import(req):
    name, dev = _new_device(req)
    pre_keys = req["pre_keys"]
    if len({_int(pk["id"], "id") for pk in pre_keys}) != len(pre_keys):
        raise ValueError("duplicate pre-key id")
    run(_import_keys(dev, _bytes(req, "identity_seed", 32), req["signed_pre_key"], pre_keys))
    DEVICES[name] = dev
    return run(_describe(dev))


@op("bundle")
def op_bundle(req):
    dev = _device(req)
    bundle = run(dev.backend.get_bundle(dev.jid, dev.device_id))
    return {"bundle_xml": to_xml(dev.fl.etree.serialize_bundle(bundle), dev.fl)}


def _pending_kex(session):
    """The key exchange a message carries: SessionManager attaches it while the session is actively
    initiated and not yet confirmed by a decrypted message."""
    if session.initiation is Initiation.ACTIVE and not session.confirmed:
        return session.key_exchange
    return None


async def _session_for(dev, jid, device_id, bundle_xml, plain_key_material):
    """Existing session -> encrypt_key_material; otherwise build one actively from the bundle."""
    session = await dev.backend.load_session(jid, device_id)
    if session is not None:
        return session, await dev.backend.encrypt_key_material(session, plain_key_material)
    if bundle_xml is None:
        raise omemo.NoSession("no session with %s/%d and no bundle_xml given" % (jid, device_id))
    bundle = dev.learn_bundle(bundle_xml, jid, device_id)
    return await dev.backend.build_session_active(jid, device_id, bundle, plain_key_material)


async def _encrypt(dev, recipients, content, plain_key_material):
    keys, sessions = set(), []
    for rcpt in recipients:
        jid, device_id = rcpt["jid"], _int(rcpt["device_id"], "device_id")
        session, ekm = await _session_for(dev, jid, device_id, rcpt.get("bundle_xml"),
                                          plain_key_material)
        keys.add((ekm, _pending_kex(session)))
        sessions.append(session)
    for session in sessions:  # like SessionManager.encrypt: persist once all keys are made
        await dev.backend.store_session(session)
    message = omemo.Message(dev.fl.uri, dev.jid, dev.device_id, content, frozenset(keys))
    return to_xml(dev.fl.etree.serialize_message(message), dev.fl)


@op("encrypt")
def op_encrypt(req):
    dev = _device(req)

    async def go():
        content, pkm = await dev.backend.encrypt_plaintext(_bytes(req, "plaintext"))
        return await _encrypt(dev, req["to"], content, pkm)

    return {"encrypted_xml": run(go())}


@op("encrypt_empty")
def op_encrypt_empty(req):
    dev = _device(req)

    async def go():
        content, pkm = await dev.backend.encrypt_empty()
        return await _encrypt(dev, req["to"], content, pkm)

    return {"encrypted_xml": run(go())}


async def _receive(dev, jid, device_id, ekm, kex):
    """SessionManager.decrypt's session handling: a key exchange reuses the passive session it built
    before, otherwise builds a new one; without one the stored session must exist."""
    session = await dev.backend.load_session(jid, device_id)
    if kex is not None:
        if session is not None and not (session.initiation is Initiation.PASSIVE
                                        and session.key_exchange.builds_same_session(kex)):
            session = None
        if session is None:
            return await dev.backend.build_session_passive(jid, device_id, kex, ekm)
    elif session is None:
        raise omemo.NoSession("no session with %s/%d and no key exchange in the message"
                              % (jid, device_id))
    return session, await dev.backend.decrypt_key_material(session, ekm)


async def _commit(dev, session, kex):
    """After a successful decryption: store the session; a key exchange deletes its pre-key and
    refills to 100 (SessionManager outside history synchronisation, refill threshold 99)."""
    await dev.backend.store_session(session)
    if kex is not None and await dev.backend.delete_pre_key(session):
        visible = await dev.backend.get_num_visible_pre_keys()
        if visible <= PRE_KEY_REFILL_THRESHOLD:
            await dev.backend.generate_pre_keys(PRE_KEY_COUNT - visible)


def _needs_empty_reply(session, kex):
    return kex is not None or (session.receiving_chain_length or 0) > STALENESS


def _sender_identity(dev, req, jid, device_id):
    if req.get("sender_bundle_xml") is not None:
        dev.learn_bundle(req["sender_bundle_xml"], jid, device_id)
    if req.get("sender_identity_ed25519") is not None:
        dev.identities[(jid, device_id)] = _bytes(req, "sender_identity_ed25519", 32)
    return dev.identities.get((jid, device_id))


async def _parse_message(dev, req, element, sender_jid):
    if dev.fl.short == "omemo2":
        return dev.fl.etree.parse_message(element, sender_jid)
    header = element.find("{%s}header" % dev.fl.uri)
    sid = int(header.get("sid")) if header is not None and header.get("sid") else -1
    ik = _sender_identity(dev, req, sender_jid, sid) or bytes(32)
    lookup = SenderLookup({(sender_jid, sid): ik})
    return await dev.fl.etree.parse_message(element, sender_jid, dev.jid, lookup)


def _our_key(dev, message):
    for ekm, kex in message.keys:
        if ekm.bare_jid == dev.jid and ekm.device_id == dev.device_id:
            return ekm, kex
    raise omemo.MessageNotForUs("no <key> for %s/%d" % (dev.jid, dev.device_id))


@op("decrypt")
def op_decrypt(req):
    dev = _device(req)
    sender_jid = req["from_jid"]

    async def go():
        message = await _parse_message(dev, req, ET.fromstring(req["encrypted_xml"]), sender_jid)
        ekm, kex = _our_key(dev, message)
        session, pkm = await _receive(dev, sender_jid, message.device_id, ekm, kex)
        plaintext = None if message.content.empty else await dev.backend.decrypt_plaintext(
            message.content, pkm)
        await _commit(dev, session, kex)
        out = {"plaintext": _hex(plaintext), "kex": kex is not None,
               "sender_device": message.device_id,
               "needs_empty_reply": _needs_empty_reply(session, kex)}
        if kex is not None:
            out.update(pre_key_id=kex.pre_key_id, signed_pre_key_id=kex.signed_pre_key_id,
                       sender_identity_ed25519=kex.identity_key.hex())
        return out

    return run(go())


@op("session_info")
def op_session_info(req):
    dev = _device(req)
    session = run(dev.backend.load_session(req["jid"], _int(req["device_id"], "device_id")))
    if session is None:
        return {"exists": False}
    ratchet = session.double_ratchet.model
    return {
        "exists": True,
        "initiation": session.initiation.value,
        "confirmed": session.confirmed,
        "sends_kex": _pending_kex(session) is not None,
        "receiving_chain_length": session.receiving_chain_length,
        "sending_chain_length": session.sending_chain_length,
        "previous_sending_chain_length":
            ratchet.diffie_hellman_ratchet.symmetric_key_ratchet.previous_sending_chain_length,
        "skipped_keys": len(ratchet.skipped_message_keys),
        "pre_key_id": session.key_exchange.pre_key_id,
        "signed_pre_key_id": session.key_exchange.signed_pre_key_id,
        "associated_data": session.associated_data.hex(),
    }


@op("encrypt_key_material")
def op_encrypt_key_material(req):
    """`key_material` is what the ratchet encrypts: key ‖ auth tag (OMEMO 2: 32 ‖ 16, empty
    messages 32 zero bytes; 0.3: 16 ‖ 16).  `key` is the <key> element's content."""
    dev = _device(req)
    jid, device_id = req["jid"], _int(req["device_id"], "device_id")
    material = _bytes(req, "key_material")
    n = dev.fl.impl.PlainKeyMaterialImpl.KEY_LENGTH
    pkm = dev.fl.impl.PlainKeyMaterialImpl(material[:n], material[n:])

    async def go():
        session, ekm = await _session_for(dev, jid, device_id, req.get("bundle_xml"), pkm)
        kex = _pending_kex(session)
        await dev.backend.store_session(session)
        key = ekm.serialize()
        return {"key": (key if kex is None else serialize_kex(dev.fl, kex, key)).hex(),
                "kex": kex is not None}

    return run(go())


@op("decrypt_key_material")
def op_decrypt_key_material(req):
    dev = _device(req)
    jid, device_id = req["jid"], _int(req["device_id"], "device_id")
    data = _bytes(req, "key")
    if not isinstance(req["kex"], bool):
        raise TypeError("field 'kex' must be a boolean")

    async def go():
        kex, authenticated = None, data
        if req["kex"]:
            kex, authenticated = parse_kex(dev.fl, data, _sender_identity(dev, req, jid, device_id))
        ekm = dev.fl.impl.EncryptedKeyMaterialImpl.parse(authenticated, dev.jid, dev.device_id)
        session, pkm = await _receive(dev, jid, device_id, ekm, kex)
        await _commit(dev, session, kex)
        return {"key_material": (pkm.key + pkm.auth_tag).hex(),
                "needs_empty_reply": _needs_empty_reply(session, kex)}

    return run(go())


# --------------------------------------------------------------------------
# SessionManager level
# --------------------------------------------------------------------------

SERVER_BUNDLES = {}  # (namespace uri, jid, device id) -> bundle XML
SERVER_DEVICE_LISTS = {}  # (namespace uri, jid) -> device list XML
MANAGERS = {}


class PeerSessionManager(omemo.SessionManager):
    """The XMPP hooks as dict look-ups.  `own_jid` and `outbox` are class attributes of a
    per-manager subclass: SessionManager.create() calls the hooks before it returns the instance."""

    own_jid = None
    outbox = None
    flavours = list(FLAVOURS.values())  # the backends loaded, in priority order
    storage = None

    async def _upload_bundle(self, bundle):
        fl = BY_URI[bundle.namespace]
        SERVER_BUNDLES[(fl.uri, bundle.bare_jid, bundle.device_id)] = to_xml(
            fl.etree.serialize_bundle(bundle), fl)

    async def _download_bundle(self, namespace, bare_jid, device_id):
        xml = SERVER_BUNDLES.get((namespace, bare_jid, device_id))
        if xml is None:
            raise omemo.BundleNotFound("no bundle for %s/%d in %s" % (bare_jid, device_id, namespace))
        try:
            return parse_bundle(BY_URI[namespace], xml, bare_jid, device_id)
        except Exception as exc:
            raise omemo.BundleDownloadFailed("bundle of %s/%d does not parse: %s: %s"
                                             % (bare_jid, device_id, type(exc).__name__, exc)) from exc

    async def _delete_bundle(self, namespace, device_id):
        SERVER_BUNDLES.pop((namespace, self.own_jid, device_id), None)

    async def _upload_device_list(self, namespace, device_list):
        fl = BY_URI[namespace]
        SERVER_DEVICE_LISTS[(namespace, self.own_jid)] = to_xml(
            fl.etree.serialize_device_list(device_list), fl)

    async def _download_device_list(self, namespace, bare_jid):
        xml = SERVER_DEVICE_LISTS.get((namespace, bare_jid))
        if xml is None:
            return {}
        return BY_URI[namespace].etree.parse_device_list(ET.fromstring(xml))

    async def _evaluate_custom_trust_level(self, device):
        # Blind trust, except what sm_set_trust marked "distrusted".
        if device.trust_level_name == "distrusted":
            return omemo.TrustLevel.DISTRUSTED
        return omemo.TrustLevel.TRUSTED

    async def _make_trust_decision(self, undecided, identifier):
        return None

    async def _send_message(self, message, bare_jid):
        fl = BY_URI[message.namespace]
        self.outbox.append({"ns": fl.short, "to_jid": bare_jid,
                            "encrypted_xml": to_xml(fl.etree.serialize_message(message), fl)})


def _manager(req):
    name = req["name"]
    if name not in MANAGERS:
        raise KeyError("no session manager named %r" % name)
    return MANAGERS[name]


async def _publish_label(sm, backend, storage, device_id, label):
    """SessionManager.set_own_label for the OMEMO 2 list only: with a label, python-omemo 2.1 asks
    every backend to sign it and Oldmemo.sign_own_label raises NotImplementedError (create() and
    set_own_label() both fail while oldmemo is loaded).  The signature is still twomemo's own."""
    await storage.store("/devices/%s/%d/label" % (sm.own_jid, device_id), label)
    device_list = await sm._download_device_list(backend.namespace, sm.own_jid)
    device_list[device_id] = omemo.SignedLabel(label=label, signature=await backend.sign_own_label(label))
    await sm._upload_device_list(backend.namespace, device_list)


@op("sm_new")
def op_sm_new(req):
    name, jid = req["name"], req["jid"]
    if name in MANAGERS:
        raise ValueError("session manager %r exists" % name)
    namespaces = [flavour(n) for n in req.get("namespaces") or FLAVOURS]
    cls = type("PeerSessionManager_%s" % name, (PeerSessionManager,),
               {"own_jid": jid, "outbox": [], "flavours": namespaces, "storage": MemoryStorage()})
    storage = cls.storage

    async def go():
        backends = [fl.backend(storage) for fl in namespaces]
        sm = await cls.create(backends, storage, jid, None, "undecided")
        await sm.after_history_sync()
        own, _ = await sm.get_own_device_information()
        if req.get("label") is not None:
            await _publish_label(sm, backends[0], storage, own.device_id, req["label"])
        return sm, own

    sm, own = run(go())
    MANAGERS[name] = sm
    return {"device_id": own.device_id, "identity_ed25519": own.identity_key.hex(),
            "fingerprint": "".join(omemo.SessionManager.format_identity_key(own.identity_key))}


@op("sm_publish")
def op_sm_publish(req):
    fl = flavour(req["ns"])
    device_id = _int(req["device_id"], "device_id")
    parse_bundle(fl, req["bundle_xml"], req["jid"], device_id)  # refuse what no manager could read
    SERVER_BUNDLES[(fl.uri, req["jid"], device_id)] = req["bundle_xml"]
    return {}


@op("sm_publish_devices")
def op_sm_publish_devices(req):
    fl = flavour(req["ns"])
    fl.etree.parse_device_list(ET.fromstring(req["device_list_xml"]))
    SERVER_DEVICE_LISTS[(fl.uri, req["jid"])] = req["device_list_xml"]
    return {}


@op("sm_published")
def op_sm_published(req):
    fl, jid = flavour(req["ns"]), req["jid"]
    bundles = {str(device_id): xml for (uri, j, device_id), xml in SERVER_BUNDLES.items()
               if uri == fl.uri and j == jid}
    return {"device_list_xml": SERVER_DEVICE_LISTS.get((fl.uri, jid)), "bundles": bundles}


@op("sm_encrypt")
def op_sm_encrypt(req):
    sm = _manager(req)
    to_jid = req["to_jid"]
    default = _bytes(req, "plaintext") if req.get("plaintext") is not None else None
    given = {flavour(k).uri: bytes.fromhex(v) for k, v in (req.get("plaintexts") or {}).items()}
    plaintexts = {fl.uri: given.get(fl.uri, default) for fl in sm.flavours}
    if any(v is None for v in plaintexts.values()):
        raise ValueError("give plaintext, or plaintexts for both namespaces")
    priority = None if req.get("priority") is None else [flavour(n).uri for n in req["priority"]]

    async def go():
        for jid in {to_jid, sm.own_jid}:
            for fl in sm.flavours:
                await sm.refresh_device_list(fl.uri, jid)
        return await sm.encrypt(frozenset([to_jid]), plaintexts, priority)

    messages, errors = run(go())
    return {
        "messages": {BY_URI[m.namespace].short: to_xml(BY_URI[m.namespace].etree.serialize_message(m),
                                                       BY_URI[m.namespace]) for m in messages},
        "errors": [{"ns": BY_URI[e.namespace].short, "jid": e.bare_jid, "device_id": e.device_id,
                    "error": "%s: %s" % (type(e.exception).__name__, e.exception)} for e in errors],
    }


@op("sm_decrypt")
def op_sm_decrypt(req):
    sm = _manager(req)
    fl = flavour(req["ns"])
    element = ET.fromstring(req["encrypted_xml"])

    async def go():
        if fl.short == "omemo2":
            message = fl.etree.parse_message(element, req["from_jid"])
        else:
            message = await fl.etree.parse_message(element, req["from_jid"], sm.own_jid, sm)
        return await sm.decrypt(message)

    plaintext, device, _ = run(go())
    return {"plaintext": _hex(plaintext), "sender_device": device.device_id}


@op("sm_set_trust")
def op_sm_set_trust(req):
    sm = _manager(req)
    trust = req["trust"]
    if trust not in ("trusted", "distrusted", "undecided"):
        raise ValueError("unknown trust %r" % trust)
    run(sm.set_trust(req["jid"], _bytes(req, "identity_ed25519", 32), trust))
    return {}


@op("sm_restart")
def op_sm_restart(req):
    """Shuts the manager down and creates it again over the same storage (a client restart)."""
    sm = _manager(req)
    cls = type(sm)

    async def go():
        await sm.shutdown()
        backends = [fl.backend(cls.storage) for fl in cls.flavours]
        again = await cls.create(backends, cls.storage, cls.own_jid, None, "undecided")
        own, _ = await again.get_own_device_information()
        return again, own

    MANAGERS[req["name"]], own = run(go())
    return {"device_id": own.device_id}


@op("sm_outbox")
def op_sm_outbox(req):
    sm = _manager(req)
    messages = list(sm.outbox)
    sm.outbox.clear()
    return {"messages": messages}


def _shutdown():
    for sm in MANAGERS.values():
        try:
            run(sm.shutdown())  # cancels the signed pre-key rotation task
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    LOOP.close()


import omemo_bench  # noqa: E402 - registers sm_bench, the timing op of the XMPP machine bench

omemo_bench.install(sys.modules[__name__])

if __name__ == "__main__":
    atexit.register(_shutdown)
    sys.exit(OPS.serve())
