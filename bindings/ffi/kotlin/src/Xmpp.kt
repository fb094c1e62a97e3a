// Two XMPP machines (OMEMO 2 and 0.3 at once) through a server played here: PEP items (device
// lists, bundles) and an archive per account.

import org.olmo.*

val DEVICE_LIST_NODES = setOf("urn:xmpp:omemo:2:devices", "eu.siacs.conversations.axolotl.devicelist")

class XmppServer {
    val pep = LinkedHashMap<Triple<String, String, String>, String>()
    val archive = HashMap<String, MutableList<List<String>>>()
    private var sent = 0

    fun publish(jid: String, items: List<PepItem>) = items.forEach { pep[Triple(jid, it.node, it.itemId)] = it.payload }

    fun send(from: String, to: String, payload: String) {
        sent += 1
        archive.getOrPut(to) { ArrayList() }.add(listOf("msg-$sent", from, to, payload))
    }
}

class XmppDevice(val server: XmppServer, store: OlmoStore, val jid: String) {
    val machine = XmppMachine.open(store, ByteArray(32), jid)
    private var read = 0

    init {
        refresh(listOf(jid))
        server.publish(jid, machine.publish())
    }

    fun refresh(jids: List<String>) {
        for ((item, payload) in server.pep.entries.toList()) {
            if (item.first in jids && item.second in DEVICE_LIST_NODES) machine.receiveDeviceList(item.first, payload)
        }
    }

    fun send(to: String, body: String): EncryptOutcome {
        refresh(listOf(to, jid))
        for (request in machine.bundleRequests(listOf(to))) {
            server.pep[Triple(request.jid, request.node, request.itemId)]?.let { machine.receiveBundle(request.jid, request.deviceId, it) }
        }
        val outcome = machine.encrypt(listOf(to), to, body)
        outcome.stanzas.forEach { server.send(jid, to, it.payload) }
        return outcome
    }

    fun catchUp(): List<String?> {
        val messages = server.archive[jid].orEmpty().drop(read)
        read += messages.size
        return messages.mapNotNull { (id, from, to, payload) ->
            machine.decrypt(from, to, payload, id).use { outcome ->
                outcome.replies().forEach { server.send(jid, it.to, it.payload) }
                if (outcome.hasMessage()) outcome.body() else null
            }
        }
    }
}

fun xmppMachinesTalk() {
    val server = XmppServer()
    val romeo = XmppDevice(server, OlmoStore.foreign(MapStore()), "romeo@montague.example")
    val juliet = XmppDevice(server, OlmoStore.memory(), "juliet@capulet.example")
    val outcome = romeo.send(juliet.jid, "Hi Juliet")
    check(outcome.skipped.isEmpty() && outcome.stanzas.isNotEmpty()) { "skipped ${outcome.skipped}" }
    check(juliet.catchUp() == listOf("Hi Juliet")) { "Juliet reads" }
    juliet.send(romeo.jid, "Hi Romeo")
    check(romeo.catchUp() == listOf("Hi Romeo")) { "Romeo reads" }
}
