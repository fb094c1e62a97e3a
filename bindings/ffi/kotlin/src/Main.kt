// The Kotlin suite, run on the JVM against the generated bindings: Olm and Megolm
// conversations, a key export round trip, typed errors, a Kotlin store passing the core's
// conformance suite, the Matrix machine against the harness on every store kind, and two XMPP
// machines through a PEP server. Prints the FFI's own cost per call, then the summary line.

import org.olmo.*

val ROOM = "!room:example.org"
val MEMBERS = listOf("@alice:example.org", "@bob:example.org")

fun check(condition: Boolean, what: () -> String) { if (!condition) throw AssertionError(what()) }

inline fun <reified E : Throwable> expectThrows(block: () -> Unit): E {
    try { block() } catch (e: Throwable) { if (e is E) return e; throw AssertionError("expected ${E::class.simpleName}, got $e") }
    throw AssertionError("expected ${E::class.simpleName}, nothing was thrown")
}

fun olmConversation() {
    OlmAccount().use { alice -> OlmAccount().use { bob ->
        bob.generateOneTimeKeys(1u)
        val outbound = alice.createOutboundSession(bob.curve25519Key(), bob.oneTimeKeys().values.first())
        bob.markKeysAsPublished()
        val first = outbound.encrypt("Hello Bob".toByteArray())
        check(outbound.messageType().toInt() == 0) { "first message is not a pre-key message" }
        val created = bob.createInboundSession(alice.curve25519Key(), first)
        check(String(created.plaintext()) == "Hello Bob") { "wrong first plaintext" }
        val inbound = created.session()
        check(inbound.sessionId() == outbound.sessionId()) { "session ids differ" }
        for (i in 0 until 5) {
            check(String(outbound.decrypt(inbound.messageType(), inbound.encrypt("reply $i".toByteArray()))) == "reply $i") { "reply $i" }
            check(String(inbound.decrypt(outbound.messageType(), outbound.encrypt("more $i".toByteArray()))) == "more $i") { "more $i" }
        }
        val key = ByteArray(32) { it.toByte() }
        val restored = OlmSession.restore(inbound.save(key), key)
        check(String(restored.decrypt(1u, outbound.encrypt("after restore".toByteArray()))) == "after restore") { "restore" }
        val pickled = OlmAccount.fromLibolmPickle(bob.toLibolmPickle("k".toByteArray()), "k".toByteArray())
        check(pickled.ed25519Key() == bob.ed25519Key()) { "libolm pickle round trip" }
    } }
}

fun megolmConversation() {
    OutboundGroupSession().use { outbound ->
        val inbound = InboundGroupSession(outbound.sessionKey())
        val messages = (0 until 20).map { outbound.encrypt("event $it".toByteArray()) }
        messages.forEachIndexed { i, m ->
            check(megolmMessageIndex(m) == i.toUInt()) { "index $i" }
            check(String(inbound.decrypt(m)) == "event $i") { "event $i" }
        }
        val backlog = InboundGroupSession(outbound.sessionKey())
        check(backlog.firstKnownIndex() == 20u) { "late joiner starts at 20" }
        val late = outbound.encrypt("late".toByteArray())
        val fresh = InboundGroupSession.importSession(inbound.exportAtFirstKnownIndex())
        val all = fresh.decryptBacklog(messages + late)
        check(all.map { it?.let(::String) } == (0 until 20).map { "event $it" } + "late") { "backlog" }
        val refused = expectThrows<OlmoException.Decrypt> { backlog.decrypt(messages[0]) }
        check(!refused.toString().contains("event 0")) { "plaintext in an error" }
    }
}

fun keyExportRoundTrip() {
    val outbound = OutboundGroupSession()
    val sender = OlmAccount().curve25519Key()
    val session = InboundGroupSession(outbound.sessionKey())
    val message = outbound.encrypt("exported".toByteArray())
    val file = encryptRoomKeyExport(listOf(ExportedRoomKey.fromSession(ROOM, sender, session)), "passphrase", 1000u)
    check(file.startsWith("-----BEGIN MEGOLM SESSION DATA-----")) { "armour" }
    val keys = decryptRoomKeyExport(file, "passphrase")
    check(keys.size == 1 && keys[0].roomId() == ROOM && keys[0].sessionIdMatches()) { "imported key" }
    check(String(keys[0].toSession().decrypt(message)) == "exported") { "imported session decrypts" }
    val wrong = expectThrows<OlmoException.KeyExport> { decryptRoomKeyExport(file, "wrong") }
    check(wrong.message!!.contains("passphrase")) { "reason: ${wrong.message}" }
}

fun typedErrors() {
    val key = ByteArray(32)
    val blob = OlmAccount().save(key)
    expectThrows<OlmoException.Persist> { OlmAccount.restore(blob, ByteArray(32) { 1 }) }
    expectThrows<OlmoException.Key> { OlmAccount.restore(blob, ByteArray(5)) }
    expectThrows<OlmoException.Decode> { InboundGroupSession(OutboundGroupSession().sessionKey()).decrypt(byteArrayOf(3, 1, 2)) }
}

fun kotlinStoreConformance() {
    val store = MapStore()
    val passed = runStoreConformance(store, store.handle())
    check(passed.toInt() == storeConformanceChecks().size) { "passed $passed" }
    val async = AsyncMapStore()
    val asyncPassed = runAsyncStoreConformance(async, async.handle())
    check(asyncPassed.toInt() == storeConformanceChecks().size) { "async passed $asyncPassed" }
}

fun machinesTalk(kind: String, make: (String) -> OlmoStore) {
    val server = Homeserver()
    val alice = Client(server, make("alice"), "@alice:example.org", "ALICE")
    val bobStore = make("bob")
    val bobKey = ByteArray(32) { 7 }
    val bob = Client(server, bobStore, "@bob:example.org", "BOB", bobKey)
    check(alice.share(ROOM, MEMBERS).withoutSession.isEmpty()) { "$kind: devices left out" }
    check(bob.sync().count { it.kind() == ToDeviceKind.DECRYPTED && it.eventType() == "m.room_key" } == 1) { "$kind: room key" }
    val event = alice.sendText(ROOM, "Hello Bob")
    check(bob.read(ROOM, event) == "Hello Bob") { "$kind: Bob reads" }
    bob.share(ROOM, MEMBERS)
    alice.sync()
    check(alice.read(ROOM, bob.sendText(ROOM, "Hi Alice")) == "Hi Alice") { "$kind: Alice reads" }
    bob.machine.close()
    bob.machine = MatrixMachine.open(bobStore, bobKey, "@bob:example.org", "BOB")
    check(bob.read(ROOM, alice.sendText(ROOM, "after restart")) == "after restart") { "$kind: restart" }
}

fun overheadNanos(): Pair<Double, Double> {
    val session = OutboundGroupSession()
    val direct = session.encrypt("x".toByteArray()).direct()
    fun time(count: Int, call: () -> Unit): Double {
        repeat(count / 10) { call() }
        val start = System.nanoTime()
        repeat(count) { call() }
        return (System.nanoTime() - start).toDouble() / count
    }
    return time(200_000) { session.messageIndex() } to time(200_000) { megolmMessageIndex(direct) }
}

fun main() {
    val tmp = java.nio.file.Files.createTempDirectory("olmo-kotlin")
    val tests = listOf<Pair<String, () -> Unit>>(
        "Olm conversation" to ::olmConversation,
        "Megolm conversation and backlog" to ::megolmConversation,
        "key export round trip" to ::keyExportRoundTrip,
        "typed errors" to ::typedErrors,
        "Kotlin stores (plain and suspend) pass the conformance suite" to ::kotlinStoreConformance,
        "Matrix machines on memory" to { machinesTalk("memory") { OlmoStore.memory() } },
        "Matrix machines on SQLite" to { machinesTalk("sqlite") { OlmoStore.sqlite(tmp.resolve("$it.sqlite").toString()) } },
        "Matrix machines on a Kotlin store" to { machinesTalk("kotlin") { OlmoStore.foreign(MapStore()) } },
        "Matrix machines on a suspend Kotlin store" to { machinesTalk("kotlin-async") { OlmoStore.foreignAsync(AsyncMapStore()) } },
        "XMPP machines on a Kotlin store and memory" to ::xmppMachinesTalk,
    )
    var failed = 0
    val start = System.nanoTime()
    for ((name, test) in tests) {
        try { test(); println("ok    $name") } catch (e: Throwable) { failed += 1; println("FAIL  $name: $e") }
    }
    val (method, function) = overheadNanos()
    println("FFI per-call overhead: %.0f ns (object method), %.0f ns (function with a byte array)".format(method, function))
    val seconds = (System.nanoTime() - start) / 1e9
    println("${tests.size - failed} passed, $failed failed in %.1f s".format(seconds))
    if (failed > 0) kotlin.system.exitProcess(1)
}
