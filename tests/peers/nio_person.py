"""A person on a real homeserver: a matrix-nio AsyncClient with end-to-end encryption, driven
over JSON lines (peer_protocol.py; tests/common/peer.rs is the other end).

The homeserver is the Synapse of synapse_server.py. The person trusts every device (it sends with
`ignore_unverified_devices`), like a user who never verifies; its nio store lives in a temporary
directory deleted on quit. Each `login` is a new device, so a second process logging in as the
same user is "a new device of the person".

Ops (all but `login` need a logged-in client):
  login {base_url, user, password, device_name?, server_name?: "localhost"}
        -> {user_id, device_id, ed25519, curve25519}      (user: a localpart or a full user id)
  create_room {invite?: [user_id], encrypted?: true, name?} -> {room_id}
  join {room_id}; invite {room_id, user_id}; leave {room_id}
  send {room_id, body, msgtype?: "m.text"} -> {event_id}   (encrypted when the room is)
  sync {timeout_ms?: 0} -> {next_batch}       (one /sync, then to-device, keys upload/query/claim)
  messages {room_id, since?: event_id} -> {messages: [{sender, body, event_id, session_id}],
                                            undecryptable: [{event_id, sender, session_id}]}
  wait_for {room_id, body, timeout_s?: 20} -> {sender, body, event_id, session_id}
                                             (syncs until it decrypts; session_id None if clear)
  devices {user_id} -> {devices: [{device_id, ed25519, curve25519}]}    (as nio knows them)
  export_keys {path, passphrase}; import_keys {path, passphrase}
  dump_messages {room_id, path} -> {events}   (the room's whole history as the server gives it:
                                              one /messages response, oldest first, written to path)
  logout; quit
"""

import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from nio import (
    AsyncClient,
    AsyncClientConfig,
    EncryptionError,
    MegolmEvent,
    RoomMessageNotice,
    RoomMessageText,
)
from nio.responses import ErrorResponse

from peer_protocol import Ops

MEGOLM = "m.megolm.v1.aes-sha2"
# What a person reads as a message: texts, and notices (what bots send).
MESSAGES = (RoomMessageText, RoomMessageNotice)

ops = Ops()
loop = asyncio.new_event_loop()


class Person:
    def __init__(self):
        self.client = None
        self.store_dir = None
        # room id -> list of entries in timeline order; an entry is a dict with "event_id",
        # "sender" and either "body" (decrypted text) or "session_id" + "event" (still encrypted).
        self.timelines = {}

    def need_client(self):
        if self.client is None:
            raise RuntimeError("not logged in")
        return self.client

    def record(self, room_id, event):
        timeline = self.timelines.setdefault(room_id, [])
        if any(e["event_id"] == event.event_id for e in timeline):
            return
        if isinstance(event, MESSAGES):
            timeline.append(
                {
                    "event_id": event.event_id,
                    "sender": event.sender,
                    "body": event.body,
                    # None for a message sent in the clear.
                    "session_id": event.session_id if event.decrypted else None,
                }
            )
        elif isinstance(event, MegolmEvent):
            timeline.append(
                {
                    "event_id": event.event_id,
                    "sender": event.sender,
                    "session_id": event.session_id,
                    "event": event,
                }
            )

    def retry_undecrypted(self):
        """Events that arrived before their room key: try again now that to-device was handled."""
        client = self.need_client()
        # nio warned when each event first failed; the retries at every sync need not repeat it.
        logging.disable(logging.WARNING)
        try:
            for timeline in self.timelines.values():
                for entry in timeline:
                    event = entry.get("event")
                    if event is None:
                        continue
                    try:
                        decrypted = client.decrypt_event(event)
                    except EncryptionError:
                        continue
                    if isinstance(decrypted, MESSAGES):
                        entry.pop("event")
                        entry["body"] = decrypted.body
        finally:
            logging.disable(logging.NOTSET)

    async def sync_once(self, timeout_ms):
        client = self.need_client()
        response = checked(await client.sync(timeout=timeout_ms, full_state=client.next_batch is None))
        for room_id, room in response.rooms.join.items():
            for event in room.timeline.events:
                self.record(room_id, event)
        await self.housekeeping()
        self.retry_undecrypted()
        return response

    async def housekeeping(self):
        """What nio's sync_forever does between syncs: to-device out, and key upload/query/claim."""
        client = self.need_client()
        checked(await client.send_to_device_messages(), allow_list=True)
        if client.should_upload_keys:
            checked(await client.keys_upload())
        if client.should_query_keys:
            checked(await client.keys_query())
        if client.should_claim_keys:
            checked(await client.keys_claim(client.get_users_for_key_claiming()))

    async def close(self):
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.store_dir is not None:
            shutil.rmtree(self.store_dir, ignore_errors=True)
            self.store_dir = None


person = Person()


def checked(response, allow_list=False):
    if allow_list and isinstance(response, list):
        for item in response:
            checked(item)
        return response
    if isinstance(response, ErrorResponse):
        raise RuntimeError("%s: %s" % (type(response).__name__, response))
    return response


def run(coro):
    return loop.run_until_complete(coro)


@ops.op("login")
def login(req):
    if person.client is not None:
        raise RuntimeError("already logged in")
    user = req["user"]
    server_name = req.get("server_name", "localhost")
    user_id = user if user.startswith("@") else "@%s:%s" % (user, server_name)
    person.store_dir = tempfile.mkdtemp(prefix="olmo-nio-person-")
    config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True)
    client = AsyncClient(req["base_url"], user_id, store_path=person.store_dir, config=config)
    person.client = client

    async def go():
        checked(await client.login(req["password"], device_name=req.get("device_name", "nio person")))
        if client.should_upload_keys:
            checked(await client.keys_upload())
        await person.sync_once(0)

    run(go())
    keys = client.olm.account.identity_keys
    return {
        "user_id": client.user_id,
        "device_id": client.device_id,
        "ed25519": keys["ed25519"],
        "curve25519": keys["curve25519"],
    }


@ops.op("create_room")
def create_room(req):
    client = person.need_client()
    initial_state = []
    if req.get("encrypted", True):
        initial_state.append(
            {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}
        )

    async def go():
        response = checked(
            await client.room_create(
                name=req.get("name"), invite=req.get("invite", []), initial_state=initial_state
            )
        )
        await person.sync_once(0)
        return response.room_id

    return {"room_id": run(go())}


@ops.op("join")
def join(req):
    client = person.need_client()

    async def go():
        checked(await client.join(req["room_id"]))
        await person.sync_once(0)

    run(go())
    return {}


@ops.op("invite")
def invite(req):
    client = person.need_client()
    run(_checked_call(client.room_invite(req["room_id"], req["user_id"])))
    return {}


@ops.op("leave")
def leave(req):
    client = person.need_client()

    async def go():
        checked(await client.room_leave(req["room_id"]))
        await person.sync_once(0)

    run(go())
    return {}


async def _checked_call(coro):
    return checked(await coro)


@ops.op("send")
def send(req):
    client = person.need_client()
    room_id = req["room_id"]
    content = {"msgtype": req.get("msgtype", "m.text"), "body": req["body"]}

    async def go():
        if room_id not in client.rooms:
            await person.sync_once(0)
        await person.housekeeping()
        response = checked(
            await client.room_send(room_id, "m.room.message", content, ignore_unverified_devices=True)
        )
        return response.event_id

    return {"event_id": run(go())}


@ops.op("sync")
def sync(req):
    response = run(person.sync_once(int(req.get("timeout_ms", 0))))
    return {"next_batch": response.next_batch}


def entries_since(room_id, since):
    timeline = person.timelines.get(room_id, [])
    if since:
        ids = [e["event_id"] for e in timeline]
        if since not in ids:
            raise ValueError("event %s not seen in %s" % (since, room_id))
        timeline = timeline[ids.index(since) + 1:]
    return timeline


@ops.op("messages")
def messages(req):
    person.need_client()
    decrypted, undecryptable = [], []
    for entry in entries_since(req["room_id"], req.get("since")):
        if "body" in entry:
            decrypted.append({k: entry[k] for k in ("sender", "body", "event_id", "session_id")})
        else:
            undecryptable.append({k: entry[k] for k in ("sender", "session_id", "event_id")})
    return {"messages": decrypted, "undecryptable": undecryptable}


@ops.op("wait_for")
def wait_for(req):
    person.need_client()
    room_id, body = req["room_id"], req["body"]
    deadline = time.monotonic() + float(req.get("timeout_s", 20))

    def found():
        for entry in person.timelines.get(room_id, []):
            if entry.get("body") == body:
                return {k: entry[k] for k in ("sender", "body", "event_id", "session_id")}
        return None

    while True:
        hit = found()
        if hit is not None:
            return hit
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pending = [e["event_id"] for e in person.timelines.get(room_id, []) if "event" in e]
            raise TimeoutError("no message %r decrypted in %s (undecryptable: %s)" % (body, room_id, pending))
        run(person.sync_once(int(min(remaining, 2.0) * 1000)))


@ops.op("devices")
def devices(req):
    client = person.need_client()
    found = []
    for device in client.device_store.active_user_devices(req["user_id"]):
        found.append({"device_id": device.id, "ed25519": device.ed25519, "curve25519": device.curve25519})
    return {"devices": found}


@ops.op("export_keys")
def export_keys(req):
    client = person.need_client()
    run(client.export_keys(req["path"], req["passphrase"]))
    return {}


@ops.op("import_keys")
def import_keys(req):
    client = person.need_client()
    run(client.import_keys(req["path"], req["passphrase"]))
    person.retry_undecrypted()
    return {}


@ops.op("dump_messages")
def dump_messages(req):
    """Pages /messages forward from the room's start over plain HTTP: the events exactly as the
    server gives them (nio would replace the encrypted ones it decrypts)."""
    client = person.need_client()
    room = urllib.parse.quote(req["room_id"], safe="")
    chunk, start, token = [], None, None
    while True:
        query = {"dir": "f", "limit": "500"}
        if token:
            query["from"] = token
        url = "%s/_matrix/client/v3/rooms/%s/messages?%s" % (
            client.homeserver, room, urllib.parse.urlencode(query))
        request = urllib.request.Request(url, headers={"Authorization": "Bearer " + client.access_token})
        with urllib.request.urlopen(request, timeout=30) as response:
            page = json.loads(response.read())
        start = start or page.get("start")
        chunk.extend(page.get("chunk", []))
        if not page.get("end") or not page.get("chunk"):
            break
        token = page["end"]
    with open(req["path"], "w") as f:
        json.dump({"chunk": chunk, "start": start, "end": token}, f)
    return {"events": len(chunk)}


@ops.op("logout")
def logout(req):
    client = person.need_client()
    run(_checked_call(client.logout()))
    run(person.close())
    return {}


def main():
    try:
        return ops.serve()
    finally:
        run(person.close())
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
