"""Self-test of the real-homeserver harness: synapse_server.py starts Synapse, two nio persons
(nio_person.py, driven over JSON lines as the Rust tests drive them) talk in an encrypted room
both ways, then a second device of bob reads a new message. Run with the peers' venv:

    .venv/bin/python3 tests/peers/test_synapse_person.py

after .ci/setup-python.sh and .ci/setup-synapse.sh.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SYNAPSE_PYTHON = os.path.join(REPO, ".venv-synapse", "bin", "python3")


class JsonLines:
    """One child process speaking JSON lines; closing its stdin ends it."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("%s exited (%s)" % (self.proc.args, self.proc.poll()))
        return json.loads(line)

    def call(self, op, **args):
        args["op"] = op
        self.proc.stdin.write((json.dumps(args) + "\n").encode())
        self.proc.stdin.flush()
        response = self.read()
        if not response.get("ok"):
            raise RuntimeError("%s failed: %s" % (op, response.get("error")))
        return response

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(timeout=30)


def person(server, name, device_name):
    peer = JsonLines([sys.executable, os.path.join(HERE, "nio_person.py")])
    login = peer.call(
        "login",
        base_url=server["base_url"],
        user=name,
        password=server["users"][name],
        device_name=device_name,
    )
    return peer, login


def main():
    passed, failed = 0, 0
    started = time.monotonic()
    server_proc = JsonLines([SYNAPSE_PYTHON, os.path.join(HERE, "synapse_server.py"), "--users", "alice,bob"])
    peers = [server_proc]
    try:
        server = server_proc.read()
        print("synapse ready at %s in %.1f s" % (server["base_url"], time.monotonic() - started))

        alice, alice_login = person(server, "alice", "alice phone")
        bob, bob_login = person(server, "bob", "bob laptop")
        peers += [alice, bob]
        bob_id = bob_login["user_id"]

        def check(name, fn):
            nonlocal passed, failed
            t = time.monotonic()
            try:
                fn()
                passed += 1
                print("ok   %s (%.1f s)" % (name, time.monotonic() - t))
            except Exception as exc:  # noqa: BLE001 - report every case
                failed += 1
                print("FAIL %s: %s" % (name, exc))

        room = {}

        def create_and_join():
            room["id"] = alice.call("create_room", invite=[bob_id], encrypted=True, name="olmo test")["room_id"]
            bob.call("sync")
            bob.call("join", room_id=room["id"])
            alice.call("sync")

        def alice_to_bob():
            event_id = alice.call("send", room_id=room["id"], body="hello bob")["event_id"]
            got = bob.call("wait_for", room_id=room["id"], body="hello bob", timeout_s=20)
            assert got["event_id"] == event_id and got["sender"] == alice_login["user_id"], got

        def bob_to_alice():
            bob.call("send", room_id=room["id"], body="hello alice")
            got = alice.call("wait_for", room_id=room["id"], body="hello alice", timeout_s=20)
            assert got["sender"] == bob_id, got

        def messages_listed():
            bob.call("sync")  # bob's own message comes back to him through sync
            listed = bob.call("messages", room_id=room["id"])
            bodies = [m["body"] for m in listed["messages"]]
            assert bodies == ["hello bob", "hello alice"], listed
            assert listed["undecryptable"] == [], listed

        def second_device_of_bob():
            bob2, bob2_login = person(server, "bob", "bob phone")
            peers.append(bob2)
            assert bob2_login["device_id"] != bob_login["device_id"], bob2_login
            # Alice learns of the new device through device_lists.changed in her sync.
            deadline = time.monotonic() + 10
            while True:
                alice.call("sync")
                known = {d["device_id"] for d in alice.call("devices", user_id=bob_id)["devices"]}
                if bob2_login["device_id"] in known:
                    break
                assert time.monotonic() < deadline, "alice never saw bob's new device: %s" % known
            alice.call("send", room_id=room["id"], body="for both of bob's devices")
            for device in (bob2, bob):
                device.call("wait_for", room_id=room["id"], body="for both of bob's devices", timeout_s=20)
            # What bob's new device cannot read: the history from before it existed.
            early = bob2.call("messages", room_id=room["id"])
            assert "hello bob" not in [m["body"] for m in early["messages"]], early

        def bob_leaves_and_alice_rotates():
            before = alice.call("wait_for", room_id=room["id"], body="for both of bob's devices")
            bob.call("leave", room_id=room["id"])
            alice.call("sync")
            alice.call("send", room_id=room["id"], body="after bob left")
            after = alice.call("wait_for", room_id=room["id"], body="after bob left", timeout_s=20)
            assert after["session_id"] and after["session_id"] != before["session_id"], (before, after)

        def messages_dumped():
            with tempfile.TemporaryDirectory() as scratch:
                path = os.path.join(scratch, "room.json")
                count = alice.call("dump_messages", room_id=room["id"], path=path)["events"]
                with open(path) as f:
                    chunk = json.load(f)["chunk"]
            assert count == len(chunk), (count, len(chunk))
            assert chunk[0]["type"] == "m.room.create", chunk[0]  # oldest first
            encrypted = [e for e in chunk if e["type"] == "m.room.encrypted"]
            assert len(encrypted) == 2 and "ciphertext" in encrypted[0]["content"], encrypted

        check("alice creates an encrypted room, bob joins", create_and_join)
        check("alice -> bob decrypts", alice_to_bob)
        check("bob -> alice decrypts", bob_to_alice)
        check("messages lists what bob decrypted", messages_listed)
        check("dump_messages writes the raw history, oldest first", messages_dumped)
        check("a second device of bob reads a new message", second_device_of_bob)
        check("bob leaves: alice's next message is in a new session", bob_leaves_and_alice_rotates)
    except Exception as exc:  # noqa: BLE001
        failed += 1
        print("FAIL setup: %s" % exc)
    finally:
        for peer in reversed(peers):
            try:
                peer.close()
            except Exception as exc:  # noqa: BLE001
                print("cannot stop %s: %s" % (peer.proc.args, exc))
    print("%d passed, %d failed (%.1f s)" % (passed, failed, time.monotonic() - started))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
