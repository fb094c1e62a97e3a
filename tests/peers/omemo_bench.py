"""Timing ops for olmo's XMPP machine bench (stores/sqlite/benches/xmpp.rs): python-omemo's
SessionManager doing the bench's operations, timed inside Python so that no IPC is measured.

  sm_bench {operation, iterations, [senders], [per_sender]}  -> {seconds_per_op, messages}

Each operation's world (managers sharing omemo_peer's in-memory server, JIDs under
`bench-<operation>`) is made on first use and kept; only the operation itself is timed, setup and
state resets are not.  XML is part of the work, as for a client: encryption ends with the
`<encrypted>` element serialized, decryption starts from its text.
  encrypt     one message to 3 JIDs of 3 devices each (sessions built beforehand, not confirmed)
  decrypt     one message on a confirmed session; the chain is reset every 40 messages (the
              sender reads a reply), so no heartbeat is due
  build       a first message to one JID of 10 devices: 10 sessions built from their bundles
              (downloaded and parsed by the manager) and the message encrypted to them
  catch_up    an archive of `senders` x `per_sender` messages (round robin, confirmed sessions)
              decrypted by one device, restored to its state before each run
"""

import itertools
import time
import xml.etree.ElementTree as ET

import omemo

BODY = ("Are we still on for lunch tomorrow? I booked a table at the place near the station for "
        "half past twelve.")
CHAIN = 40  # below the heartbeat threshold (53)
COUNTER = itertools.count()


def install(peer):
    """Registers `sm_bench` on the omemo_peer module `peer`."""
    bench = _Bench(peer)
    peer.op("sm_bench")(bench.op)


class _Bench:
    def __init__(self, peer):
        self.peer = peer
        self.worlds = {}

    # ---- helpers ------------------------------------------------------------------------------

    def plaintexts(self, sender, to):
        envelope = ("<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>%s"
                    "</body></content><rpad>Xq7LmN2pR9sT4vW8yZ1bC5dF3gH6jK0</rpad>"
                    "<time stamp='2025-01-01T12:00:00Z'/><to jid='%s'/><from jid='%s'/>"
                    "</envelope>" % (BODY, to, sender))
        fls = self.peer.FLAVOURS
        return {fls["omemo2"].uri: envelope.encode(), fls["omemo03"].uri: BODY.encode()}

    async def manager(self, jid):
        peer = self.peer
        name = "bench/%d" % next(COUNTER)
        cls = type("BenchSessionManager_%s" % name.replace("/", "_"), (peer.PeerSessionManager,),
                   {"own_jid": jid, "outbox": []})
        storage = peer.MemoryStorage()
        backends = [fl.backend(storage) for fl in peer.FLAVOURS.values()]
        sm = await cls.create(backends, storage, jid, None, "undecided")
        await sm.after_history_sync()
        peer.MANAGERS[name] = sm  # shut down at exit with the others
        return sm

    async def refresh(self, sm, jids):
        for jid in jids:
            for fl in self.peer.FLAVOURS.values():
                await sm.refresh_device_list(fl.uri, jid)

    def serialize(self, messages):
        peer = self.peer
        return [(peer.BY_URI[m.namespace], peer.to_xml(peer.BY_URI[m.namespace].etree.serialize_message(m),
                                                       peer.BY_URI[m.namespace]))
                for m in messages]

    async def encrypt_xml(self, sender, to_jid):
        messages, errors = await sender.encrypt(frozenset([to_jid]),
                                                self.plaintexts(sender.own_jid, to_jid))
        if errors:
            raise RuntimeError("encryption skipped devices: %r" % (errors,))
        return self.serialize(messages)

    async def decrypt_xml(self, sm, from_jid, fl, xml):
        element = ET.fromstring(xml)
        if fl.short == "omemo2":
            message = fl.etree.parse_message(element, from_jid)
        else:
            message = await fl.etree.parse_message(element, from_jid, sm.own_jid, sm)
        plaintext, _, _ = await sm.decrypt(message)
        return plaintext

    async def confirm(self, sender, receiver):
        """A first message and the receiver's empty reply: the sender's session is confirmed."""
        [(fl, xml)] = await self.encrypt_xml(sender, receiver.own_jid)
        await self.decrypt_xml(receiver, sender.own_jid, fl, xml)
        await self.deliver_outbox(receiver, sender)

    async def deliver_outbox(self, sender, receiver):
        peer = self.peer
        for item in list(sender.outbox):
            fl = peer.flavour(item["ns"])
            await self.decrypt_xml(receiver, sender.own_jid, fl, item["encrypted_xml"])
        sender.outbox.clear()

    async def reset_chain(self, sender, receiver):
        """The receiver answers, the sender reads the answer: the sender's next message opens a
        new chain."""
        for fl, xml in await self.encrypt_xml(receiver, sender.own_jid):
            await self.decrypt_xml(sender, receiver.own_jid, fl, xml)

    # ---- worlds -------------------------------------------------------------------------------

    async def world(self, operation, req):
        key = (operation, req.get("senders"), req.get("per_sender"))
        if key not in self.worlds:
            self.worlds[key] = await getattr(self, "make_" + operation)(req)
        return self.worlds[key]

    async def make_encrypt(self, req):
        sender = await self.manager("bench-encrypt-alice@example.org")
        jids = ["bench-encrypt-%d@example.org" % i for i in range(3)]
        for jid in jids:
            for _ in range(3):
                await self.manager(jid)
        await self.refresh(sender, jids + [sender.own_jid])
        await sender.encrypt(frozenset(jids), self.plaintexts(sender.own_jid, jids[0]))
        return {"sender": sender, "jids": frozenset(jids)}

    async def make_decrypt(self, req):
        sender = await self.manager("bench-decrypt-alice@example.org")
        receiver = await self.manager("bench-decrypt-bob@example.org")
        await self.refresh(sender, [receiver.own_jid])
        await self.refresh(receiver, [sender.own_jid])
        await self.confirm(sender, receiver)
        return {"sender": sender, "receiver": receiver}

    async def make_build(self, req):
        jid = "bench-build-bob@example.org"
        for _ in range(10):
            await self.manager(jid)
        return {"jid": jid}

    async def make_catch_up(self, req):
        receiver = await self.manager("bench-catch-up-bob-%d@example.org" % next(COUNTER))
        senders = []
        for i in range(int(req["senders"])):
            sender = await self.manager("bench-catch-up-%d-%d@example.org" % (i, next(COUNTER)))
            await self.refresh(sender, [receiver.own_jid])
            await self.refresh(receiver, [sender.own_jid])
            await self.confirm(sender, receiver)
            senders.append(sender)
        archive = []
        for _ in range(int(req["per_sender"])):
            for sender in senders:
                [(fl, xml)] = await self.encrypt_xml(sender, receiver.own_jid)
                archive.append((sender.own_jid, fl, xml))
        return {"receiver": receiver, "archive": archive,
                "snapshot": dict(receiver._SessionManager__storage.data)
                if hasattr(receiver, "_SessionManager__storage") else None}

    # ---- timed runs ---------------------------------------------------------------------------

    async def run_encrypt(self, w, n):
        sender, jids = w["sender"], w["jids"]
        plaintexts = self.plaintexts(sender.own_jid, "bench-encrypt-0@example.org")
        start = time.perf_counter()
        for _ in range(n):
            messages, _ = await sender.encrypt(jids, plaintexts)
            out = self.serialize(messages)
        elapsed = time.perf_counter() - start
        return elapsed, len(out)

    async def run_decrypt(self, w, n):
        sender, receiver = w["sender"], w["receiver"]
        elapsed, done = 0.0, 0
        while done < n:
            batch = []
            for _ in range(min(CHAIN, n - done)):
                [(fl, xml)] = await self.encrypt_xml(sender, receiver.own_jid)
                batch.append((fl, xml))
            start = time.perf_counter()
            for fl, xml in batch:
                if await self.decrypt_xml(receiver, sender.own_jid, fl, xml) is None:
                    raise RuntimeError("decrypted nothing")
            elapsed += time.perf_counter() - start
            done += len(batch)
            await self.reset_chain(sender, receiver)
        return elapsed, 1

    async def run_build(self, w, n):
        elapsed = 0.0
        for _ in range(n):
            sender = await self.manager("bench-build-alice-%d@example.org" % next(COUNTER))
            await self.refresh(sender, [w["jid"], sender.own_jid])
            start = time.perf_counter()
            out = await self.encrypt_xml(sender, w["jid"])
            elapsed += time.perf_counter() - start
            await sender.shutdown()
        return elapsed, len(out)

    async def run_catch_up(self, w, n):
        receiver, storage = w["receiver"], w["receiver"]._SessionManager__storage
        elapsed = 0.0
        for _ in range(n):
            storage.data = dict(w["snapshot"])
            storage._Storage__cache = {}
            start = time.perf_counter()
            for from_jid, fl, xml in w["archive"]:
                if await self.decrypt_xml(receiver, from_jid, fl, xml) is None:
                    raise RuntimeError("decrypted nothing")
            elapsed += time.perf_counter() - start
            receiver.outbox.clear()
        return elapsed, len(w["archive"])

    def op(self, req):
        operation = req["operation"]
        if operation not in ("encrypt", "decrypt", "build", "catch_up"):
            raise ValueError("unknown operation %r" % (operation,))
        n = self.peer._int(req["iterations"], "iterations")
        if n < 1:
            raise ValueError("iterations must be at least 1")

        async def go():
            w = await self.world(operation, req)
            return await getattr(self, "run_" + operation)(w, n)

        elapsed, messages = self.peer.run(go())
        return {"seconds_per_op": elapsed / n, "messages": messages}


__all__ = ["install", "omemo"]
