"""What the OMEMO vector generators (omemo2/generate_twomemo.py, omemo03/generate_oldmemo.py)
share: scripted randomness for every source python-omemo draws from, in-memory storage, the
backend-level device operations python-omemo's SessionManager performs, the conversation
script both versions record, and the making, writing and checking of the files. A generator
describes its version in a `Generator` and calls `generate`. The python-omemo interop peer
(tests/peers/omemo_peer.py) imports `MemoryStorage` and `SenderLookup` from here.

python-omemo 2.1 (`omemo`, with its backends `twomemo` and `oldmemo`, on `x3dh`,
`doubleratchet` and `xeddsa`) makes every byte; this module only scripts its randomness and
writes down what went in and what came out.

Randomness: every draw is `SHA-256("<prefix>/<label>/<i>")` for i = 0, 1, ... joined and cut
to length, handed out by a `Tape` that knows, for each library call, which draw comes next
and checks that the library asks for exactly that (source and length). The sources are:
* `secrets.token_bytes(n)`: the identity seed (omemo.IdentityKeyPair), signed pre-key and
  pre-key privates, the X3DH ephemeral key (x3dh.BaseState), the XEdDSA nonce
  (xeddsa.ed25519_priv_sign), payload keys and IVs (twomemo/oldmemo).
* `secrets.choice(seq)`: the pre-key x3dh picks from a bundle.
* `DiffieHellmanRatchet._generate_priv()` (doubleratchet, otherwise pyca/cryptography's
  X25519PrivateKey.generate, i.e. OpenSSL's RNG): every ratchet key pair.
Anything else that reaches `os.urandom` or the rest of `secrets` raises. When python-omemo
checks olmo's vectors (`check_olmo_conversation`), the values are the draws olmo recorded,
found by label.
"""

import asyncio
import base64
import copy
import hashlib
import json
import os
import secrets
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from importlib.metadata import version
from typing import NamedTuple

import omemo
import x3dh
import xeddsa
from doubleratchet.recommended import diffie_hellman_ratchet_curve25519
from omemo.session import Initiation

LIBRARIES = ["omemo", "twomemo", "oldmemo", "x3dh", "doubleratchet", "xeddsa", "protobuf"]
ALICE = ("alice@example.org", 31415926)
BOB = ("bob@example.org", 27182818)
PRE_KEY_IDS = [1, 2, 3]  # each device's pre-keys
CHOSEN_PRE_KEY = 2  # the one of Bob's that Alice's key exchange uses
LOOP = asyncio.new_event_loop()


def run(coro):
    return LOOP.run_until_complete(coro)


def library_versions():
    return {name: version(name) for name in LIBRARIES}


def scripted_random(prefix):
    """rnd(label, n): n bytes of SHA-256("<prefix>/<label>/<i>") for i = 0, 1, ...."""

    def rnd(label, n):
        out, i = b"", 0
        while len(out) < n:
            out += hashlib.sha256(f"{prefix}/{label}/{i}".encode()).digest()
            i += 1
        return out[:n]

    return rnd


def write_json(directory, name, obj):
    with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def b64(data):
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------
# Scripted randomness
# --------------------------------------------------------------------------

TOKEN_BYTES = "secrets.token_bytes"
CHOICE = "secrets.choice"
RATCHET = "DiffieHellmanRatchet._generate_priv"


class Tape:
    """Hands every randomness source the value scripted for it, in the order the libraries draw.

    `with tape.draws(entries):` queues (label, source, length) entries for one library call and
    checks on exit that each was drawn, in order, by the source named and with that length.
    `value(label)` gives the bytes of a label; `log` lists every draw as made."""

    def __init__(self, prefix, given=None):
        """`given` ({label: bytes}) overrides the SHA-256 values: how olmo's draws are replayed."""
        self.prefix = prefix
        self.rnd = scripted_random(prefix)
        self.given = given or {}
        self.queue = deque()
        self.values = {}
        self.log = []

    def value(self, label):
        return self.values[label]

    def _next(self, source, length):
        if not self.queue:
            raise AssertionError(f"unscripted draw: {source}({length})")
        label, want_source, want_length, value = self.queue.popleft()
        if (want_source, want_length) != (source, length):
            raise AssertionError(
                f"{label}: expected {want_source}({want_length}), got {source}({length})")
        self.log.append({"label": label, "source": source, "length": len(value),
                         "hex": value.hex()})
        return value

    @contextmanager
    def draws(self, *entries):
        for label, source, length in entries:
            assert label not in self.values, f"label {label} drawn twice"
            if source == CHOICE:  # `length` is the element to pick
                value, length = length, 0
            elif label in self.given:
                value = self.given[label]
                assert len(value) == length, label
            else:
                value = self.rnd(label, length)
            self.values[label] = value
            self.queue.append((label, source, length, value))
        yield
        if self.queue:
            raise AssertionError(f"not drawn: {[e[0] for e in self.queue]}")

    # The patched sources.

    def token_bytes(self, n=None):
        return self._next(TOKEN_BYTES, n)

    def choice(self, seq):
        value = self._next(CHOICE, 0)
        if value not in list(seq):
            raise AssertionError("the scripted choice is not among the options")
        return value

    def ratchet_priv(self):
        return self._next(RATCHET, 32)

    def install(self):
        def refuse(*args, **kwargs):
            raise AssertionError("unscripted randomness (os.urandom / secrets)")

        secrets.token_bytes = self.token_bytes
        secrets.choice = self.choice
        for name in ["token_hex", "token_urlsafe", "randbelow", "randbits"]:
            setattr(secrets, name, refuse)
        os.urandom = refuse
        diffie_hellman_ratchet_curve25519.DiffieHellmanRatchet._generate_priv = staticmethod(
            self.ratchet_priv)


def token(label, n):
    return (label, TOKEN_BYTES, n)


def ratchet(label):
    return (label, RATCHET, 32)


def choice(label, element):
    """A secrets.choice that must pick `element` from the sequence it is given."""
    return (label, CHOICE, element)


# --------------------------------------------------------------------------
# Storage, XML
# --------------------------------------------------------------------------


class MemoryStorage(omemo.Storage):
    """omemo.Storage over a dict; values round-trip through JSON like a real store."""

    def __init__(self):
        super().__init__()
        self.data = {}

    async def _load(self, key):
        if key in self.data:
            return omemo.Just(json.loads(self.data[key]))
        return omemo.Nothing()

    async def _store(self, key, value):
        self.data[key] = json.dumps(value)

    async def _delete(self, key):
        self.data.pop(key, None)


def to_xml(element, uri):
    """The element as `<tag xmlns="ns">…`, the way ElementTree writes it once the qualified names
    are stripped (its own writer would add `ns0:` prefixes)."""
    element = copy.deepcopy(element)
    qualifier = "{%s}" % uri
    for node in element.iter():
        assert node.tag.startswith(qualifier), node.tag
        node.tag = node.tag[len(qualifier):]
    element.set("xmlns", uri)
    return ET.tostring(element, encoding="unicode")


# --------------------------------------------------------------------------
# Devices and the conversation
# --------------------------------------------------------------------------


class Flavour:
    """One OMEMO version: its backend module, etree module and the naming of its elements."""

    def __init__(self, short, impl, etree, backend, pre_key_tag, pre_key_id_attr, signature_tag):
        self.short = short
        self.signature_tag = signature_tag
        self.impl = impl
        self.etree = etree
        self.backend = backend
        self.uri = impl.NAMESPACE
        self.pre_key_tag = pre_key_tag
        self.pre_key_id_attr = pre_key_id_attr

    @property
    def is_03(self):
        return self.short == "omemo03"

    def key_length(self):
        return self.impl.PlainKeyMaterialImpl.KEY_LENGTH


class PeerDevice:
    """One python-omemo device on one backend, over its own in-memory storage."""

    def __init__(self, fl, tape, name, jid, device_id):
        self.fl, self.tape, self.name = fl, tape, name
        self.jid, self.device_id = jid, device_id
        self.storage = MemoryStorage()
        self.backend = fl.backend(self.storage)
        self.peer_identities = {}  # (jid, device id) -> Ed25519 identity from a bundle

    def create(self, pre_key_ids):
        """The backend makes its identity, signed pre-key 1 and `pre_key_ids` pre-keys.

        python-omemo numbers a batch of pre-keys in frozenset order, which depends on
        PYTHONHASHSEED; the generator writes the backend's public-key -> id map (the storage
        entries the backend keeps for this) first, so the i-th key drawn gets pre_key_ids[i]."""
        n, fl = self.name, self.fl
        entries = [token(f"{n}/identity seed", 32),
                   token(f"{n}/signed pre-key 1 private", 32),
                   token(f"{n}/signed pre-key 1 signature nonce", 64)]
        entries += [token(f"{n}/pre-key {i} private", 32) for i in pre_key_ids]
        with self.tape.draws(*entries):
            run(self.backend.generate_pre_keys(len(pre_key_ids)))
        self.pre_keys = {i: self.tape.value(f"{n}/pre-key {i} private") for i in pre_key_ids}
        ids = {b64(xeddsa.priv_to_curve25519_pub(priv)): i for i, priv in self.pre_keys.items()}

        async def store_ids():
            await self.storage.store(f"/{fl.uri}/pre_key_ids", ids)
            await self.storage.store(f"/{fl.uri}/pre_key_id_counter", max(pre_key_ids, default=0))

        run(store_ids())
        self.bundle = run(self.backend.get_bundle(self.jid, self.device_id))
        assert self.bundle.signed_pre_key_id == 1
        assert {i: pub for pub, i in self.bundle.pre_key_ids.items()} == {
            i: xeddsa.priv_to_curve25519_pub(p) for i, p in self.pre_keys.items()}

    def bundle_xml(self):
        """The bundle element, its pre-keys sorted by id (serialize_bundle writes them in set
        order)."""
        element = self.fl.etree.serialize_bundle(self.bundle)
        tag = "{%s}%s" % (self.fl.uri, self.fl.pre_key_tag)
        parent = next(e for e in element.iter() if e.find(tag) is not None)
        keys = parent.findall(tag)
        for key in keys:
            parent.remove(key)
        for key in sorted(keys, key=lambda k: int(k.get(self.fl.pre_key_id_attr))):
            parent.append(key)
        return to_xml(element, self.fl.uri)

    def describe(self):
        n = self.name
        seed = self.tape.value(f"{n}/identity seed")
        priv = xeddsa.seed_to_priv(seed)
        ed = xeddsa.priv_to_ed25519_pub(priv)
        spk_priv = self.tape.value(f"{n}/signed pre-key 1 private")
        xml = self.bundle_xml()
        signature = self.bundle.bundle.signed_pre_key_sig
        if self.fl.is_03:  # oldmemo's bundle carries the identity's sign bit in the signature
            signature = signature[:63] + bytes([signature[63] | (ed[31] & 0x80)])
        in_xml = ET.fromstring(xml).find("{%s}%s" % (self.fl.uri, self.fl.signature_tag))
        assert base64.b64decode(in_xml.text) == signature
        return {
            "jid": self.jid,
            "device_id": self.device_id,
            "identity_seed": seed.hex(),
            "identity_private": priv.hex(),
            "identity_ed25519": ed.hex(),
            "identity_curve25519": xeddsa.priv_to_curve25519_pub(priv).hex(),
            "signed_pre_key": {
                "id": 1,
                "private": spk_priv.hex(),
                "public": xeddsa.priv_to_curve25519_pub(spk_priv).hex(),
                "signature_nonce": self.tape.value(f"{n}/signed pre-key 1 signature nonce").hex(),
                "signature": signature.hex(),
            },
            "pre_keys": [{"id": i, "private": p.hex(),
                          "public": xeddsa.priv_to_curve25519_pub(p).hex()}
                         for i, p in sorted(self.pre_keys.items())],
            "bundle_xml": xml,
        }

    # ---- the backend-level operations SessionManager performs around a message

    def learn_bundle(self, xml, jid, device_id):
        bundle = self.fl.etree.parse_bundle(ET.fromstring(xml), jid, device_id)
        self.peer_identities[(jid, device_id)] = bundle.identity_key
        return bundle

    async def encrypt(self, peer, plaintext, peer_bundle):
        """SessionManager.encrypt for one recipient device: the payload, then the session (built
        from the bundle if there is none), then the message element."""
        backend, fl = self.backend, self.fl
        if plaintext is None:
            content, pkm = await backend.encrypt_empty()
        else:
            content, pkm = await backend.encrypt_plaintext(plaintext)
        session = await backend.load_session(peer.jid, peer.device_id)
        if session is None:
            session, ekm = await backend.build_session_active(peer.jid, peer.device_id,
                                                              peer_bundle, pkm)
        else:
            ekm = await backend.encrypt_key_material(session, pkm)
        kex = None
        if session.initiation is Initiation.ACTIVE and not session.confirmed:
            kex = session.key_exchange
        await backend.store_session(session)
        message = omemo.Message(fl.uri, self.jid, self.device_id, content, frozenset([(ekm, kex)]))
        return content, pkm, ekm, kex, to_xml(fl.etree.serialize_message(message), fl.uri)

    async def decrypt(self, sender, xml):
        """SessionManager.decrypt: parse, find our key, reuse or build the session, decrypt the
        key material and the payload, store the session. (Pre-key hiding and pool refills are
        left out: they draw fresh pre-keys, which this conversation never uses.)"""
        backend, fl = self.backend, self.fl
        element = ET.fromstring(xml)
        if fl.is_03:
            lookup = SenderLookup(self.peer_identities)
            message = await fl.etree.parse_message(element, sender.jid, self.jid, lookup)
        else:
            message = fl.etree.parse_message(element, sender.jid)
        [(ekm, kex)] = [k for k in message.keys
                        if k[0].bare_jid == self.jid and k[0].device_id == self.device_id]
        session = await backend.load_session(sender.jid, message.device_id)
        if kex is not None and session is not None and not (
                session.initiation is Initiation.PASSIVE
                and session.key_exchange.builds_same_session(kex)):
            session = None
        if kex is not None and session is None:
            session, pkm = await backend.build_session_passive(sender.jid, message.device_id,
                                                               kex, ekm)
        else:
            pkm = await backend.decrypt_key_material(session, ekm)
        plaintext = None
        if not message.content.empty:
            plaintext = await backend.decrypt_plaintext(message.content, pkm)
        await backend.store_session(session)
        return pkm, plaintext, session


class SenderLookup:
    """What oldmemo.etree.parse_message asks the SessionManager for: the sender's Ed25519
    identity (a 0.3 key exchange carries only the Montgomery form, without the sign bit)."""

    def __init__(self, identities):
        self.identities = identities

    async def get_device_information(self, bare_jid):
        return frozenset(
            omemo.DeviceInformation(namespaces=frozenset(), active=frozenset(), bare_jid=jid,
                                    device_id=device_id, identity_key=ik, trust_level_name="",
                                    label=None)
            for (jid, device_id), ik in self.identities.items() if jid == bare_jid)

    async def refresh_device_list(self, namespace, bare_jid):
        return None


class Recorder:
    """Wraps StateImpl's X3DH calls to record the shared secret and associated data each side
    computed."""

    def __init__(self, state_class):
        self.results = []
        active = state_class.get_shared_secret_active
        passive = state_class.get_shared_secret_passive
        results = self.results

        async def get_shared_secret_active(self, *args, **kwargs):
            out = await active(self, *args, **kwargs)
            results.append(("active", out[0], out[1], out[2]))
            return out

        async def get_shared_secret_passive(self, *args, **kwargs):
            out = await passive(self, *args, **kwargs)
            results.append(("passive", out[0], out[1], out[2]))
            return out

        state_class.get_shared_secret_active = get_shared_secret_active
        state_class.get_shared_secret_passive = get_shared_secret_passive


def key_element(xml, uri):
    """The one <key> of an <encrypted> element: (rid, kex flag, raw bytes)."""
    element = ET.fromstring(xml)
    [key] = list(element.iter("{%s}key" % uri))
    flag = key.get("kex") or key.get("prekey")
    return int(key.get("rid")), flag == "true", base64.b64decode(key.text)


class Side:
    """What the generator tracks per device: its current ratchet key and the peer's."""

    def __init__(self, device):
        self.device = device
        self.ratchet_count = 0
        self.ratchet_label = None  # label of the current ratchet private key
        self.ratchet_used = False  # a message was sent with it
        self.peer_ratchet_pub = None

    def next_ratchet_label(self):
        self.ratchet_count += 1
        return f"{self.device.name}/ratchet key {self.ratchet_count}"


class Generator(NamedTuple):
    """What a generator tells the shared code about its version."""

    fl: Flavour
    title: str  # "OMEMO 2", for the files' descriptions
    prefix: str  # of every label's SHA-256 input: "<prefix>/<label>/<i>"
    # [(sender name, plaintext bytes or None for an empty message)], the first from alice
    script: list
    # (number, empty) -> the draws of encrypting message `number`'s payload
    message_draws: Callable
    # (number, empty) -> the draws of parsing its element (before any ratchet draw)
    receive_draws: Callable
    parse_key: Callable  # (kex, data) -> a dict of the <key>'s fields
    describe_payload: Callable  # (content, pkm, empty) -> a dict of the payload, or None
    payloads: list  # [(name, plaintext bytes)] for payloads.json
    payload_draws: Callable  # (name) -> the draws of encrypting that payload


def conversation(gen, tape, alice, bob, recorder, chosen_pre_key_public, deliver=None):
    """Runs `gen.script` between two PeerDevices over XML, queuing each call's draws on the tape,
    alice's key exchange on bob's pre-key `chosen_pre_key_public`, and returns the session record
    and the message records; `recorder` is the Recorder of their StateImpl. `deliver(number,
    xml)` gives the element the receiver gets instead of the sender's own (olmo's, when checking
    its vectors)."""
    fl = gen.fl
    sides = {"alice": Side(alice), "bob": Side(bob)}
    bob_bundle_xml = bob.bundle_xml()
    alice_bundle_xml = alice.bundle_xml()
    # Each side knows the other's bundle (oldmemo needs the identity's sign bit from it).
    alice_bundle = alice.learn_bundle(bob_bundle_xml, bob.jid, bob.device_id)
    bob.learn_bundle(alice_bundle_xml, alice.jid, alice.device_id)
    # The initiator's first peer ratchet key is the signed pre-key.
    sides["alice"].peer_ratchet_pub = alice_bundle.bundle.signed_pre_key
    session = None
    messages = []
    for number, (sender_name, plaintext) in enumerate(gen.script, start=1):
        receiver_name = "bob" if sender_name == "alice" else "alice"
        sender, receiver = sides[sender_name], sides[receiver_name]
        empty = plaintext is None
        entries = list(gen.message_draws(number, empty))
        first = number == 1
        if first:
            assert sender_name == "alice"
            base_label = "alice/base key"
            sender.ratchet_label = sender.next_ratchet_label()
            entries += [choice("alice/pre-key choice", chosen_pre_key_public),
                        token(base_label, 32), ratchet(sender.ratchet_label)]
        with tape.draws(*entries):
            content, pkm, ekm, kex, xml = run(sender.device.encrypt(
                receiver.device, plaintext, alice_bundle if first else None))
        rid, kex_flag, data = key_element(xml, fl.uri)
        assert rid == receiver.device.device_id and kex_flag == (kex is not None)
        parsed = gen.parse_key(kex_flag, data)
        ratchet_priv = tape.value(sender.ratchet_label)
        assert xeddsa.priv_to_curve25519_pub(ratchet_priv) == parsed["ratchet_public"]
        new_key = not sender.ratchet_used
        sender.ratchet_used = True

        # The receiver draws its next ratchet key on a new session or a new peer ratchet key.
        receive_entries = list(gen.receive_draws(number, empty))
        if parsed["ratchet_public"] != receiver.peer_ratchet_pub:
            receiver.ratchet_label = receiver.next_ratchet_label()
            receiver.ratchet_used = False
            receive_entries.append(ratchet(receiver.ratchet_label))
        receiver.peer_ratchet_pub = parsed["ratchet_public"]
        delivered = xml if deliver is None else deliver(number, xml)
        with tape.draws(*receive_entries):
            received_pkm, received_plaintext, _ = run(receiver.device.decrypt(sender.device,
                                                                             delivered))
        key_material = pkm.key + pkm.auth_tag
        assert received_pkm.key + received_pkm.auth_tag == key_material
        assert received_plaintext == plaintext

        if first:
            [active, passive] = recorder.results
            assert active[0] == "active" and passive[0] == "passive"
            assert active[1] == passive[1] and active[2] == passive[2]
            base_priv = tape.value(base_label)
            header = active[3]
            assert header.ephemeral_key == xeddsa.priv_to_curve25519_pub(base_priv)
            session = {
                "initiator": "alice",
                "responder": "bob",
                "pre_key_id": parsed["key_exchange"]["pre_key_id"],
                "signed_pre_key_id": parsed["key_exchange"]["signed_pre_key_id"],
                "base_key_private": base_priv.hex(),
                "base_key_public": header.ephemeral_key.hex(),
                "shared_secret": active[1].hex(),
                "associated_data": active[2].hex(),
            }
        draws_during = [e["label"] for e in tape.log if e["label"] in
                        {label for label, *_ in entries}]
        record = {
            "number": number,
            "from": sender_name,
            "to": receiver_name,
            "type": "empty" if empty else "message",
            "plaintext": None if empty else plaintext.decode("utf-8"),
            "plaintext_hex": None if empty else plaintext.hex(),
            "payload": gen.describe_payload(content, pkm, empty),
            "key_material": key_material.hex(),
            "ratchet_private": ratchet_priv.hex(),
            "ratchet_public": parsed["ratchet_public"].hex(),
            "new_ratchet_key": new_key,
            **{k: (v.hex() if isinstance(v, bytes) else v) for k, v in parsed.items()
               if k not in ("ratchet_public", "key_exchange")},
            "kex": kex_flag,
            "key_exchange": parsed.get("key_exchange"),
            "key": data.hex(),
            "encrypted_xml": xml,
            "sender_draws": draws_during,
            "receiver_draws": [label for label, *_ in receive_entries],
        }
        messages.append(record)
    return session, messages


def run_conversation(gen, tape, deliver=None):
    """alice (ALICE) and bob (BOB), each with pre-keys PRE_KEY_IDS, run `gen.script`, alice's key
    exchange on bob's pre-key CHOSEN_PRE_KEY: (alice, bob, session record, message records)."""
    recorder = Recorder(gen.fl.impl.StateImpl)
    alice = PeerDevice(gen.fl, tape, "alice", *ALICE)
    bob = PeerDevice(gen.fl, tape, "bob", *BOB)
    alice.create(PRE_KEY_IDS)
    bob.create(PRE_KEY_IDS)
    chosen = next(pub for pub, i in bob.bundle.pre_key_ids.items() if i == CHOSEN_PRE_KEY)
    session, messages = conversation(gen, tape, alice, bob, recorder, chosen, deliver)
    assert session["pre_key_id"] == CHOSEN_PRE_KEY
    return alice, bob, session, messages


def payload_vectors(gen, tape, backend):
    """Each of `gen.payloads` encrypted by the backend, and decrypted back."""
    out = []
    for name, plaintext in gen.payloads:
        with tape.draws(*gen.payload_draws(name)):
            content, pkm = run(backend.encrypt_plaintext(plaintext))
        # decrypt_plaintext refuses an empty content: oldmemo's for an empty plaintext.
        if plaintext or not content.empty:
            assert run(backend.decrypt_plaintext(content, pkm)) == plaintext
        out.append({"name": name, "plaintext_hex": plaintext.hex(),
                    **gen.describe_payload(content, pkm, False),
                    "key_material": (pkm.key + pkm.auth_tag).hex()})
    return out


def generate(gen, generator_file):
    """A generator's work: writes conversation.json and payloads.json next to `generator_file`,
    then checks olmo_conversation.json there with python-omemo."""
    here = os.path.dirname(os.path.abspath(generator_file))
    generator = os.path.relpath(os.path.abspath(generator_file),
                                os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    library = gen.fl.impl.__name__.split(".")[0]
    tape = Tape(gen.prefix)
    tape.install()
    alice, bob, session, messages = run_conversation(gen, tape)
    vectors = {
        "description": f"An {gen.title} conversation made by python-omemo ({library}) with "
                       "scripted randomness. See README.md.",
        "generator": generator,
        "libraries": library_versions(),
        "namespace": gen.fl.uri,
        "random": f'SHA-256("{gen.prefix}/<label>/<i>") for i = 0, 1, ... joined and cut to '
                  "length",
        "devices": {"alice": alice.describe(), "bob": bob.describe()},
        "session": session,
        "messages": messages,
        "random_draws": list(tape.log),
    }
    # Payload vectors, on a third device's backend (payload encryption needs no session).
    carol = PeerDevice(gen.fl, Tape(gen.prefix + "-payload"), "carol", "carol@example.org", 1)
    carol.tape.install()
    payloads = {
        "description": f"{gen.title} payload encryption by {library}'s encrypt_plaintext. "
                       "See README.md.",
        "generator": generator,
        "libraries": library_versions(),
        "random": f'SHA-256("{gen.prefix}-payload/<label>/<i>") for i = 0, 1, ...',
        "payloads": payload_vectors(gen, carol.tape, carol.backend),
    }
    write_json(here, "conversation.json", vectors)
    write_json(here, "payloads.json", payloads)
    print(f"wrote conversation.json ({len(messages)} messages) and payloads.json "
          f"({len(payloads['payloads'])} payloads)")
    check_olmo_conversation(here, gen)


# --------------------------------------------------------------------------
# Protobuf, read field by field (exact bytes, no re-encoding)
# --------------------------------------------------------------------------


def _varint(data, i):
    value, shift = 0, 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def protobuf_fields(data):
    """{field number: value} of a flat protobuf message (varints and length-delimited only),
    checking that no field repeats."""
    fields, i = {}, 0
    while i < len(data):
        tag, i = _varint(data, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            length, i = _varint(data, i)
            value, i = data[i:i + length], i + length
        else:
            raise ValueError(f"wire type {wire}")
        assert number not in fields, f"field {number} twice"
        fields[number] = value
    assert i == len(data)
    return fields


CONVERSATION = [
    # (sender, body); None is an empty message.
    ("alice", "Hi Bob, this is Alice."),
    ("alice", "Are you there?"),
    ("bob", "Hi Alice! Got both."),
    ("alice", "Great, the ratchet stepped."),
    ("alice", "Sending one more."),
    ("bob", "Grüße zurück"),
    ("alice", None),
]


# --------------------------------------------------------------------------
# Checking olmo's vectors with python-omemo
# --------------------------------------------------------------------------


def with_registration_id(kex, registration_id):
    """oldmemo's key exchange with `registrationId` (field 5) inserted before its last field,
    `signedPreKeyId` (6, one byte of value here): what olmo's Device writes."""
    assert kex[-2] == 0x30 and kex[-1] < 0x80
    varint, value = b"", registration_id
    while value >= 0x80:
        varint += bytes([value & 0x7F | 0x80])
        value >>= 7
    return kex[:-2] + b"\x28" + varint + bytes([value]) + kex[-2:]


def check_olmo_conversation(directory, gen):
    """Replays olmo_conversation.json (made by olmo, see tests/omemo_vectors) in python-omemo:
    the same draws by label, olmo's <encrypted> elements delivered to python's receivers (so
    python decrypts olmo's bytes), and python's own output compared with olmo's, field by field.
    Draws olmo never made (python's signature nonce for OMEMO 2, the ratchet key python draws
    on the last receipt, oldmemo's placeholder IV) are `SHA-256("<prefix>-check/<label>/<i>")`."""
    fl, prefix = gen.fl, gen.prefix + "-check"
    path = os.path.join(directory, "olmo_conversation.json")
    if not os.path.exists(path):
        print("no olmo_conversation.json yet: not checked")
        return
    with open(path, encoding="utf-8") as f:
        olmo = json.load(f)
    given = {d["label"]: bytes.fromhex(d["hex"]) for d in olmo["random_draws"]}
    tape = Tape(prefix, given)
    tape.install()
    recorded = olmo["messages"]
    alice, bob, session, messages = run_conversation(
        gen, tape, deliver=lambda number, xml: recorded[number - 1]["encrypted_xml"])

    for name, device in (("alice", alice), ("bob", bob)):
        ours, theirs = device.describe(), olmo["devices"][name]
        for field in ["jid", "device_id", "identity_seed", "identity_private", "identity_ed25519",
                      "identity_curve25519", "pre_keys"]:
            assert ours[field] == theirs[field], (name, field)
        for field in ["id", "private", "public"]:
            assert ours["signed_pre_key"][field] == theirs["signed_pre_key"][field], (name, field)
        # olmo's bundle parses (schema-validated) in python-omemo and its signature verifies.
        bundle = fl.etree.parse_bundle(ET.fromstring(theirs["bundle_xml"]), theirs["jid"],
                                       theirs["device_id"]).bundle
        encoded = fl.impl.StateImpl._encode_public_key(x3dh.IdentityKeyFormat.CURVE_25519,
                                                       bundle.signed_pre_key)
        assert xeddsa.ed25519_verify(bundle.signed_pre_key_sig, bundle.identity_key, encoded), name
        assert bundle.identity_key.hex() == theirs["identity_ed25519"], name
    for field in ["pre_key_id", "signed_pre_key_id", "base_key_private", "base_key_public",
                  "shared_secret", "associated_data"]:
        assert session[field] == olmo["session"][field], field

    for ours, theirs in zip(messages, recorded, strict=True):
        label = f"olmo message {ours['number']}"
        for field in ["from", "to", "type", "plaintext", "plaintext_hex", "payload",
                      "key_material", "ratchet_private", "ratchet_public", "new_ratchet_key",
                      "n", "pn", "authenticated_message", "message", "mac", "ciphertext", "kex"]:
            assert ours[field] == theirs[field], (label, field)
        key = bytes.fromhex(ours["key"])
        registration = (theirs["key_exchange"] or {}).get("registration_id")
        if registration is not None:
            key = with_registration_id(key, registration)
        assert key.hex() == theirs["key"], label
        ours_xml, theirs_xml = ET.fromstring(ours["encrypted_xml"]), ET.fromstring(
            theirs["encrypted_xml"])
        assert key_element(theirs["encrypted_xml"], fl.uri)[2] == key, label
        for tag in ["header", "iv", "payload"]:
            a, b_ = (x.find(".//{%s}%s" % (fl.uri, tag)) for x in (ours_xml, theirs_xml))
            assert (a is None) == (b_ is None), (label, tag)
            if a is not None and tag != "header":
                assert a.text == b_.text, (label, tag)
            elif a is not None:
                assert a.attrib == b_.attrib, (label, tag)
    print(f"olmo_conversation.json: python-omemo made the same {len(messages)} messages from "
          "olmo's draws and decrypted olmo's")
