"""The app's own store (Python over sqlite3) passes the core's conformance suite; the Matrix
machine runs a room conversation on memory, SQLite and that Python store."""

import json

import pytest

import olmo
from harness import Client, Homeserver
from sqlite_store import SqliteStore

ROOM = "!room:example.org"
MEMBERS = ["@alice:example.org", "@bob:example.org"]


def test_python_sqlite_store_passes_conformance(tmp_path):
    path = str(tmp_path / "app.db")
    passed = olmo.run_store_conformance(SqliteStore(path), SqliteStore(path))
    assert passed == len(olmo.store_conformance_checks()) == 13


def test_a_broken_store_fails_conformance_with_the_check_named():
    class Forgetful(SqliteStore):
        def commit(self, writes):  # drops every write but reports success
            return None

    with pytest.raises(olmo.OlmoError.Conformance) as failure:
        olmo.run_store_conformance(Forgetful(":memory:"), Forgetful(":memory:"))
    assert "store conformance check `" in str(failure.value)


def stores(tmp_path):
    return {
        "memory": lambda name: olmo.OlmoStore.memory(),
        "sqlite": lambda name: olmo.OlmoStore.sqlite(str(tmp_path / f"{name}.sqlite")),
        "python": lambda name: olmo.OlmoStore.foreign(SqliteStore(str(tmp_path / f"{name}.py.db"))),
    }


@pytest.mark.parametrize("kind", ["memory", "sqlite", "python"])
def test_matrix_machines_talk_in_a_room(tmp_path, kind):
    make = stores(tmp_path)[kind]
    server = Homeserver()
    alice = Client(server, make("alice"), "@alice:example.org", "ALICE")
    bob_store = make("bob")
    bob = Client(server, bob_store, "@bob:example.org", "BOB", key=bytes([7]) * 32)

    share = alice.share(ROOM, MEMBERS)
    assert share.without_session == []
    outcomes = bob.sync()
    assert [o.event_type() for o in outcomes if o.kind() == olmo.ToDeviceKind.DECRYPTED] == ["m.room_key"]
    event = alice.send(ROOM, "Hello Bob")
    decrypted = bob.machine.decrypt_room_event(ROOM, event)
    assert (decrypted.sender(), decrypted.message_index(), decrypted.forwarded()) == ("@alice:example.org", 0, False)
    assert json.loads(decrypted.content())["body"] == "Hello Bob"

    bob.share(ROOM, MEMBERS)
    alice.sync()
    assert alice.read(ROOM, bob.send(ROOM, "Hi Alice")) == "Hi Alice"

    # Bob's machine again from his store: the room key is still there.
    bob.machine = olmo.MatrixMachine.open(bob_store, bytes([7]) * 32, "@bob:example.org", "BOB")
    assert bob.read(ROOM, alice.send(ROOM, "after the restart")) == "after the restart"

    # A replay of an index under another event id is refused, with the core's reason.
    forged = json.loads(event)
    forged["event_id"] = "$another"
    with pytest.raises(olmo.OlmoError.Decrypt) as refused:
        bob.machine.decrypt_room_event(ROOM, json.dumps(forged))
    assert "already used" in str(refused.value) and "Hello Bob" not in str(refused.value)

    # Key export from Alice's machine, imported into a fresh device of Bob's.
    exported = alice.machine.export_room_keys(ROOM, "pass", 1000)
    fresh = olmo.MatrixMachine.open(olmo.OlmoStore.memory(), bytes(32), "@bob:example.org", "BOB2")
    result = fresh.import_room_keys(exported, "pass")
    assert result.imported == result.total == 2
    assert json.loads(fresh.decrypt_room_event(ROOM, event).content())["body"] == "Hello Bob"


def test_wrong_storage_key_and_wrong_account_are_typed_errors(tmp_path):
    store = olmo.OlmoStore.sqlite(str(tmp_path / "one.sqlite"))
    olmo.MatrixMachine.open(store, bytes(32), "@a:example.org", "A")
    with pytest.raises(olmo.OlmoError):
        olmo.MatrixMachine.open(store, bytes([1]) * 32, "@a:example.org", "A")
    with pytest.raises(olmo.OlmoError.Machine):
        olmo.MatrixMachine.open(store, bytes(32), "@b:example.org", "B")
