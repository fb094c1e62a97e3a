"""Megolm between olmo's wheel and both peers in this process, each side the sender once; key
export files; the stored forms."""

import olm
import vodozemac

import olmo
from conftest import b64, unb64


def test_olmo_room_to_vodozemac_and_libolm():
    outbound = olmo.OutboundGroupSession()
    key = outbound.session_key()
    theirs = vodozemac.InboundGroupSession(vodozemac.SessionKey(key))
    libolm = olm.InboundGroupSession(key)
    assert theirs.session_id == outbound.session_id() == libolm.id
    for i in range(10):
        message = outbound.encrypt(f"event {i}".encode())
        assert olmo.megolm_message_index(message) == i
        decrypted = theirs.decrypt(vodozemac.MegolmMessage.from_bytes(message))
        assert (decrypted.plaintext, decrypted.message_index) == (f"event {i}".encode(), i)
        assert libolm.decrypt(b64(message)) == (f"event {i}", i)


def test_vodozemac_and_libolm_rooms_to_olmo():
    sender = vodozemac.GroupSession()
    ours = olmo.InboundGroupSession(sender.session_key.to_base64())
    assert ours.session_id() == sender.session_id and ours.is_verified()
    for i in range(5):
        assert ours.decrypt(sender.encrypt(f"v{i}".encode()).to_bytes()) == f"v{i}".encode()

    libolm = olm.OutboundGroupSession()
    ours = olmo.InboundGroupSession(libolm.session_key)
    for i in range(5):
        assert ours.decrypt(unb64(libolm.encrypt(f"l{i}"))) == f"l{i}".encode()


def test_late_joiner_replay_and_errors():
    outbound = olmo.OutboundGroupSession()
    early = outbound.encrypt(b"before")
    late = olmo.InboundGroupSession(outbound.session_key())
    later = outbound.encrypt(b"after")
    assert late.first_known_index() == 1
    assert late.decrypt(later) == b"after"
    try:
        late.decrypt(early)
        raise AssertionError("decrypted before the first known index")
    except olmo.OlmoError.Decrypt as error:
        assert "before" not in str(error)
    try:
        late.decrypt(b"\x03garbage")
        raise AssertionError("decoded garbage")
    except olmo.OlmoError.Decode:
        pass
    outbound.invalidate()
    try:
        outbound.encrypt(b"x")
        raise AssertionError("encrypted on an invalidated session")
    except olmo.OlmoError.Encrypt:
        pass


def test_group_sessions_save_restore_and_libolm_pickles(storage_key):
    outbound = olmo.OutboundGroupSession()
    inbound = olmo.InboundGroupSession(outbound.session_key())
    message = outbound.encrypt(b"stored")
    restored_out = olmo.OutboundGroupSession.restore(outbound.save(storage_key), storage_key)
    assert restored_out.message_index() == 1
    restored_in = olmo.InboundGroupSession.restore(inbound.save(storage_key), storage_key)
    assert restored_in.decrypt(message) == b"stored"

    libolm_out = olm.OutboundGroupSession.from_pickle(outbound.to_libolm_pickle(b"p").encode(), "p")
    assert libolm_out.id == outbound.session_id() and libolm_out.message_index == 1
    back = olmo.OutboundGroupSession.from_libolm_pickle(libolm_out.pickle("q").decode(), b"q")
    assert back.session_id() == outbound.session_id()
    libolm_in = olm.InboundGroupSession.from_pickle(inbound.to_libolm_pickle(b"p").encode(), "p")
    assert libolm_in.decrypt(b64(message)) == ("stored", 0)
    again = olmo.InboundGroupSession.from_libolm_pickle(libolm_in.pickle("p").decode(), b"p")
    assert again.decrypt(message) == b"stored"


def test_key_export_round_trip():
    outbound = olmo.OutboundGroupSession()
    sender_key = olmo.OlmAccount().curve25519_key()
    sessions = [olmo.InboundGroupSession(outbound.session_key())]
    messages = [outbound.encrypt(f"m{i}".encode()) for i in range(3)]
    keys = [olmo.ExportedRoomKey.from_session("!room:example.org", sender_key, s) for s in sessions]

    text = olmo.encrypt_room_key_export(keys, "correct horse", 1000)
    assert text.startswith("-----BEGIN MEGOLM SESSION DATA-----")
    imported = olmo.decrypt_room_key_export(text, "correct horse")
    assert len(imported) == 1
    key = imported[0]
    assert (key.room_id(), key.sender_key(), key.session_id()) == ("!room:example.org", sender_key, outbound.session_id())
    assert key.session_id_matches() and key.algorithm() == "m.megolm.v1.aes-sha2"
    session = key.to_session()
    assert not session.is_verified()
    assert [session.decrypt(m) for m in messages] == [b"m0", b"m1", b"m2"]
    # The exported key also opens in vodozemac.
    theirs = vodozemac.InboundGroupSession.import_session(vodozemac.ExportedSessionKey(key.session_key()))
    assert theirs.decrypt(vodozemac.MegolmMessage.from_bytes(messages[2])).plaintext == b"m2"
    try:
        olmo.decrypt_room_key_export(text, "wrong")
        raise AssertionError("a wrong passphrase opened the file")
    except olmo.OlmoError.KeyExport as error:
        assert "passphrase" in str(error)
