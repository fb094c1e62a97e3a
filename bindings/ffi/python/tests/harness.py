"""A homeserver in memory, as much of one as the Matrix machine needs (key uploads, device
queries, one-time key claims, to-device delivery, device-list changes), and a client that
drives an olmo machine against it."""

import json
from collections import defaultdict, deque

import olmo

ENCRYPTION = json.dumps({"algorithm": "m.megolm.v1.aes-sha2"})


class Homeserver:
    def __init__(self):
        self.device_keys = {}
        self.one_time_keys = defaultdict(deque)
        self.fallback_keys = {}
        self.to_device = defaultdict(list)
        self.changed = {}

    def join(self, user, device):
        self.changed.setdefault((user, device), set())

    def announce(self, user):
        for users in self.changed.values():
            users.add(user)

    def handle(self, user, device, path, body):
        name = (user, device)
        if path.endswith("/keys/upload"):
            if "device_keys" in body:
                self.device_keys[name] = body["device_keys"]
                self.announce(user)
            for key_id, key in body.get("one_time_keys", {}).items():
                self.one_time_keys[name].append((key_id, key))
            for key_id, key in body.get("fallback_keys", {}).items():
                self.fallback_keys[name] = (key_id, key)
            return {"one_time_key_counts": {"signed_curve25519": len(self.one_time_keys[name])}}
        if path.endswith("/keys/query"):
            listed = {
                queried: {d: keys for (u, d), keys in self.device_keys.items() if u == queried}
                for queried in body["device_keys"]
            }
            return {"device_keys": listed, "failures": {}}
        if path.endswith("/keys/claim"):
            claimed = {}
            for claim_user, devices in body["one_time_keys"].items():
                claimed[claim_user] = {}
                for claim_device in devices:
                    target = (claim_user, claim_device)
                    queue = self.one_time_keys[target]
                    key = queue.popleft() if queue else self.fallback_keys.get(target)
                    if key:
                        claimed[claim_user][claim_device] = {key[0]: key[1]}
            return {"one_time_keys": claimed, "failures": {}}
        if "/sendToDevice/" in path:
            event_type = path.split("/")[-2]
            for to_user, devices in body["messages"].items():
                for to_device, content in devices.items():
                    self.to_device[(to_user, to_device)].append(
                        {"type": event_type, "sender": user, "content": content}
                    )
            return {}
        raise AssertionError(f"the harness does not serve {path}")


class Client:
    def __init__(self, server, store, user, device, key=bytes(32)):
        server.join(user, device)
        self.server, self.user, self.device = server, user, device
        self.machine = olmo.MatrixMachine.open(store, key, user, device)
        self.sent = 0
        self.flush()

    def send_request(self, request):
        response = self.server.handle(self.user, self.device, request.path, json.loads(request.body))
        self.machine.mark_request_as_sent(request.id, json.dumps(response))

    def flush(self):
        for _ in range(10):
            requests = self.machine.outgoing_requests()
            if not requests:
                return
            for request in requests:
                self.send_request(request)
        raise AssertionError("requests kept coming")

    def sync(self):
        name = (self.user, self.device)
        events = self.server.to_device.pop(name, [])
        changed = sorted(self.server.changed.get(name, set()))
        self.server.changed[name] = set()
        outcomes = self.machine.receive_sync_changes(
            json.dumps(events), changed, [], len(self.server.one_time_keys[name]), None
        )
        self.flush()
        return outcomes

    def share(self, room, members):
        self.machine.update_tracked_users(members)
        self.flush()
        claim = self.machine.missing_sessions(members)
        if claim is not None:
            self.send_request(claim)
        share = self.machine.share_room_key(room, members, ENCRYPTION)
        self.flush()
        return share

    def send(self, room, body):
        content = json.dumps({"msgtype": "m.text", "body": body})
        encrypted = self.machine.encrypt_room_event(room, "m.room.message", content, ENCRYPTION)
        self.sent += 1
        return json.dumps({
            "type": "m.room.encrypted", "sender": self.user,
            "event_id": f"${self.device}-{self.sent}", "origin_server_ts": 1_763_700_000_000 + self.sent,
            "content": json.loads(encrypted),
        })

    def read(self, room, event):
        return json.loads(self.machine.decrypt_room_event(room, event).content())["body"]
