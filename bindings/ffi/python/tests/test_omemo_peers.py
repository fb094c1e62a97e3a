"""OMEMO between olmo's wheel and python-omemo's real backends in this process: twomemo (OMEMO 2)
and oldmemo (OMEMO 0.3), each side starting the session, messages both ways.

python-omemo is driven by the interop peer the core's tests use (tests/peers/omemo_peer.py),
imported here and called op by op instead of over a pipe."""

import json
import os
import sys

import pytest

import olmo

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "peers"))
import omemo_peer  # noqa: E402

VERSIONS = [("omemo2", olmo.OmemoVersion.OMEMO2), ("omemo03", olmo.OmemoVersion.OMEMO03)]


def call(op, **fields):
    response, _ = omemo_peer.OPS.handle_line(json.dumps({"op": op, **fields}))
    assert response.pop("ok"), response.get("error")
    return response


class PythonDevice:
    """A twomemo or oldmemo device of the peer, named after its JID and version."""

    def __init__(self, ns, jid, device_id):
        self.ns, self.jid, self.device_id = ns, jid, device_id
        self.name = f"{jid}/{ns}"
        self.bundle_xml = call("device_new", name=self.name, ns=ns, jid=jid, device_id=device_id)["bundle_xml"]

    def encrypt(self, to: olmo.OmemoDevice, version, plaintext: bytes) -> str:
        recipient = {"jid": to.jid(), "device_id": to.device_id(), "bundle_xml": to.bundle(version)}
        return call("encrypt", name=self.name, to=[recipient], plaintext=plaintext.hex())["encrypted_xml"]

    def decrypt(self, sender: olmo.OmemoDevice, version, element: str):
        response = call("decrypt", name=self.name, from_jid=sender.jid(), encrypted_xml=element,
                        sender_bundle_xml=sender.bundle(version))
        return bytes.fromhex(response["plaintext"]), response


@pytest.mark.parametrize("ns,version", VERSIONS)
def test_olmo_starts_and_python_omemo_answers(ns, version):
    ours = olmo.OmemoDevice("romeo@montague.example", 1001)
    theirs = PythonDevice(ns, f"juliet-{ns}@capulet.example", 2001)
    ours.build_session(theirs.jid, theirs.device_id, theirs.bundle_xml)
    to = [olmo.OmemoAddress(jid=theirs.jid, device_id=theirs.device_id)]

    for i in range(3):
        plaintext, response = theirs.decrypt(ours, version, ours.encrypt_message(version, to, f"hello {i}".encode()))
        assert plaintext == f"hello {i}".encode() and response["kex"] and response["sender_device"] == 1001
    for i in range(3):
        received = ours.decrypt_message(theirs.jid, theirs.encrypt(ours, version, f"answer {i}".encode()))
        assert (received.plaintext(), received.sender_device(), received.version()) == (
            f"answer {i}".encode(), 2001, version)
        assert not received.new_session()
    # Their answer confirmed the session: our messages carry no key exchange any more.
    plaintext, response = theirs.decrypt(ours, version, ours.encrypt_message(version, to, b"confirmed"))
    assert plaintext == b"confirmed" and not response["kex"]


@pytest.mark.parametrize("ns,version", VERSIONS)
def test_python_omemo_starts_and_olmo_answers(ns, version, storage_key):
    ours = olmo.OmemoDevice("juliet@capulet.example", 2002)
    theirs = PythonDevice(ns, f"romeo-{ns}@montague.example", 1002)

    first = ours.decrypt_message(theirs.jid, theirs.encrypt(ours, version, b"hello olmo"))
    assert (first.plaintext(), first.new_session(), first.sender_device()) == (b"hello olmo", True, 1002)
    assert first.pre_key_used() is not None
    # The device survives a restart between messages.
    ours = olmo.OmemoDevice.restore(ours.save(storage_key), storage_key)
    assert ours.decrypt_message(theirs.jid, theirs.encrypt(ours, version, b"again")).plaintext() == b"again"

    to = [olmo.OmemoAddress(jid=theirs.jid, device_id=theirs.device_id)]
    for i in range(3):
        plaintext, response = theirs.decrypt(ours, version, ours.encrypt_message(version, to, f"reply {i}".encode()))
        assert plaintext == f"reply {i}".encode() and not response["kex"]
    after = theirs.encrypt(ours, version, b"after our reply")
    assert ours.decrypt_message(theirs.jid, after).plaintext() == b"after our reply"
