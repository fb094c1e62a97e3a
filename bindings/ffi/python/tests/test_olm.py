"""Olm between olmo's wheel and both peers in this process: vodozemac-python (pyo3) and
python-olm (libolm), each side starting the session once."""

import olm
import vodozemac

import olmo
from conftest import b64, unb64


def olmo_to_vodozemac_message(session: olmo.OlmSession, ciphertext: bytes):
    return vodozemac.AnyOlmMessage.from_parts(session.message_type(), ciphertext)


def test_olmo_starts_session_with_vodozemac():
    alice = olmo.OlmAccount()
    bob = vodozemac.Account()
    bob.generate_one_time_keys(1)
    one_time_key = next(iter(bob.one_time_keys.values())).to_base64()
    session = alice.create_outbound_session(bob.curve25519_key.to_base64(), one_time_key)

    first = session.encrypt(b"hello vodozemac")
    assert session.message_type() == 0
    alice_key = vodozemac.Curve25519PublicKey.from_base64(alice.curve25519_key())
    bob_session, plaintext = bob.create_inbound_session(
        alice_key, olmo_to_vodozemac_message(session, first).to_pre_key()
    )
    assert plaintext == b"hello vodozemac"

    for i in range(5):
        kind, body = bob_session.encrypt(f"reply {i}".encode()).to_parts()
        assert session.decrypt(kind, body) == f"reply {i}".encode()
        answer = session.encrypt(f"answer {i}".encode())
        assert session.message_type() == 1
        assert bob_session.decrypt(olmo_to_vodozemac_message(session, answer)) == f"answer {i}".encode()


def test_vodozemac_starts_session_with_olmo():
    alice = vodozemac.Account()
    bob = olmo.OlmAccount()
    bob.generate_one_time_keys(1)
    one_time_key = next(iter(bob.one_time_keys().values()))
    session = alice.create_outbound_session(
        vodozemac.Curve25519PublicKey.from_base64(bob.curve25519_key()),
        vodozemac.Curve25519PublicKey.from_base64(one_time_key),
    )
    kind, body = session.encrypt(b"hello olmo").to_parts()
    assert kind == 0
    created = bob.create_inbound_session(alice.curve25519_key.to_base64(), body)
    assert created.plaintext() == b"hello olmo"
    assert bob.one_time_keys() == {}  # the used one-time key is gone
    bob_session = created.session()
    assert bob_session.session_id() == session.session_id

    reply = bob_session.encrypt(b"hi vodozemac")
    assert session.decrypt(olmo_to_vodozemac_message(bob_session, reply)) == b"hi vodozemac"


def test_olmo_starts_session_with_libolm():
    alice = olmo.OlmAccount()
    bob = olm.Account()
    bob.generate_one_time_keys(1)
    one_time_key = next(iter(bob.one_time_keys["curve25519"].values()))
    session = alice.create_outbound_session(bob.identity_keys["curve25519"], one_time_key)

    first = session.encrypt(b"hello libolm")
    inbound = olm.InboundSession(bob, olm.OlmPreKeyMessage(b64(first)), alice.curve25519_key())
    assert inbound.decrypt(olm.OlmPreKeyMessage(b64(first))) == "hello libolm"
    reply = inbound.encrypt("hi olmo")
    assert session.decrypt(reply.message_type, unb64(reply.ciphertext)) == b"hi olmo"


def test_libolm_starts_session_with_olmo():
    alice = olm.Account()
    bob = olmo.OlmAccount()
    bob.generate_one_time_keys(1)
    one_time_key = next(iter(bob.one_time_keys().values()))
    session = olm.OutboundSession(alice, bob.curve25519_key(), one_time_key)
    first = session.encrypt("hello olmo")
    assert first.message_type == 0
    created = bob.create_inbound_session(alice.identity_keys["curve25519"], unb64(first.ciphertext))
    assert created.session().matches_inbound_session(unb64(first.ciphertext))
    assert created.plaintext() == b"hello olmo"
    reply = created.session().encrypt(b"hi libolm")
    assert session.decrypt(olm.OlmMessage(b64(reply))) == "hi libolm"


def test_account_and_session_save_restore_and_libolm_pickles(storage_key):
    alice = olmo.OlmAccount()
    bob = olmo.OlmAccount()
    bob.generate_one_time_keys(2)
    one_time_key = next(iter(bob.one_time_keys().values()))
    session = alice.create_outbound_session(bob.curve25519_key(), one_time_key)

    restored = olmo.OlmAccount.restore(alice.save(storage_key), storage_key)
    assert restored.curve25519_key() == alice.curve25519_key()
    restored_session = olmo.OlmSession.restore(session.save(storage_key), storage_key)
    assert restored_session.session_id() == session.session_id()

    # olmo -> libolm -> olmo, through python-olm's own pickle reader and writer.
    libolm_account = olm.Account.from_pickle(bob.to_libolm_pickle(b"pickle key").encode(), "pickle key")
    assert libolm_account.identity_keys["curve25519"] == bob.curve25519_key()
    back = olmo.OlmAccount.from_libolm_pickle(libolm_account.pickle("other").decode(), b"other")
    assert back.ed25519_key() == bob.ed25519_key()
    libolm_session = olm.Session.from_pickle(session.to_libolm_pickle(b"k").encode(), "k")
    assert libolm_session.id == session.session_id()
    assert olmo.OlmSession.from_libolm_pickle(libolm_session.pickle("k").decode(), b"k").session_id() == session.session_id()


def test_errors_are_typed_and_hold_no_secrets(storage_key):
    alice = olmo.OlmAccount()
    blob = alice.save(storage_key)
    try:
        olmo.OlmAccount.restore(blob, bytes(32))
        raise AssertionError("a wrong key restored")
    except olmo.OlmoError.Persist as error:
        assert "authenticate" in str(error)

    bob = olmo.OlmAccount()
    bob.generate_one_time_keys(1)
    session = alice.create_outbound_session(bob.curve25519_key(), next(iter(bob.one_time_keys().values())))
    message = session.encrypt(b"secret plaintext")
    created = bob.create_inbound_session(alice.curve25519_key(), message)
    for call in (
        lambda: created.session().decrypt(0, message),
        lambda: bob.create_inbound_session(alice.curve25519_key(), message),
        lambda: alice.create_outbound_session("not base64!", "x"),
    ):
        try:
            call()
            raise AssertionError("no error")
        except olmo.OlmoError as error:
            assert "secret plaintext" not in str(error) and "secret plaintext" not in repr(error)
    try:
        olmo.OlmAccount.restore(blob, b"short")
    except olmo.OlmoError.Key as error:
        assert "32 bytes" in str(error)
