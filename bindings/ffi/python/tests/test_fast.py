"""olmo_fast (the pyo3 hot paths, bindings/python-fast) in this process beside olmo's UniFFI
wheel, vodozemac-python and python-olm: objects handed over both ways between the two wheels,
sessions with each peer started from each side, and typed errors on bad input."""

import olm
import pytest
import vodozemac

import olmo
import olmo_fast
from conftest import b64, unb64


def published_one_time_key(account: olmo.OlmAccount) -> str:
    account.generate_one_time_keys(1)
    key = next(iter(account.one_time_keys().values()))
    account.mark_keys_as_published()
    return key


def test_objects_convert_both_ways_and_keep_their_state(storage_key):
    alice, bob = olmo.OlmAccount(), olmo.OlmAccount()
    one_time_key = published_one_time_key(bob)
    fast_bob = olmo_fast.OlmAccount.from_olmo(bob)
    assert fast_bob.curve25519_key() == bob.curve25519_key()

    # A UniFFI session continues in olmo_fast, then goes back to UniFFI.
    session = alice.create_outbound_session(bob.curve25519_key(), one_time_key)
    fast = olmo_fast.OlmSession.from_olmo(session)
    first = fast.encrypt(b"first")
    inbound, plaintext = fast_bob.create_inbound_session(alice.curve25519_key(), first)
    assert plaintext == b"first" and inbound.session_id() == session.session_id()
    assert fast.decrypt(inbound.message_type(), inbound.encrypt(b"reply")) == b"reply"
    back = fast.to_olmo()
    assert isinstance(back, olmo.OlmSession) and back.message_type() == 1
    assert inbound.decrypt(1, back.encrypt(b"from the UniFFI copy")) == b"from the UniFFI copy"

    # The app's own stored form reads in either wheel.
    assert olmo.OlmSession.restore(inbound.save(storage_key), storage_key).session_id() == inbound.session_id()
    assert olmo_fast.OlmAccount.restore(bob.save(storage_key), storage_key).curve25519_key() == bob.curve25519_key()
    account_back = fast_bob.to_olmo()
    assert isinstance(account_back, olmo.OlmAccount) and account_back.ed25519_key() == bob.ed25519_key()

    room = olmo.OutboundGroupSession()
    reader = olmo.InboundGroupSession(room.session_key())
    fast_room = olmo_fast.OutboundGroupSession.from_olmo(room)
    fast_reader = olmo_fast.InboundGroupSession.from_olmo(reader)
    message = fast_room.encrypt(b"event")
    assert olmo_fast.megolm_message_index(message) == 0 and fast_room.message_index() == 1
    assert fast_reader.decrypt(message) == b"event" and reader.decrypt(message) == b"event"
    assert fast_room.to_olmo().message_index() == 1
    assert fast_reader.to_olmo().session_id() == room.session_id() == fast_reader.session_id()
    assert olmo_fast.InboundGroupSession.restore(reader.save(storage_key), storage_key).first_known_index() == 0
    assert olmo_fast.OutboundGroupSession.restore(room.save(storage_key), storage_key).session_id() == room.session_id()


def test_fast_olm_with_vodozemac_both_directions():
    # olmo_fast starts.
    alice = olmo_fast.OlmAccount.from_olmo(olmo.OlmAccount())
    bob = vodozemac.Account()
    bob.generate_one_time_keys(1)
    session = alice.create_outbound_session(
        bob.curve25519_key.to_base64(), next(iter(bob.one_time_keys.values())).to_base64()
    )
    first = session.encrypt(b"hello vodozemac")
    bob_session, plaintext = bob.create_inbound_session(
        vodozemac.Curve25519PublicKey.from_base64(alice.curve25519_key()),
        vodozemac.AnyOlmMessage.from_parts(session.message_type(), first).to_pre_key(),
    )
    assert plaintext == b"hello vodozemac"
    for i in range(3):
        kind, body = bob_session.encrypt(f"reply {i}".encode()).to_parts()
        assert session.decrypt(kind, body) == f"reply {i}".encode()
        answer = session.encrypt(f"answer {i}".encode())
        assert bob_session.decrypt(vodozemac.AnyOlmMessage.from_parts(session.message_type(), answer)) == f"answer {i}".encode()

    # vodozemac starts.
    carol = vodozemac.Account()
    dave = olmo.OlmAccount()
    one_time_key = published_one_time_key(dave)
    fast_dave = olmo_fast.OlmAccount.from_olmo(dave)
    theirs = carol.create_outbound_session(
        vodozemac.Curve25519PublicKey.from_base64(dave.curve25519_key()),
        vodozemac.Curve25519PublicKey.from_base64(one_time_key),
    )
    kind, body = theirs.encrypt(b"hello olmo_fast").to_parts()
    ours, plaintext = fast_dave.create_inbound_session(carol.curve25519_key.to_base64(), body)
    assert (kind, plaintext, ours.session_id()) == (0, b"hello olmo_fast", theirs.session_id)
    reply = ours.encrypt(b"hi vodozemac")
    assert theirs.decrypt(vodozemac.AnyOlmMessage.from_parts(ours.message_type(), reply)) == b"hi vodozemac"


def test_fast_olm_with_libolm_both_directions():
    # olmo_fast starts.
    alice = olmo_fast.OlmAccount.from_olmo(olmo.OlmAccount())
    bob = olm.Account()
    bob.generate_one_time_keys(1)
    session = alice.create_outbound_session(
        bob.identity_keys["curve25519"], next(iter(bob.one_time_keys["curve25519"].values()))
    )
    first = olm.OlmPreKeyMessage(b64(session.encrypt(b"hello libolm")))
    inbound = olm.InboundSession(bob, first, alice.curve25519_key())
    assert inbound.decrypt(first) == "hello libolm"
    reply = inbound.encrypt("hi olmo_fast")
    assert session.decrypt(reply.message_type, unb64(reply.ciphertext)) == b"hi olmo_fast"

    # libolm starts.
    carol = olm.Account()
    dave = olmo.OlmAccount()
    one_time_key = published_one_time_key(dave)
    fast_dave = olmo_fast.OlmAccount.from_olmo(dave)
    theirs = olm.OutboundSession(carol, dave.curve25519_key(), one_time_key)
    hello = theirs.encrypt("hello olmo_fast")
    ours, plaintext = fast_dave.create_inbound_session(carol.identity_keys["curve25519"], unb64(hello.ciphertext))
    assert plaintext == b"hello olmo_fast"
    assert theirs.decrypt(olm.OlmMessage(b64(ours.encrypt(b"hi libolm")))) == "hi libolm"


def test_fast_megolm_with_vodozemac_and_libolm_both_directions():
    room = olmo_fast.OutboundGroupSession.from_olmo(olmo.OutboundGroupSession())
    key = room.to_olmo().session_key()
    theirs = vodozemac.InboundGroupSession(vodozemac.SessionKey(key))
    libolm = olm.InboundGroupSession(key)
    for i in range(5):
        message = room.encrypt(f"event {i}".encode())
        assert theirs.decrypt(vodozemac.MegolmMessage.from_bytes(message)).plaintext == f"event {i}".encode()
        assert libolm.decrypt(b64(message)) == (f"event {i}", i)

    sender = vodozemac.GroupSession()
    ours = olmo_fast.InboundGroupSession.from_olmo(olmo.InboundGroupSession(sender.session_key.to_base64()))
    assert ours.session_id() == sender.session_id
    for i in range(3):
        assert ours.decrypt(sender.encrypt(f"v{i}".encode()).to_bytes()) == f"v{i}".encode()
    libolm_sender = olm.OutboundGroupSession()
    ours = olmo_fast.InboundGroupSession.from_olmo(olmo.InboundGroupSession(libolm_sender.session_key))
    for i in range(3):
        assert ours.decrypt(unb64(libolm_sender.encrypt(f"l{i}"))) == f"l{i}".encode()


def raised(error_type, call):
    with pytest.raises(error_type) as caught:
        call()
    error = caught.value
    assert isinstance(error, olmo_fast.OlmoError) and error.reason == str(error)
    assert "secret plaintext" not in str(error) and "secret plaintext" not in repr(error)
    return error.reason


def test_bad_input_gives_typed_errors_and_changes_nothing(storage_key):
    alice, bob = olmo.OlmAccount(), olmo.OlmAccount()
    one_time_key = published_one_time_key(bob)
    fast_alice = olmo_fast.OlmAccount.from_olmo(alice)
    fast_bob = olmo_fast.OlmAccount.from_olmo(bob)
    session = fast_alice.create_outbound_session(bob.curve25519_key(), one_time_key)
    first = session.encrypt(b"secret plaintext")

    raised(olmo_fast.OlmoError.Key, lambda: fast_alice.create_outbound_session("not base64!", one_time_key))
    raised(olmo_fast.InvalidKeyError, lambda: session.save(b"short"))
    assert "32 bytes" in raised(olmo_fast.OlmoError.Key, lambda: olmo_fast.OlmSession.restore(b"", b"short"))
    raised(olmo_fast.OlmoError.Persist, lambda: olmo_fast.OlmSession.restore(session.save(storage_key), bytes(32)))
    raised(olmo_fast.PersistError, lambda: olmo_fast.OlmAccount.restore(session.save(storage_key), storage_key))
    raised(olmo_fast.OlmoError.Decode, lambda: fast_bob.create_inbound_session(alice.curve25519_key(), first[:5]))
    raised(olmo_fast.OlmoError.SessionCreation, lambda: fast_bob.create_inbound_session(bob.curve25519_key(), first))
    inbound, _ = fast_bob.create_inbound_session(alice.curve25519_key(), first)
    # Its one-time key is used up now.
    raised(olmo_fast.SessionCreationError, lambda: fast_bob.create_inbound_session(alice.curve25519_key(), first))
    reply = inbound.encrypt(b"reply")
    tampered = reply[:-1] + bytes([reply[-1] ^ 1])
    raised(olmo_fast.OlmoError.Decrypt, lambda: session.decrypt(1, tampered))
    raised(olmo_fast.DecodeError, lambda: session.decrypt(7, reply))
    assert session.decrypt(1, reply) == b"reply"  # the failures changed nothing
    raised(olmo_fast.DecryptError, lambda: session.decrypt(1, reply))  # a replay

    room = olmo.OutboundGroupSession()
    early = room.encrypt(b"secret plaintext")
    late = olmo_fast.InboundGroupSession.from_olmo(olmo.InboundGroupSession(room.session_key()))
    message = olmo_fast.OutboundGroupSession.from_olmo(room).encrypt(b"later")
    raised(olmo_fast.OlmoError.Decrypt, lambda: late.decrypt(early))  # before its first index
    raised(olmo_fast.OlmoError.Decode, lambda: late.decrypt(b"\x03junk"))
    raised(olmo_fast.DecodeError, lambda: olmo_fast.megolm_message_index(b""))
    raised(olmo_fast.DecryptError, lambda: late.decrypt(message[:-1] + bytes([message[-1] ^ 1])))
    assert late.decrypt(message) == b"later"
    room.invalidate()
    raised(olmo_fast.OlmoError.Encrypt, lambda: olmo_fast.OutboundGroupSession.from_olmo(room).encrypt(b"x"))
    with pytest.raises(TypeError):
        late.decrypt("a str, not bytes")


def test_reprs_name_ids_never_secrets():
    room = olmo.OutboundGroupSession()
    key = room.session_key()
    fast_room = olmo_fast.OutboundGroupSession.from_olmo(room)
    fast_reader = olmo_fast.InboundGroupSession.from_olmo(olmo.InboundGroupSession(key))
    for value in (fast_room, fast_reader):
        text = repr(value)
        assert room.session_id() in text and key not in text and key[:20] not in text
    account = olmo.OlmAccount()
    assert account.curve25519_key() in repr(olmo_fast.OlmAccount.from_olmo(account))
