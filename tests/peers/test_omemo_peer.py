#!/usr/bin/env python3
"""Self-test for omemo_peer.py: python devices talk to each other through the peer's ops, for both
namespaces and through the SessionManager ops.  Run with the venv's python3:
`.venv/bin/python3 tests/peers/test_omemo_peer.py` (unittest; ends with "Ran N tests" and "OK")."""

import base64
import itertools
import json
import os
import subprocess
import sys
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "omemo_peer.py")
# Prefer the repo venv (made by .ci/setup-python.sh) so `python3 <this file>` works.
VENV_PY = os.path.join(HERE, "..", "..", ".venv", "bin", "python3")
PYTHON = VENV_PY if os.path.exists(VENV_PY) else sys.executable

URI = {"omemo2": "urn:xmpp:omemo:2", "omemo03": "eu.siacs.conversations.axolotl"}
NAMESPACES = ("omemo2", "omemo03")
_IDS = itertools.count(1000)


class Peer:
    def __init__(self):
        self.proc = subprocess.Popen([PYTHON, PEER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, encoding="utf-8")

    def raw(self, req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("peer closed stdout")
        return json.loads(line)

    def call(self, op, **fields):
        resp = self.raw(dict(op=op, **fields))
        if not resp.get("ok"):
            raise AssertionError("%s failed: %s" % (op, resp.get("error")))
        return resp

    def fail(self, op, **fields):
        resp = self.raw(dict(op=op, **fields))
        if resp.get("ok"):
            raise AssertionError("%s unexpectedly succeeded: %s" % (op, resp))
        return resp["error"]

    def close(self):
        assert self.raw({"op": "quit"}) == {"ok": True}
        assert self.proc.wait(timeout=30) == 0


def xml_find(xml, ns, path):
    return ET.fromstring(xml).findall(path.replace("{}", "{%s}" % URI[ns]))


def key_elements(xml, ns):
    return xml_find(xml, ns, ".//{}key")


def is_kex(element, ns):
    return element.get("kex" if ns == "omemo2" else "prekey") == "true"


def pre_key_ids(bundle_xml, ns):
    tag, attr = ("{}pk", "id") if ns == "omemo2" else ("{}preKeyPublic", "preKeyId")
    return {int(e.get(attr)) for e in xml_find(bundle_xml, ns, ".//" + tag)}


class PeerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.peer = Peer()

    @classmethod
    def tearDownClass(cls):
        cls.peer.close()

    def device(self, ns, label):
        name = "%s-%s-%d" % (label, ns, next(_IDS))
        device_id = next(_IDS)
        jid = "%s@%s.example" % (name, ns)
        info = self.peer.call("device_new", name=name, ns=ns, jid=jid, device_id=device_id)
        return dict(info, name=name, jid=jid, device_id=device_id, ns=ns)

    def send(self, sender, recipient, plaintext, with_bundle=True):
        to = {"jid": recipient["jid"], "device_id": recipient["device_id"]}
        if with_bundle:
            to["bundle_xml"] = self.peer.call("bundle", name=recipient["name"])["bundle_xml"]
        op, extra = ("encrypt", {"plaintext": plaintext.hex()}) if plaintext is not None else \
            ("encrypt_empty", {})
        return self.peer.call(op, name=sender["name"], to=[to], **extra)["encrypted_xml"]

    def receive(self, recipient, sender, xml):
        return self.peer.call("decrypt", name=recipient["name"], from_jid=sender["jid"],
                              encrypted_xml=xml)


class BackendTest(PeerTest):
    def test_ping(self):
        versions = self.peer.call("ping")
        for pkg in ("omemo", "twomemo", "oldmemo"):
            self.assertEqual(versions[pkg], "2.1.0")

    def test_device_new_bundle_shape(self):
        for ns in NAMESPACES:
            dev = self.device(ns, "shape")
            root = ET.fromstring(dev["bundle_xml"])
            self.assertEqual(root.tag, "{%s}bundle" % URI[ns])
            self.assertEqual(len(pre_key_ids(dev["bundle_xml"], ns)), 100)
            self.assertEqual(dev["fingerprint"], dev["identity_curve25519"])
            ik = xml_find(dev["bundle_xml"], ns, "{}ik" if ns == "omemo2" else "{}identityKey")[0].text
            expected = dev["identity_ed25519"] if ns == "omemo2" else "05" + dev["identity_curve25519"]
            self.assertEqual(base64.b64decode(ik).hex(), expected)

    def test_conversation(self):
        for ns in NAMESPACES:
            with self.subTest(ns=ns):
                self.conversation(ns)

    def conversation(self, ns):
        alice, bob = self.device(ns, "alice"), self.device(ns, "bob")
        bundle_before = self.peer.call("bundle", name=bob["name"])["bundle_xml"]

        xml = self.send(alice, bob, b"hello bob")
        [key] = key_elements(xml, ns)
        self.assertTrue(is_kex(key, ns))
        self.assertEqual(len(xml_find(xml, ns, "{}payload")), 1)
        got = self.receive(bob, alice, xml)
        self.assertEqual(bytes.fromhex(got["plaintext"]), b"hello bob")
        self.assertTrue(got["kex"])
        self.assertTrue(got["needs_empty_reply"])
        self.assertEqual(got["sender_device"], alice["device_id"])
        self.assertEqual(got["sender_identity_ed25519"][:62], alice["identity_ed25519"][:62])

        # The pre-key is gone and a fresh one (new id) replaces it.
        bundle_after = self.peer.call("bundle", name=bob["name"])["bundle_xml"]
        before, after = pre_key_ids(bundle_before, ns), pre_key_ids(bundle_after, ns)
        self.assertEqual(len(after), 100)
        self.assertEqual(before - after, {got["pre_key_id"]})
        self.assertTrue(all(i > max(before) for i in after - before))

        info = self.peer.call("session_info", name=alice["name"], jid=bob["jid"],
                              device_id=bob["device_id"])
        self.assertEqual((info["initiation"], info["confirmed"], info["sends_kex"]),
                         ("ACTIVE", False, True))

        # Still unconfirmed: the key exchange rides along and rebuilds nothing on bob's side.
        xml = self.send(alice, bob, b"second", with_bundle=False)
        self.assertTrue(is_kex(key_elements(xml, ns)[0], ns))
        got = self.receive(bob, alice, xml)
        self.assertEqual(bytes.fromhex(got["plaintext"]), b"second")

        # Bob's passive session never sends a key exchange; alice's first decryption confirms hers.
        xml = self.send(bob, alice, b"hi alice", with_bundle=False)
        self.assertFalse(is_kex(key_elements(xml, ns)[0], ns))
        got = self.receive(alice, bob, xml)
        self.assertEqual(bytes.fromhex(got["plaintext"]), b"hi alice")
        self.assertFalse(got["kex"])
        info = self.peer.call("session_info", name=alice["name"], jid=bob["jid"],
                              device_id=bob["device_id"])
        self.assertEqual((info["confirmed"], info["sends_kex"]), (True, False))

        xml = self.send(alice, bob, b"third", with_bundle=False)
        self.assertFalse(is_kex(key_elements(xml, ns)[0], ns))
        self.assertEqual(bytes.fromhex(self.receive(bob, alice, xml)["plaintext"]), b"third")

        # Empty message: no <payload>; 0.3 still has its <iv>.
        xml = self.send(bob, alice, None, with_bundle=False)
        self.assertEqual(xml_find(xml, ns, "{}payload"), [])
        self.assertEqual(len(xml_find(xml, ns, ".//{}iv")), 1 if ns == "omemo03" else 0)
        got = self.receive(alice, bob, xml)
        self.assertIsNone(got["plaintext"])

        # Replaying a message fails with the backend's exception.
        error = self.peer.fail("decrypt", name=alice["name"], from_jid=bob["jid"], encrypted_xml=xml)
        self.assertTrue(error.startswith("DecryptionFailed"), error)

    def test_tampered_and_unknown(self):
        for ns in NAMESPACES:
            with self.subTest(ns=ns):
                alice, bob = self.device(ns, "alice"), self.device(ns, "bob")
                xml = self.send(alice, bob, b"x" * 40)
                root = ET.fromstring(xml)
                payload = root.find("{%s}payload" % URI[ns])
                raw = bytearray(base64.b64decode(payload.text))
                raw[0] ^= 1
                payload.text = base64.b64encode(bytes(raw)).decode()
                error = self.peer.fail("decrypt", name=bob["name"], from_jid=alice["jid"],
                                       encrypted_xml=ET.tostring(root, encoding="unicode"))
                self.assertTrue(error.startswith("DecryptionFailed"), error)
                carol = self.device(ns, "carol")
                error = self.peer.fail("decrypt", name=carol["name"], from_jid=alice["jid"],
                                       encrypted_xml=xml)
                self.assertTrue(error.startswith("MessageNotForUs"), error)
                error = self.peer.fail("encrypt", name=alice["name"], plaintext="00",
                                       to=[{"jid": carol["jid"], "device_id": carol["device_id"]}])
                self.assertTrue(error.startswith("NoSession"), error)
                error = self.peer.fail("decrypt", name=bob["name"], from_jid=alice["jid"],
                                       encrypted_xml="<encrypted xmlns='%s'/>" % URI[ns])
                self.assertIn("XMLSchema", error)

    def test_key_material(self):
        for ns in NAMESPACES:
            with self.subTest(ns=ns):
                alice, bob = self.device(ns, "alice"), self.device(ns, "bob")
                size = 48 if ns == "omemo2" else 32
                material = bytes(range(size))
                bundle = self.peer.call("bundle", name=bob["name"])["bundle_xml"]
                out = self.peer.call("encrypt_key_material", name=alice["name"], jid=bob["jid"],
                                     device_id=bob["device_id"], key_material=material.hex(),
                                     bundle_xml=bundle)
                self.assertTrue(out["kex"])
                back = self.peer.call("decrypt_key_material", name=bob["name"], jid=alice["jid"],
                                      device_id=alice["device_id"], key=out["key"], kex=True)
                self.assertEqual(back["key_material"], material.hex())
                reply = self.peer.call("encrypt_key_material", name=bob["name"], jid=alice["jid"],
                                       device_id=alice["device_id"], key_material=material.hex())
                self.assertFalse(reply["kex"])
                back = self.peer.call("decrypt_key_material", name=alice["name"], jid=bob["jid"],
                                      device_id=bob["device_id"], key=reply["key"], kex=False)
                self.assertEqual(back["key_material"], material.hex())
                # An OMEMO 2 empty message is 32 zero bytes of key material and no auth tag.
                if ns == "omemo2":
                    xml = self.send(alice, bob, None, with_bundle=False)
                    [key] = key_elements(xml, ns)
                    back = self.peer.call("decrypt_key_material", name=bob["name"], jid=alice["jid"],
                                          device_id=alice["device_id"],
                                          key=base64.b64decode(key.text).hex(), kex=False)
                    self.assertEqual(back["key_material"], "00" * 32)

    def test_import(self):
        seed = bytes(range(32))
        spk_priv = bytes([7] * 32)
        pre_keys = [{"id": 5, "priv": bytes([i] * 32).hex()} for i in range(1, 2)] + \
            [{"id": 9, "priv": bytes([42] * 32).hex()}]
        for ns in NAMESPACES:
            with self.subTest(ns=ns):
                name = "imported-%s" % ns
                jid, device_id = "imp@%s.example" % ns, 77
                info = self.peer.call("device_import", name=name, ns=ns, jid=jid, device_id=device_id,
                                      identity_seed=seed.hex(),
                                      signed_pre_key={"id": 3, "priv": spk_priv.hex()},
                                      pre_keys=pre_keys)
                self.assertEqual(info["identity_seed"], seed.hex())
                self.assertEqual(pre_key_ids(info["bundle_xml"], ns), {5, 9})
                spk = xml_find(info["bundle_xml"], ns,
                               "{}spk" if ns == "omemo2" else "{}signedPreKeyPublic")[0]
                self.assertEqual(spk.get("id" if ns == "omemo2" else "signedPreKeyId"), "3")
                me = {"name": name, "jid": jid, "device_id": device_id}
                other = self.device(ns, "importer")
                xml = self.send(other, me, b"to the imported identity")
                got = self.receive(me, other, xml)
                self.assertEqual(bytes.fromhex(got["plaintext"]), b"to the imported identity")
                self.assertIn(got["pre_key_id"], (5, 9))
                after = pre_key_ids(self.peer.call("bundle", name=name)["bundle_xml"], ns)
                self.assertEqual(len(after), 100)
                self.assertNotIn(got["pre_key_id"], after)
                # The same seed gives the same identity in both namespaces.
                if ns == "omemo03":
                    self.assertEqual(info["identity_ed25519"], self.first_import_identity)
                else:
                    type(self).first_import_identity = info["identity_ed25519"]


class SessionManagerTest(PeerTest):
    def manager(self, label):
        jid = "%s-%d@sm.example" % (label, next(_IDS))
        info = self.peer.call("sm_new", name=jid, jid=jid)
        return dict(info, name=jid, jid=jid)

    def sm_send(self, sender, recipient, plaintext, **extra):
        return self.peer.call("sm_encrypt", name=sender["name"], to_jid=recipient["jid"],
                              plaintext=plaintext.hex(), **extra)

    def sm_receive(self, recipient, sender, ns, xml):
        return self.peer.call("sm_decrypt", name=recipient["name"], from_jid=sender["jid"], ns=ns,
                              encrypted_xml=xml)

    def outbox(self, who):
        return self.peer.call("sm_outbox", name=who["name"])["messages"]

    def test_publishes_both_namespaces(self):
        alice = self.manager("pub")
        for ns in NAMESPACES:
            published = self.peer.call("sm_published", ns=ns, jid=alice["jid"])
            devices = ET.fromstring(published["device_list_xml"])
            self.assertEqual(devices.tag, "{%s}%s" % (URI[ns], "devices" if ns == "omemo2" else "list"))
            self.assertEqual([int(d.get("id")) for d in devices], [alice["device_id"]])
            self.assertEqual(list(published["bundles"]), [str(alice["device_id"])])

    def test_label(self):
        jid = "label-%d@sm.example" % next(_IDS)
        info = self.peer.call("sm_new", name=jid, jid=jid, label="Phone \u00fc")
        published = self.peer.call("sm_published", ns="omemo2", jid=jid)
        [device] = ET.fromstring(published["device_list_xml"])
        self.assertEqual(device.get("label"), "Phone \u00fc")
        # The signature is plain Ed25519 by the identity key over the label's UTF-8 bytes only.
        import xeddsa  # in the venv with python-omemo
        self.assertTrue(xeddsa.ed25519_verify(base64.b64decode(device.get("labelsig")),
                                              bytes.fromhex(info["identity_ed25519"]),
                                              "Phone \u00fc".encode("utf-8")))
        [device] = ET.fromstring(self.peer.call("sm_published", ns="omemo03", jid=jid)["device_list_xml"])
        self.assertEqual(device.attrib, {"id": str(info["device_id"])})
        # Another manager accepts the label (twomemo checks the signature on download).
        other = self.manager("labelreader")
        out = self.sm_send(other, {"jid": jid}, b"hi")
        self.assertEqual(list(out["messages"]), ["omemo2"])

    def test_exchange(self):
        for ns in NAMESPACES:
            with self.subTest(ns=ns):
                self.exchange(ns)

    def exchange(self, ns):
        alice, bob = self.manager("alice"), self.manager("bob")
        out = self.sm_send(alice, bob, b"hello", priority=[ns])
        self.assertEqual(list(out["messages"]), [ns])
        self.assertEqual(out["errors"], [])
        xml = out["messages"][ns]
        self.assertTrue(is_kex(key_elements(xml, ns)[0], ns))
        got = self.sm_receive(bob, alice, ns, xml)
        self.assertEqual(bytes.fromhex(got["plaintext"]), b"hello")
        self.assertEqual(got["sender_device"], alice["device_id"])

        # Bob completes the key exchange with an empty message on his own.
        [sent] = self.outbox(bob)
        self.assertEqual((sent["ns"], sent["to_jid"]), (ns, alice["jid"]))
        self.assertEqual(xml_find(sent["encrypted_xml"], ns, "{}payload"), [])
        self.assertFalse(is_kex(key_elements(sent["encrypted_xml"], ns)[0], ns))
        got = self.sm_receive(alice, bob, ns, sent["encrypted_xml"])
        self.assertIsNone(got["plaintext"])
        self.assertEqual(self.outbox(alice), [])

        out = self.sm_send(alice, bob, b"again", priority=[ns])
        self.assertFalse(is_kex(key_elements(out["messages"][ns], ns)[0], ns))
        got = self.sm_receive(bob, alice, ns, out["messages"][ns])
        self.assertEqual(bytes.fromhex(got["plaintext"]), b"again")
        self.assertEqual(self.outbox(bob), [])

    def test_default_priority_is_omemo2(self):
        alice, bob = self.manager("alice"), self.manager("bob")
        out = self.sm_send(alice, bob, b"x", plaintexts={"omemo2": b"<envelope/>".hex()})
        self.assertEqual(list(out["messages"]), ["omemo2"])

    def test_heartbeat(self):
        alice, bob = self.manager("alice"), self.manager("bob")
        ns = "omemo2"
        first = self.sm_send(alice, bob, b"0", priority=[ns])["messages"][ns]
        self.sm_receive(bob, alice, ns, first)
        self.sm_receive(alice, bob, ns, self.outbox(bob)[0]["encrypted_xml"])
        # Bob's completion message made alice ratchet: her next message opens a new chain, so after
        # message i bob's receiving chain has length i.  Past 53 every decryption sends a heartbeat
        # (alice never reads them here, so the chain keeps growing).
        for i in range(1, 60):
            xml = self.sm_send(alice, bob, str(i).encode(), priority=[ns])["messages"][ns]
            self.sm_receive(bob, alice, ns, xml)
            beats = self.outbox(bob)
            self.assertEqual(len(beats), 1 if i > 53 else 0, "message %d" % i)
        # A heartbeat read by alice ratchets her sending chain: no more heartbeats from bob.
        self.sm_receive(alice, bob, ns, beats[0]["encrypted_xml"])
        xml = self.sm_send(alice, bob, b"fresh chain", priority=[ns])["messages"][ns]
        self.sm_receive(bob, alice, ns, xml)
        self.assertEqual(self.outbox(bob), [])

    def test_oldmemo_only_trust_and_restart(self):
        """An oldmemo-only manager is listed in 0.3 only and gets 0.3; a distrusted key is not
        encrypted to and its messages are refused; a restarted manager keeps its sessions."""
        alice = self.manager("alice")
        jid = "old-%d@sm.example" % next(_IDS)
        old = dict(self.peer.call("sm_new", name=jid, jid=jid, namespaces=["omemo03"]), name=jid, jid=jid)
        self.assertIsNone(self.peer.call("sm_published", ns="omemo2", jid=jid)["device_list_xml"])
        out = self.sm_send(alice, old, b"x")
        self.assertEqual(list(out["messages"]), ["omemo03"])
        got = self.sm_receive(old, alice, "omemo03", out["messages"]["omemo03"])
        self.assertEqual(bytes.fromhex(got["plaintext"]), b"x")
        self.sm_receive(alice, old, "omemo03", self.outbox(old)[0]["encrypted_xml"])

        self.assertEqual(self.peer.call("sm_restart", name=old["name"])["device_id"], old["device_id"])
        out = self.sm_send(alice, old, b"after restart")
        got = self.sm_receive(old, alice, "omemo03", out["messages"]["omemo03"])
        self.assertEqual(bytes.fromhex(got["plaintext"]), b"after restart")

        self.peer.call("sm_set_trust", name=old["name"], jid=alice["jid"],
                       identity_ed25519=alice["identity_ed25519"], trust="distrusted")
        error = self.peer.fail("sm_encrypt", name=old["name"], to_jid=alice["jid"], plaintext="00")
        self.assertTrue(error.startswith("NoEligibleDevices"), error)
        out = self.sm_send(alice, old, b"refused")
        error = self.peer.fail("sm_decrypt", name=old["name"], from_jid=alice["jid"], ns="omemo03",
                               encrypted_xml=out["messages"]["omemo03"])
        self.assertTrue(error.startswith("SenderDistrusted"), error)
        self.peer.call("sm_set_trust", name=old["name"], jid=alice["jid"],
                       identity_ed25519=alice["identity_ed25519"], trust="trusted")
        self.assertEqual(list(self.sm_send(old, alice, b"again")["messages"]), ["omemo03"])

    def test_backend_device_through_server(self):
        """The path the Rust side takes: a device outside the managers publishes its bundle and
        device list, a manager encrypts to it, and it answers a manager from a published bundle."""
        for ns in NAMESPACES:
            with self.subTest(ns=ns):
                carol = self.device(ns, "carol")
                self.peer.call("sm_publish", ns=ns, jid=carol["jid"], device_id=carol["device_id"],
                               bundle_xml=carol["bundle_xml"])
                devices = ("<devices xmlns='%s'><device id='%d'/></devices>" if ns == "omemo2" else
                           "<list xmlns='%s'><device id='%d'/></list>") % (URI[ns], carol["device_id"])
                self.peer.call("sm_publish_devices", ns=ns, jid=carol["jid"], device_list_xml=devices)
                alice = self.manager("alice")
                out = self.sm_send(alice, carol, b"to carol", priority=[ns])
                got = self.receive(carol, alice, out["messages"][ns])
                self.assertEqual(bytes.fromhex(got["plaintext"]), b"to carol")
                self.assertTrue(got["kex"])

                reply = self.peer.call("encrypt", name=carol["name"], plaintext=b"to alice".hex(),
                                       to=[{"jid": alice["jid"], "device_id": alice["device_id"]}])
                got = self.sm_receive(alice, carol, ns, reply["encrypted_xml"])
                self.assertEqual(bytes.fromhex(got["plaintext"]), b"to alice")

                # And carol starting a session from alice's published bundle.
                dave = self.manager("dave")
                published = self.peer.call("sm_published", ns=ns, jid=dave["jid"])
                bundle = published["bundles"][str(dave["device_id"])]
                xml = self.peer.call("encrypt", name=carol["name"], plaintext=b"to dave".hex(),
                                     to=[{"jid": dave["jid"], "device_id": dave["device_id"],
                                          "bundle_xml": bundle}])["encrypted_xml"]
                got = self.sm_receive(dave, carol, ns, xml)
                self.assertEqual(bytes.fromhex(got["plaintext"]), b"to dave")
                [completion] = self.outbox(dave)
                got = self.receive(carol, dave, completion["encrypted_xml"])
                self.assertIsNone(got["plaintext"])
                info = self.peer.call("session_info", name=carol["name"], jid=dave["jid"],
                                      device_id=dave["device_id"])
                self.assertTrue(info["confirmed"])


class BenchTest(PeerTest):
    """sm_bench, the XMPP machine bench's timing op: every operation runs, twice on one world."""

    def test_operations(self):
        for operation, extra, messages in (("encrypt", {}, 1), ("decrypt", {}, 1), ("build", {}, 1),
                                           ("catch_up", {"senders": 2, "per_sender": 3}, 6)):
            with self.subTest(operation=operation):
                for _ in range(2):
                    out = self.peer.call("sm_bench", operation=operation, iterations=2, **extra)
                    self.assertGreater(out["seconds_per_op"], 0)
                    self.assertEqual(out["messages"], messages)

    def test_refuses_unknown_operation(self):
        error = self.peer.fail("sm_bench", operation="nothing", iterations=1)
        self.assertIn("unknown operation", error)


if __name__ == "__main__":
    unittest.main(verbosity=2)
