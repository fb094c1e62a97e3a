#!/usr/bin/env python3
"""Makes a Megolm-encrypted room dump and its key export with the peer (vodozemac-python, which
matrix-nio encrypts with, and nio's own key export writer), for `olmo matrix decrypt`'s tests
and benchmark. Nothing here uses olmo.

    .venv/bin/python3 test-vectors/matrix-dump/make_dump.py OUT_DIR \
        --sessions 10 --events 100 --rooms 2 --shape lines --rounds 1000

writes OUT_DIR/events.<shape> (the dump), OUT_DIR/keys.txt (the key export, passphrase in
$OLMO_PASSPHRASE or "test passphrase") and OUT_DIR/expected.jsonl (per event: event id and
the body it decrypts to, or the reason it must fail).

Shapes: lines (JSON lines of events), array (a JSON array), messages (`/messages` pages, one
per room, each `{"chunk": [...]}` on its own line), sync (one `/sync` response per 1,000
events), admin (the Synapse admin API's `{"chunk": ...}` for all rooms at once).

With --faults, some events are made to fail, each in a known way: a session whose key is not
exported (no_session), a session exported from a later index (unknown_index), a ciphertext
replayed under another event id (replay), a flipped ciphertext byte (bad_signature), and a
plain event among them (unencrypted).
"""

import argparse
import json
import os
import random

import vodozemac
from nio.crypto import key_export

MEGOLM = "m.megolm.v1.aes-sha2"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--rooms", type=int, default=2)
    parser.add_argument("--shape", default="lines",
                        choices=["lines", "array", "messages", "sync", "admin"])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--faults", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    passphrase = os.environ.get("OLMO_PASSPHRASE", "test passphrase")

    senders = [vodozemac.Account() for _ in range(min(args.sessions, 20))]
    sessions = []
    for n in range(args.sessions):
        device = senders[n % len(senders)]
        sessions.append({
            "outbound": vodozemac.GroupSession(),
            "room": "!room%d:example.org" % (n % args.rooms),
            "user": "@user%d:example.org" % (n % len(senders)),
            "device": "DEVICE%d" % (n % len(senders)),
            "sender_key": device.curve25519_key.to_base64(),
            "ed25519": device.ed25519_key.to_base64(),
            "missing": False,
            "late": False,
        })
    if args.faults and args.sessions >= 3:
        sessions[0]["missing"] = True
        sessions[1]["late"] = True

    # Events spread over the sessions in a shuffled order, as a busy room interleaves senders.
    order = [n % args.sessions for n in range(args.events)]
    rng.shuffle(order)
    events, expected = [], []
    for i, n in enumerate(order):
        s = sessions[n]
        # The first message of each session is index 0: the key in the export starts there.
        if not s["late"] and "first_key" not in s:
            s["first_key"] = s["outbound"].session_key
        index = s["outbound"].message_index
        if s["late"] and index == 3:
            s["late_key"] = s["outbound"].session_key
        body = "message %d" % i
        plaintext = json.dumps({"type": "m.room.message", "room_id": s["room"],
                                "content": {"msgtype": "m.text", "body": body}})
        ciphertext = s["outbound"].encrypt(plaintext.encode()).to_base64()
        event = {
            "type": "m.room.encrypted", "event_id": "$event%d" % i, "sender": s["user"],
            "origin_server_ts": 1_700_000_000_000 + i, "room_id": s["room"],
            "content": {"algorithm": MEGOLM, "sender_key": s["sender_key"],
                        "ciphertext": ciphertext, "session_id": s["outbound"].session_id,
                        "device_id": s["device"]},
        }
        reason = "no_session" if s["missing"] else None
        if s["late"] and not reason and index < 3:
            reason = "unknown_index"
        events.append(event)
        expected.append({"event_id": event["event_id"], "body": None if reason else body,
                         "reason": reason})

    if args.faults and events:
        ok = [i for i, e in enumerate(expected) if e["reason"] is None]
        first, second = ok[0], ok[-1]
        replay = json.loads(json.dumps(events[first]))
        replay["event_id"] = "$replay"
        replay["origin_server_ts"] += 1
        flipped = json.loads(json.dumps(events[second]))
        raw = bytearray(vodozemac.MegolmMessage.from_base64(
            flipped["content"]["ciphertext"]).to_bytes())
        raw[10] ^= 1
        flipped["content"]["ciphertext"] = _b64(bytes(raw))
        flipped["event_id"] = "$flipped"
        plain = {"type": "m.room.message", "event_id": "$plain", "sender": "@user0:example.org",
                 "origin_server_ts": 1, "room_id": sessions[0]["room"],
                 "content": {"msgtype": "m.text", "body": "not encrypted"}}
        for event, exp in [(replay, {"event_id": "$replay", "body": None, "reason": "replay"}),
                           (flipped, {"event_id": "$flipped", "body": None,
                                      "reason": "bad_signature"}),
                           (plain, {"event_id": "$plain", "body": "not encrypted",
                                    "reason": "unencrypted"})]:
            events.append(event)
            expected.append(exp)

    keys = []
    for s in sessions:
        if s["missing"]:
            continue
        # A late session's key is the one its sender had after three messages.
        if s["late"] and "late_key" not in s:
            raise SystemExit("--faults needs more events: a late session got fewer than 4")
        inbound = vodozemac.InboundGroupSession(s.get("late_key", s.get("first_key", s["outbound"].session_key)))
        first = inbound.first_known_index
        keys.append({
            "algorithm": MEGOLM, "room_id": s["room"], "sender_key": s["sender_key"],
            "session_id": s["outbound"].session_id,
            "session_key": inbound.export_at(first).to_base64(),
            "sender_claimed_keys": {"ed25519": s["ed25519"]},
            "forwarding_curve25519_key_chain": [],
        })
    key_export.encrypt_and_save(json.dumps(keys).encode(), os.path.join(args.out, "keys.txt"),
                                passphrase, count=args.rounds)
    write_events(os.path.join(args.out, "events." + args.shape), args.shape, events)
    with open(os.path.join(args.out, "expected.jsonl"), "w") as f:
        for exp in expected:
            f.write(json.dumps(exp) + "\n")


def _b64(raw):
    import base64
    return base64.b64encode(raw).decode().rstrip("=")


def write_events(path, shape, events):
    with open(path, "w") as f:
        if shape == "lines":
            for event in events:
                f.write(json.dumps(event) + "\n")
        elif shape == "array":
            json.dump(events, f, indent=1)
        elif shape == "admin":
            json.dump({"chunk": events, "start": "t1", "end": "t2"}, f)
        elif shape == "messages":
            # One page per run of events in the same room, in order; rooms named by the events.
            page = []
            for event in events + [None]:
                if page and (event is None or event["room_id"] != page[-1]["room_id"]):
                    f.write(json.dumps({"chunk": page, "start": "s", "end": "e"}) + "\n")
                    page = []
                if event is not None:
                    page.append(event)
        elif shape == "sync":
            # Each event in its room's timeline, without room_id, as /sync gives them; a new
            # response when the room changes, so the order is kept.
            batch = []
            for event in events + [None]:
                if batch and (event is None or event["room_id"] != batch[-1]["room_id"]):
                    room = batch[0]["room_id"]
                    stripped = [{k: v for k, v in e.items() if k != "room_id"} for e in batch]
                    f.write(json.dumps({"next_batch": "n", "rooms": {"join": {
                        room: {"timeline": {"events": stripped, "limited": False}}}}}) + "\n")
                    batch = []
                if event is not None:
                    batch.append(event)


if __name__ == "__main__":
    main()
