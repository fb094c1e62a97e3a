#!/usr/bin/env python3
"""Self-check for nio_machine_peer.py: two nio devices, each in its own peer process, talk
through a small fake homeserver written here (keys upload, query, claim, to-device routing).
Run with the venv's python3, `.venv/bin/python3 tests/peers/test_nio_machine_peer.py`.
Prints "N passed, M failed" and exits non-zero on a failure."""

import copy
import json
import os
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "nio_machine_peer.py")
VENV_PY = os.path.join(HERE, "..", "..", ".venv", "bin", "python3")
PYTHON = VENV_PY if os.path.exists(VENV_PY) else sys.executable
ROOM = "!room:example.org"


class Peer:
    def __init__(self):
        self.proc = subprocess.Popen(
            [PYTHON, PEER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            encoding="utf-8",
        )

    def raw(self, req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("peer closed stdout")
        return json.loads(line)

    def call(self, op, **fields):
        resp = self.raw(dict(fields, op=op))
        if not resp.get("ok"):
            raise AssertionError("%s failed: %s" % (op, resp.get("error")))
        return resp

    def close(self):
        assert self.raw({"op": "quit"}) == {"ok": True}
        assert self.proc.wait(timeout=10) == 0


class FakeHomeserver:
    """Just enough of the Client-Server API: device keys, one-time keys, to-device inboxes."""

    def __init__(self):
        self.device_keys = {}  # user -> device -> signed device keys
        self.otks = {}  # (user, device) -> {key_id: key object}
        self.inbox = {}  # (user, device) -> [to-device event]

    def upload(self, user, device, body):
        if "device_keys" in body:
            assert body["device_keys"]["user_id"] == user
            self.device_keys.setdefault(user, {})[device] = body["device_keys"]
        self.otks.setdefault((user, device), {}).update(body.get("one_time_keys", {}))
        return {"one_time_key_counts": {"signed_curve25519": len(self.otks[(user, device)])}}

    def query(self, body):
        return {
            "device_keys": {u: copy.deepcopy(self.device_keys.get(u, {})) for u in body["device_keys"]},
            "failures": {},
        }

    def claim(self, body):
        out = {}
        for user, devices in body["one_time_keys"].items():
            for device, algorithm in devices.items():
                assert algorithm == "signed_curve25519"
                keys = self.otks.get((user, device), {})
                if keys:
                    key_id = sorted(keys)[0]
                    out.setdefault(user, {})[device] = {key_id: keys.pop(key_id)}
        return {"one_time_keys": out, "failures": {}}

    def send_to_device(self, sender, event_type, messages):
        for user, devices in messages.items():
            for device, content in devices.items():
                self.inbox.setdefault((user, device), []).append(
                    {"type": event_type, "sender": sender, "content": content}
                )

    def sync(self, user, device):
        return self.inbox.pop((user, device), [])

    def otk_count(self, user, device):
        return len(self.otks.get((user, device), {}))


class Device:
    """One nio peer process driven like a client would, against the fake homeserver."""

    def __init__(self, hs, user, device, store_dir=None):
        self.hs, self.user, self.device = hs, user, device
        self.peer = Peer()
        fields = {"user_id": user, "device_id": device}
        if store_dir:
            fields["store_dir"] = store_dir
        self.keys = self.peer.call("create", **fields)

    def call(self, op, **fields):
        return self.peer.call(op, **fields)

    def raw(self, req):
        return self.peer.raw(req)

    def upload(self):
        body = self.call("keys_upload")["body"]
        if body is not None:
            self.call("keys_upload_response", body=self.hs.upload(self.user, self.device, body))
        return body

    def query(self, users):
        body = self.call("keys_query_request", users=users)["body"]
        if body is None:
            return None
        return self.call("keys_query_response", body=self.hs.query(body))

    def claim(self, users):
        body = self.call("keys_claim_request", users=users)["body"]
        if body is None:
            return None
        return self.call("keys_claim_response", body=self.hs.claim(body))

    def send(self, request):
        self.hs.send_to_device(self.user, request["type"], request["messages"])

    def sync(self):
        return self.call("receive_to_device", events=self.hs.sync(self.user, self.device))["results"]

    def event(self, content, event_id, ts=1000):
        return {"type": "m.room.encrypted", "sender": self.user, "event_id": event_id,
                "origin_server_ts": ts, "content": content}


RESULTS = {"passed": 0, "failed": 0}


def check(name, fn):
    try:
        fn()
    except Exception:  # noqa: BLE001
        RESULTS["failed"] += 1
        print("FAIL %s" % name)
        traceback.print_exc()
    else:
        RESULTS["passed"] += 1
        print("ok   %s" % name)


def main():
    hs = FakeHomeserver()
    tmp = tempfile.TemporaryDirectory(prefix="olmo-nio-machine-")
    alice = Device(hs, "@alice:example.org", "ALICE", store_dir=os.path.join(tmp.name, "alice"))
    bob = Device(hs, "@bob:example.org", "BOB")
    st = {}

    def upload():
        body = alice.upload()
        dk = body["device_keys"]
        assert dk["keys"]["ed25519:ALICE"] == alice.keys["ed25519"]
        assert dk["keys"]["curve25519:ALICE"] == alice.keys["curve25519"]
        assert "ed25519:ALICE" in dk["signatures"]["@alice:example.org"]
        otks = body["one_time_keys"]
        assert len(otks) == 50 and all(k.startswith("signed_curve25519:") for k in otks)
        assert "fallback_keys" not in body
        assert bob.upload() is not None
        assert alice.upload() is None and bob.upload() is None  # published: nothing more

    def query():
        r = alice.query([bob.user])
        assert r["changed"] == {bob.user: ["BOB"]}, r
        assert bob.query([alice.user])["changed"] == {alice.user: ["ALICE"]}
        devices = alice.call("devices", user_id=bob.user)["devices"]
        assert devices[0]["ed25519"] == bob.keys["ed25519"] and devices[0]["trust"] == "unverified"
        assert alice.call("keys_query_request")["body"] is None  # nothing pending

    def forged_query():
        forged = hs.query({"device_keys": {bob.user: []}})
        forged["device_keys"][bob.user]["BOB"]["keys"]["ed25519:BOB"] = alice.keys["ed25519"]
        body = alice.call("keys_query_request", users=[bob.user])["body"]
        assert body == {"device_keys": {bob.user: []}}
        r = alice.call("keys_query_response", body=forged)
        assert r["changed"] == {}, r
        devices = alice.call("devices", user_id=bob.user)["devices"]
        assert devices[0]["ed25519"] == bob.keys["ed25519"]

    def olm_alice_to_bob():
        r = alice.claim([bob.user])
        assert r["sessions"] == {bob.user: ["BOB"]}, r
        assert hs.otk_count(bob.user, "BOB") == 49
        assert alice.call("keys_claim_request", users=[bob.user])["body"] is None
        req = alice.call("encrypt_to_device", user_id=bob.user, device_id="BOB",
                         type="m.test", content={"n": 1})
        content = req["messages"][bob.user]["BOB"]
        assert content["algorithm"] == "m.olm.v1.curve25519-aes-sha2"
        assert content["ciphertext"][bob.keys["curve25519"]]["type"] == 0
        alice.send(req)
        [res] = bob.sync()
        assert res["decrypted"] and res["type"] == "m.test" and res["content"] == {"n": 1}, res
        assert res["sender"] == alice.user and res["sender_device"] == "ALICE"
        assert res["keys"] == {"ed25519": alice.keys["ed25519"]}

    def olm_bob_to_alice():
        assert bob.call("keys_claim_request", users=[alice.user])["body"] is None  # inbound session
        req = bob.call("encrypt_to_device", user_id=alice.user, device_id="ALICE",
                       type="m.test", content={"n": 2})
        assert req["messages"][alice.user]["ALICE"]["ciphertext"][alice.keys["curve25519"]]["type"] == 1
        bob.send(req)
        [res] = alice.sync()
        assert res["decrypted"] and res["content"] == {"n": 2}, res

    def olm_bad_input():
        req = alice.call("encrypt_to_device", user_id=bob.user, device_id="BOB",
                         type="m.test", content={"n": 3})
        body = req["messages"][bob.user]["BOB"]["ciphertext"][bob.keys["curve25519"]]
        body["body"] = body["body"][:-4] + ("AAAA" if body["body"][-4:] != "AAAA" else "BBBB")
        alice.send(req)
        forged = alice.call("encrypt_to_device", user_id=bob.user, device_id="BOB",
                            type="m.test", content={"n": 4})["messages"][bob.user]["BOB"]
        events = hs.sync(bob.user, "BOB") + [
            {"type": "m.room.encrypted", "sender": "@mallory:example.org", "content": forged},
            {"type": "m.room.encrypted", "sender": alice.user,
             "content": dict(forged, ciphertext={})},
            {"type": 5},
            {"type": "m.room.encrypted", "sender": alice.user, "content": {"algorithm": 1}},
        ]
        results = bob.call("receive_to_device", events=events)["results"]
        assert [r["decrypted"] for r in results] == [False] * 5, results
        assert "unwedging" in results[0]["error"], results[0]
        assert "Mismatched sender" in results[1]["error"], results[1]
        assert "ciphertext for our key" in results[2]["error"], results[2]
        assert all(r["error"] for r in results)
        assert bob.call("wedged")["devices"] == {}  # the session is under an hour old

    def room_key_alice_to_bob():
        with_unverified = alice.raw({"op": "share_room_key", "room_id": ROOM,
                                     "users": [bob.user], "ignore_unverified": False})
        assert not with_unverified["ok"] and "OlmUnverifiedDeviceError" in with_unverified["error"]
        alice.call("rotate_room_key", room_id=ROOM)  # the refused session was never shared
        r = alice.call("share_room_key", room_id=ROOM, users=[alice.user, bob.user])
        assert r["shared"] and list(r["messages"]) == [bob.user] and r["without_session"] == {}, r
        st["alice_session"] = r["session_id"]
        alice.send(r)
        [res] = bob.sync()
        assert res["type"] == "m.room_key" and res["room_key_stored"], res
        assert res["content"]["session_id"] == r["session_id"]
        again = alice.call("share_room_key", room_id=ROOM, users=[alice.user, bob.user])
        assert not again["shared"] and again["messages"] == {}
        st["alice_msg0"] = alice.call("encrypt_room", room_id=ROOM, type="m.room.message",
                                      content={"msgtype": "m.text", "body": "hello bob"})["content"]
        assert st["alice_msg0"]["session_id"] == r["session_id"]
        out = bob.call("decrypt_room", room_id=ROOM, event=alice.event(st["alice_msg0"], "$a0"))
        assert out["type"] == "m.room.message" and out["content"]["body"] == "hello bob", out
        assert out["verified"] is False
        bob.call("trust", user_id=alice.user, device_id="ALICE", level="verified")
        out = bob.call("decrypt_room", room_id=ROOM, event=alice.event(st["alice_msg0"], "$a0"))
        assert out["verified"] is True
        # The sender sees its own message too (nio stores its outbound session as inbound).
        own = alice.call("decrypt_room", room_id=ROOM, event=alice.event(st["alice_msg0"], "$a0"))
        assert own["content"]["body"] == "hello bob" and own["verified"] is True

    def room_key_bob_to_alice():
        alice.call("trust", user_id=bob.user, device_id="BOB", level="verified")
        r = bob.call("share_room_key", room_id=ROOM, users=[alice.user, bob.user])
        assert r["shared"] and list(r["messages"]) == [alice.user], r
        bob.send(r)
        [res] = alice.sync()
        assert res["type"] == "m.room_key" and res["room_key_stored"], res
        msg = bob.call("encrypt_room", room_id=ROOM, type="m.room.message",
                       content={"msgtype": "m.text", "body": "hello alice"})["content"]
        out = alice.call("decrypt_room", room_id=ROOM, event=bob.event(msg, "$b0"))
        assert out["content"]["body"] == "hello alice" and out["verified"] is True, out

    def room_errors():
        replay = alice.event(st["alice_msg0"], "$other")
        r = bob.raw({"op": "decrypt_room", "room_id": ROOM, "event": replay})
        assert not r["ok"] and "replay" in r["error"], r
        unknown = dict(st["alice_msg0"], session_id="A" * 43)
        r = bob.raw({"op": "decrypt_room", "room_id": ROOM, "event": alice.event(unknown, "$x")})
        assert not r["ok"] and "no session" in r["error"], r
        r = bob.raw({"op": "decrypt_room", "room_id": "!other:example.org",
                     "event": alice.event(st["alice_msg0"], "$a0")})
        assert not r["ok"], r
        assert bob.raw({"op": "no_such_op"})["ok"] is False
        assert bob.call("ping")["matrix_nio"] == "0.26.0"

    def rotation():
        assert alice.call("rotate_room_key", room_id=ROOM)["invalidated"] is True
        refused = alice.raw({"op": "encrypt_room", "room_id": ROOM, "type": "m.room.message",
                             "content": {"body": "x"}})
        assert not refused["ok"] and "not shared" in refused["error"], refused
        r = alice.call("share_room_key", room_id=ROOM, users=[alice.user, bob.user])
        assert r["shared"] and r["session_id"] != st["alice_session"], r
        alice.send(r)
        [res] = bob.sync()
        assert res["room_key_stored"] and res["content"]["session_id"] == r["session_id"]
        msg = alice.call("encrypt_room", room_id=ROOM, type="m.room.message",
                         content={"msgtype": "m.text", "body": "after rotation"})["content"]
        assert msg["session_id"] == r["session_id"]
        out = bob.call("decrypt_room", room_id=ROOM, event=alice.event(msg, "$a1"))
        assert out["content"]["body"] == "after rotation"
        old = bob.call("decrypt_room", room_id=ROOM, event=alice.event(st["alice_msg0"], "$a0"))
        assert old["content"]["body"] == "hello bob"

    def new_device_invalidates():
        carol = Device(hs, bob.user, "BOB2")
        try:
            carol.upload()
            r = alice.query([bob.user])
            assert r["changed"] == {bob.user: ["BOB2"]} and r["invalidated_rooms"] == [ROOM], r
            share = alice.call("share_room_key", room_id=ROOM, users=[alice.user, bob.user])
            assert share["without_session"] == {bob.user: ["BOB2"]}, share
            # nio skips a device without an Olm session yet marks the session shared: rotate.
            assert sorted(share["messages"][bob.user]) == ["BOB"], share
            assert alice.call("rotate_room_key", room_id=ROOM)["invalidated"]
            assert alice.claim([bob.user])["sessions"] == {bob.user: ["BOB2"]}
            share = alice.call("share_room_key", room_id=ROOM, users=[alice.user, bob.user])
            assert sorted(share["messages"][bob.user]) == ["BOB", "BOB2"], share
            alice.send(share)
            assert carol.sync()[0]["room_key_stored"] and bob.sync()[0]["room_key_stored"]
        finally:
            carol.peer.close()

    def otk_top_up():
        left = hs.otk_count(bob.user, "BOB")
        assert left < 50
        assert bob.call("otk_count", signed_curve25519=left)["upload_needed"]
        body = bob.upload()
        assert "device_keys" not in body and len(body["one_time_keys"]) == 50 - left, body
        assert hs.otk_count(bob.user, "BOB") == 50

    def export_import():
        path = os.path.join(tmp.name, "keys.txt")
        bob.call("export_keys", path=path, passphrase="pw", rounds=1000)
        dave = Device(hs, "@dave:example.org", "DAVE")
        try:
            sessions = dave.call("import_keys", path=path, passphrase="pw")["sessions"]
            assert st["alice_session"] in [s["session_id"] for s in sessions]
            out = dave.call("decrypt_room", room_id=ROOM, event=alice.event(st["alice_msg0"], "$a0"))
            assert out["content"]["body"] == "hello bob"
        finally:
            dave.peer.close()

    def restart_from_store():
        alice.peer.close()
        again = Device(hs, alice.user, "ALICE", store_dir=os.path.join(tmp.name, "alice"))
        assert again.keys == alice.keys
        alice.peer = again.peer
        assert alice.upload() is None
        out = alice.call("decrypt_room", room_id=ROOM, event=alice.event(st["alice_msg0"], "$a0"))
        assert out["content"]["body"] == "hello bob"
        req = alice.call("encrypt_to_device", user_id=bob.user, device_id="BOB",
                         type="m.test", content={"n": 4})
        alice.send(req)
        [res] = bob.sync()
        assert res["decrypted"] and res["content"] == {"n": 4}, res

    def unwedge():
        req = alice.call("encrypt_to_device", user_id=bob.user, device_id="BOB",
                         type="m.test", content={"n": 6})
        body = req["messages"][bob.user]["BOB"]["ciphertext"][bob.keys["curve25519"]]
        assert body["type"] == 1
        body["body"] = body["body"][:-4] + ("AAAA" if body["body"][-4:] != "AAAA" else "BBBB")
        bob.call("age_olm_sessions", minutes=61)
        alice.send(req)
        [res] = bob.sync()
        assert not res["decrypted"], res
        assert bob.call("wedged")["devices"] == {alice.user: ["ALICE"]}
        claim = bob.call("keys_claim_request")["body"]
        assert claim == {"one_time_keys": {alice.user: {"ALICE": "signed_curve25519"}}}, claim
        assert bob.call("keys_claim_response", body=hs.claim(claim))["sessions"] == {
            alice.user: ["ALICE"]}
        assert bob.call("wedged")["devices"] == {}
        queued = bob.call("outgoing_to_device")["requests"]
        # Besides the m.dummy: key requests nio queued for the undecryptable room events above.
        types = sorted(r["type"] for r in queued)
        assert types.count("m.room.encrypted") == 1, types
        assert set(types) == {"m.room.encrypted", "m.room_key_request"}, types
        [dummy] = [r for r in queued if r["type"] == "m.room.encrypted"]
        assert list(dummy["messages"]) == [alice.user], dummy
        assert bob.call("outgoing_to_device")["requests"] == []
        bob.send(dummy)
        [res] = alice.sync()
        assert res["decrypted"] and res["type"] == "m.dummy" and res["nio_event"] == "DummyEvent"
        req = alice.call("encrypt_to_device", user_id=bob.user, device_id="BOB",
                         type="m.test", content={"n": 7})
        alice.send(req)
        [res] = bob.sync()
        assert res["decrypted"] and res["content"] == {"n": 7}, res

    for name, fn in [
        ("keys upload: signed device keys and 50 one-time keys", upload),
        ("keys query both ways", query),
        ("keys query: a changed Ed25519 key is refused", forged_query),
        ("Olm to-device alice -> bob (pre-key)", olm_alice_to_bob),
        ("Olm to-device bob -> alice (normal message)", olm_bob_to_alice),
        ("Olm to-device: tampered, forged and malformed events", olm_bad_input),
        ("room key and message alice -> bob", room_key_alice_to_bob),
        ("room key and message bob -> alice", room_key_bob_to_alice),
        ("room decrypt errors: replay, unknown session, wrong room", room_errors),
        ("rotation: new session shared, old messages still decrypt", rotation),
        ("a new device invalidates the room session; claim then re-share", new_device_invalidates),
        ("one-time key top-up from the sync count", otk_top_up),
        ("key export from bob, import into a third device", export_import),
        ("restart alice from her on-disk nio store", restart_from_store),
        ("a wedged Olm session: claim, m.dummy, messages flow again", unwedge),
    ]:
        check(name, fn)

    for device in (alice, bob):
        try:
            device.peer.close()
        except Exception:  # noqa: BLE001
            pass
    tmp.cleanup()
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
