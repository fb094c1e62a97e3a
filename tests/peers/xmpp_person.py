#!/usr/bin/env python3
"""XMPP persons for the live bot tests (clients/xmpp/tests): slixmpp clients on a real server,
each one device of an account, speaking one OMEMO version:

- "omemo03": slixmpp-omemo's XEP-0384 plugin with python-omemo's oldmemo backend only. (Its
  OMEMO 2 decryption raises "SCE not supported yet", so it must not advertise OMEMO 2: it then
  looks like Conversations, which speaks only 0.3.)
- "omemo2": python-omemo's SessionManager with the twomemo backend, driven by our own glue below:
  PEP through slixmpp's XEP-0060 plugin, SCE envelopes (XEP-0420) built and read here.

Protocol as in peer_protocol.py (one JSON request per line, one response line each):
  login {name, jid, password, host, port, ns}  -> {device_id}    (online, OMEMO published)
  send {name, to, body}                        -> {seconds}      (encrypted to every device)
  wait_for {name, from, count, timeout_s}      -> {bodies, seconds_to_last}
        (until `count` bodies from the bare JID `from` decrypted since login; `seconds_to_last`
        is from the last `send` to the arrival of the last body)
  logout {name}                                -> {}
Device lists are read fresh before each send; trust is blind (BTBV). Bodies are never logged.
"""

import asyncio
import logging
import os
import re
import sys
import threading
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import omemo
import oldmemo
import oldmemo.etree
import slixmpp
import slixmpp_omemo
import twomemo
import twomemo.etree
from slixmpp.plugins import register_plugin
from slixmpp.plugins.xep_0004 import Form

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test-vectors"))
from omemo_tools import MemoryStorage  # noqa: E402
from peer_protocol import Ops  # noqa: E402

logging.basicConfig(level=getattr(logging, os.environ.get("PERSON_LOG", "ERROR")), stream=sys.stderr)
OPS = Ops()
LOOP = asyncio.new_event_loop()
threading.Thread(target=LOOP.run_forever, daemon=True).start()
PERSONS = {}

TWOMEMO_DEVICES = "urn:xmpp:omemo:2:devices"
TWOMEMO_BUNDLES = "urn:xmpp:omemo:2:bundles"
SCE = "urn:xmpp:sce:1"


def run(coro, timeout=60):
    return asyncio.run_coroutine_threadsafe(coro, LOOP).result(timeout)


# ---- OMEMO 0.3: slixmpp-omemo, oldmemo only -------------------------------------------------

class OldmemoPlugin(slixmpp_omemo.XEP_0384):
    """slixmpp-omemo's plugin with blind trust and storage in memory."""

    name = "xep_0384"
    description = "OMEMO 0.3 (oldmemo only)"
    dependencies = slixmpp_omemo.XEP_0384.dependencies
    default_config = {"fallback_message": "This message is OMEMO encrypted."}

    def plugin_init(self):
        self._storage = MemoryStorage()
        super().plugin_init()

    @property
    def storage(self):
        return self._storage

    @property
    def _btbv_enabled(self):
        return True

    async def _devices_blindly_trusted(self, blindly_trusted, identifier):
        pass

    async def _prompt_manual_trust(self, manually_trusted, identifier):
        raise RuntimeError("no manual trust in tests")


async def _oldmemo_only(xmpp, xep_0384, storage, legacy_storage, **_):
    """The plugin's session manager with the oldmemo backend alone (the plugin loads twomemo too)."""
    plugin_class = slixmpp_omemo.xep_0384._make_session_manager(xmpp, xep_0384)

    class OldmemoOnly(plugin_class):
        # The plugin hands OMEMO 2 device lists over too; without the backend they are no news.
        async def update_device_list(self, namespace, bare_jid, device_list):
            if namespace == oldmemo.oldmemo.NAMESPACE:
                await super().update_device_list(namespace, bare_jid, device_list)

        async def refresh_device_list(self, namespace, bare_jid):
            if namespace == oldmemo.oldmemo.NAMESPACE:
                await super().refresh_device_list(namespace, bare_jid)

    sm = await OldmemoOnly.create([oldmemo.Oldmemo(storage)], storage, xmpp.boundjid.bare,
                          initial_own_label=None,
                                  undecided_trust_level_name=slixmpp_omemo.TrustLevel.UNDECIDED.value)
    await sm.after_history_sync()
    return sm


slixmpp_omemo.xep_0384._prepare = _oldmemo_only
register_plugin(OldmemoPlugin)


# ---- OMEMO 2: python-omemo's SessionManager with twomemo, our glue ----------------------------

def options_form(fields):
    form = Form()
    form["type"] = "submit"
    form.add_field(var="FORM_TYPE", ftype="hidden",
                   value="http://jabber.org/protocol/pubsub#publish-options")
    for key, value in fields.items():
        form.add_field(var=key, value=value)
    return form


def twomemo_manager(xmpp):
    """A SessionManager class whose XMPP hooks go through `xmpp` (a slixmpp client)."""
    pubsub = xmpp.plugin["xep_0060"]
    own = xmpp.boundjid.bare

    class TwomemoManager(omemo.SessionManager):
        async def _upload_bundle(self, bundle):
            item = twomemo.etree.serialize_bundle(bundle)
            await pubsub.publish(slixmpp.JID(own), TWOMEMO_BUNDLES, str(bundle.device_id), item,
                                 options_form({"pubsub#access_model": "open",
                                               "pubsub#max_items": "max"}))

        async def _download_bundle(self, namespace, bare_jid, device_id):
            try:
                iq = await pubsub.get_items(slixmpp.JID(bare_jid), TWOMEMO_BUNDLES,
                                            item_ids=[str(device_id)])
                element = next(iter(iq["pubsub"]["items"]["item"].xml))
            except Exception as exc:
                raise omemo.BundleDownloadFailed("%s/%d: %s" % (bare_jid, device_id, exc)) from exc
            return twomemo.etree.parse_bundle(element, bare_jid, device_id)

        async def _delete_bundle(self, namespace, device_id):
            await pubsub.retract(slixmpp.JID(own), TWOMEMO_BUNDLES, str(device_id), notify=False)

        async def _upload_device_list(self, namespace, device_list):
            item = twomemo.etree.serialize_device_list(device_list)
            await pubsub.publish(slixmpp.JID(own), TWOMEMO_DEVICES, "current", item,
                                 options_form({"pubsub#access_model": "open"}))

        async def _download_device_list(self, namespace, bare_jid):
            try:
                iq = await pubsub.get_items(slixmpp.JID(bare_jid), TWOMEMO_DEVICES, max_items=1)
            except slixmpp.exceptions.IqError as exc:
                if exc.condition == "item-not-found":
                    return {}
                raise omemo.DeviceListDownloadFailed(str(exc)) from exc
            items = list(iq["pubsub"]["items"])
            if not items:
                return {}
            return twomemo.etree.parse_device_list(next(iter(items[0].xml)))

        async def _evaluate_custom_trust_level(self, device):
            return omemo.TrustLevel.TRUSTED  # blind trust

        async def _make_trust_decision(self, undecided, identifier):
            pass

        async def _send_message(self, message, bare_jid):
            xmpp.send_omemo2(bare_jid, twomemo.etree.serialize_message(message))

    return TwomemoManager


def sce_envelope(body, sender, recipient):
    return ("<envelope xmlns='%s'><content><body xmlns='jabber:client'>%s</body></content>"
            "<rpad>%s</rpad><from jid='%s'/><to jid='%s'/></envelope>"
            % (SCE, escape(body), "x" * (len(body) % 7 + 1), sender, recipient)).encode()


def sce_body(plaintext):
    envelope = ET.fromstring(plaintext)
    body = envelope.find("{%s}content/{jabber:client}body" % SCE)
    return None if body is None else body.text or ""


# ---- the person ---------------------------------------------------------------------------

class Person(slixmpp.ClientXMPP):
    def __init__(self, jid, password, ns):
        super().__init__(jid, password,
                         plugin_config={"feature_mechanisms": {"unencrypted_scram": True}})
        self.ns = ns
        self.enable_plaintext = True
        self.enable_starttls = False
        self.enable_direct_tls = False
        for plugin in ("xep_0004", "xep_0030", "xep_0060", "xep_0163", "xep_0280", "xep_0334"):
            self.register_plugin(plugin)
        if ns == "omemo03":
            self.register_plugin("xep_0384", module=sys.modules[__name__])
        self.sm = None
        self.bodies = []  # (from bare JID, body, arrival time)
        self.last_send = None
        self.online = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("carbon_received", lambda m: self.on_message(m["carbon_received"]))

    async def on_start(self, _):
        self.send_presence()
        await self.plugin["xep_0280"].enable()
        if self.ns == "omemo03":
            self.sm = await self.plugin["xep_0384"].get_session_manager()
        else:
            storage = MemoryStorage()
            self.sm = await twomemo_manager(self).create(
                [twomemo.Twomemo(storage)], storage, self.boundjid.bare, None, "undecided")
            await self.sm.after_history_sync()
        self.online.set()

    def send_omemo2(self, bare_jid, element):
        message = self.make_message(mto=bare_jid, mtype="chat",
                                    mbody="This message is OMEMO encrypted.")
        message.append(element)
        message.enable("store")
        message.send()

    async def on_message(self, message):
        if message["type"] not in ("chat", "normal") or self.sm is None:
            return
        sender = message["from"].bare
        try:
            if self.ns == "omemo03":
                if not self.plugin["xep_0384"].is_encrypted(message):
                    return
                decrypted, _ = await self.plugin["xep_0384"].decrypt_message(message)
                body = decrypted["body"] or None
            else:
                element = message.xml.find("{%s}encrypted" % twomemo.twomemo.NAMESPACE)
                if element is None:
                    return
                parsed = twomemo.etree.parse_message(element, sender)
                plaintext, _, _ = await self.sm.decrypt(parsed)
                body = None if plaintext is None else sce_body(plaintext)
        except Exception as exc:  # noqa: BLE001 - a message we cannot read is reported, not fatal
            print("person %s: undecryptable message from %s: %s" % (self.boundjid, sender,
                                                                   type(exc).__name__),
                  file=sys.stderr)
            return
        if body is not None:
            self.bodies.append((sender, body, time.monotonic()))

    async def send_body(self, to, body):
        self.last_send = time.monotonic()
        if self.ns == "omemo03":
            message = self.make_message(mto=to, mtype="chat", mbody=body)
            encrypted, errors = await self.plugin["xep_0384"].encrypt_message(message, slixmpp.JID(to))
            if errors:
                raise RuntimeError("encryption errors: %r" % (errors,))
            encrypted.enable("store")
            encrypted.send()
            return
        for jid in {to, self.boundjid.bare}:
            await self.sm.refresh_device_list(twomemo.twomemo.NAMESPACE, jid)
        envelope = sce_envelope(body, self.boundjid.bare, to)
        messages, errors = await self.sm.encrypt(frozenset([to]),
                                                 {twomemo.twomemo.NAMESPACE: envelope})
        if errors:
            raise RuntimeError("encryption errors: %r" % (errors,))
        for message in messages:
            self.send_omemo2(to, twomemo.etree.serialize_message(message))


@OPS.op("login")
def op_login(req):
    async def go():
        person = Person(req["jid"], req["password"], req["ns"])  # on the loop it will run on
        person.connect(req["host"], int(req["port"]))
        await asyncio.wait_for(person.online.wait(), 30)
        own, _ = await person.sm.get_own_device_information()
        return person, own.device_id

    person, device_id = run(go())
    PERSONS[req["name"]] = person
    return {"device_id": device_id}


@OPS.op("send")
def op_send(req):
    person = PERSONS[req["name"]]
    started = time.monotonic()
    run(person.send_body(req["to"], req["body"]))
    return {"seconds": time.monotonic() - started}


@OPS.op("wait_for")
def op_wait_for(req):
    person = PERSONS[req["name"]]
    deadline = time.monotonic() + float(req.get("timeout_s", 20))
    while True:
        bodies = [(b, t) for (s, b, t) in list(person.bodies) if s == req["from"]]
        if len(bodies) >= int(req["count"]) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    seconds = None
    if bodies and person.last_send is not None:
        seconds = bodies[-1][1] - person.last_send
    return {"bodies": [b for b, _ in bodies], "seconds_to_last": seconds}


@OPS.op("logout")
def op_logout(req):
    person = PERSONS.pop(req["name"])

    async def go():
        person.disconnect()
        await asyncio.sleep(0.2)

    run(go())
    return {}


if __name__ == "__main__":
    sys.exit(OPS.serve())
