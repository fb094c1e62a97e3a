// A homeserver in memory, as much of one as the Matrix machine needs (key uploads, device
// queries, one-time key claims, to-device delivery), and a client driving an olmo machine.

import com.google.gson.JsonArray
import com.google.gson.JsonObject
import com.google.gson.JsonParser
import org.olmo.*

const val ENCRYPTION = """{"algorithm":"m.megolm.v1.aes-sha2"}"""

class Homeserver {
    private val deviceKeys = LinkedHashMap<Pair<String, String>, JsonObject>()
    private val oneTimeKeys = HashMap<Pair<String, String>, ArrayDeque<Pair<String, JsonObject>>>()
    val toDevice = HashMap<Pair<String, String>, JsonArray>()
    val changed = HashMap<Pair<String, String>, MutableSet<String>>()

    fun join(user: String, device: String) { changed.getOrPut(user to device) { HashSet() } }

    fun otkCount(user: String, device: String) = oneTimeKeys[user to device]?.size ?: 0

    fun handle(user: String, device: String, path: String, body: JsonObject): JsonObject {
        val name = user to device
        val response = JsonObject()
        when {
            path.endsWith("/keys/upload") -> {
                body.getAsJsonObject("device_keys")?.let { deviceKeys[name] = it; changed.values.forEach { s -> s.add(user) } }
                body.getAsJsonObject("one_time_keys")?.entrySet()?.forEach { (id, key) ->
                    oneTimeKeys.getOrPut(name) { ArrayDeque() }.addLast(id to key.asJsonObject)
                }
                val counts = JsonObject().apply { addProperty("signed_curve25519", otkCount(user, device)) }
                response.add("one_time_key_counts", counts)
            }
            path.endsWith("/keys/query") -> {
                val listed = JsonObject()
                for (queried in body.getAsJsonObject("device_keys").keySet()) {
                    val devices = JsonObject()
                    deviceKeys.filterKeys { it.first == queried }.forEach { (k, v) -> devices.add(k.second, v) }
                    listed.add(queried, devices)
                }
                response.add("device_keys", listed)
                response.add("failures", JsonObject())
            }
            path.endsWith("/keys/claim") -> {
                val claimed = JsonObject()
                for ((claimUser, devices) in body.getAsJsonObject("one_time_keys").entrySet()) {
                    val perDevice = JsonObject()
                    for (claimDevice in devices.asJsonObject.keySet()) {
                        oneTimeKeys[claimUser to claimDevice]?.removeFirstOrNull()?.let { (id, key) ->
                            perDevice.add(claimDevice, JsonObject().apply { add(id, key) })
                        }
                    }
                    claimed.add(claimUser, perDevice)
                }
                response.add("one_time_keys", claimed)
                response.add("failures", JsonObject())
            }
            path.contains("/sendToDevice/") -> {
                val eventType = path.split("/").let { it[it.size - 2] }
                for ((toUser, devices) in body.getAsJsonObject("messages").entrySet()) {
                    for ((toDevice, content) in devices.asJsonObject.entrySet()) {
                        val event = JsonObject().apply {
                            addProperty("type", eventType); addProperty("sender", user); add("content", content)
                        }
                        this.toDevice.getOrPut(toUser to toDevice) { JsonArray() }.add(event)
                    }
                }
            }
            else -> error("the harness does not serve $path")
        }
        return response
    }
}

class Client(val server: Homeserver, store: OlmoStore, val user: String, val device: String, key: ByteArray = ByteArray(32)) {
    var machine: MatrixMachine
    private var sent = 0

    init {
        server.join(user, device)
        machine = MatrixMachine.open(store, key, user, device)
        flush()
    }

    private fun send(request: MatrixRequest) {
        val response = server.handle(user, device, request.path, JsonParser.parseString(request.body).asJsonObject)
        machine.markRequestAsSent(request.id, response.toString())
    }

    fun flush() {
        repeat(10) {
            val requests = machine.outgoingRequests()
            if (requests.isEmpty()) return
            requests.forEach { send(it) }
        }
        error("requests kept coming")
    }

    fun sync(): List<ToDeviceOutcome> {
        val events = server.toDevice.remove(user to device) ?: JsonArray()
        val changed = server.changed.put(user to device, HashSet())?.toList() ?: emptyList()
        val outcomes = machine.receiveSyncChanges(events.toString(), changed, emptyList(), server.otkCount(user, device).toULong(), null)
        flush()
        return outcomes
    }

    fun share(room: String, members: List<String>): RoomKeyShare {
        machine.updateTrackedUsers(members)
        flush()
        machine.missingSessions(members)?.let { send(it) }
        val share = machine.shareRoomKey(room, members, ENCRYPTION)
        flush()
        return share
    }

    fun sendText(room: String, body: String): String {
        val content = JsonObject().apply { addProperty("msgtype", "m.text"); addProperty("body", body) }
        val encrypted = machine.encryptRoomEvent(room, "m.room.message", content.toString(), ENCRYPTION)
        sent += 1
        return JsonObject().apply {
            addProperty("type", "m.room.encrypted"); addProperty("sender", user)
            addProperty("event_id", "\$$device-$sent"); addProperty("origin_server_ts", 1_763_700_000_000L + sent)
            add("content", JsonParser.parseString(encrypted))
        }.toString()
    }

    fun read(room: String, event: String): String =
        machine.decryptRoomEvent(room, event).use { JsonParser.parseString(it.content()).asJsonObject["body"].asString }
}
