"""Two XMPP machines (OMEMO 2 and 0.3 at once) talking through a server played here: PEP
items (device lists, bundles) and an archive per account."""

import pytest

import olmo
from sqlite_store import SqliteStore

DEVICE_LIST_NODES = ("urn:xmpp:omemo:2:devices", "eu.siacs.conversations.axolotl.devicelist")


class Server:
    def __init__(self):
        self.pep = {}
        self.archive = {}
        self.sent = 0

    def publish(self, jid, items):
        for item in items:
            self.pep[(jid, item.node, item.item_id)] = item.payload

    def send(self, sender, to, payload):
        self.sent += 1
        message = (f"msg-{self.sent}", sender, to, payload)
        self.archive.setdefault(to, []).append(message)


class Device:
    def __init__(self, server, store, jid):
        self.server, self.jid = server, jid
        self.machine = olmo.XmppMachine.open(store, bytes(32), jid)
        self.read = 0
        self.refresh([jid])
        server.publish(jid, self.machine.publish())

    def refresh(self, jids):
        for (owner, node, _), payload in list(self.server.pep.items()):
            if owner in jids and node in DEVICE_LIST_NODES:
                self.machine.receive_device_list(owner, payload)

    def send(self, to, body):
        self.refresh([to, self.jid])
        for request in self.machine.bundle_requests([to]):
            bundle = self.server.pep.get((request.jid, request.node, request.item_id))
            if bundle is not None:
                self.machine.receive_bundle(request.jid, request.device_id, bundle)
        outcome = self.machine.encrypt([to], to, body)
        for stanza in outcome.stanzas:
            self.server.send(self.jid, to, stanza.payload)
        return outcome

    def catch_up(self):
        messages = self.server.archive.get(self.jid, [])[self.read:]
        self.read += len(messages)
        bodies = []
        for stanza_id, sender, to, payload in messages:
            outcome = self.machine.decrypt(sender, to, payload, stanza_id)
            for reply in outcome.replies():
                self.server.send(self.jid, reply.to, reply.payload)
            if outcome.has_message():
                bodies.append(outcome.body())
        return bodies


@pytest.mark.parametrize("kind", ["memory", "python"])
def test_xmpp_machines_talk(tmp_path, kind):
    def store(name):
        if kind == "memory":
            return olmo.OlmoStore.memory()
        return olmo.OlmoStore.foreign(SqliteStore(str(tmp_path / f"{name}.db")))

    server = Server()
    romeo = Device(server, store("romeo"), "romeo@montague.example")
    juliet = Device(server, store("juliet"), "juliet@capulet.example")

    outcome = romeo.send(juliet.jid, "Hi Juliet")
    assert outcome.skipped == [] and {s.version for s in outcome.stanzas} == {olmo.OmemoVersion.OMEMO2}
    assert juliet.catch_up() == ["Hi Juliet"]
    juliet.send(romeo.jid, "Hi Romeo")
    assert romeo.catch_up() == ["Hi Romeo"]
    assert len(romeo.machine.fingerprint()) > 0 and romeo.machine.device_id() > 0
    # The archive read again: the stored outcome, not a second decryption.
    juliet.read = 0
    assert juliet.catch_up() == ["Hi Juliet"]


def test_trust_decisions():
    server = Server()
    romeo = Device(server, olmo.OlmoStore.memory(), "romeo@montague.example")
    juliet = Device(server, olmo.OlmoStore.memory(), "juliet@capulet.example")
    romeo.send(juliet.jid, "Hi Juliet")
    assert juliet.catch_up() == ["Hi Juliet"]

    # Blind trust before verification (the default) used Juliet's key without asking.
    fingerprint = juliet.machine.fingerprint()
    assert romeo.machine.trust_decisions(juliet.jid) == [
        olmo.TrustDecision(fingerprint=fingerprint, trust=olmo.IdentityTrust.BLIND)]

    romeo.machine.set_trust(juliet.jid, fingerprint, olmo.IdentityTrust.DISTRUSTED)
    refused = romeo.send(juliet.jid, "not to a distrusted key")
    assert refused.stanzas == [] and [s.device_id for s in refused.skipped] == [juliet.machine.device_id()]

    romeo.machine.set_trust(juliet.jid, fingerprint, olmo.IdentityTrust.TRUSTED)
    assert romeo.machine.trust_decisions(juliet.jid)[0].trust == olmo.IdentityTrust.TRUSTED
    assert romeo.send(juliet.jid, "verified").stanzas != []
    assert juliet.catch_up() == ["verified"]

    romeo.machine.set_trust_policy(olmo.TrustPolicy.TRUST_ON_FIRST_USE)
    assert romeo.machine.trust_decisions("nobody@example.org") == []
