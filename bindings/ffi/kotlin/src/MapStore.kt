// A store written in Kotlin over plain maps: what an Android app hands olmo in place of its own
// database (OlmoStore.foreign). One lock makes each commit atomic; two handles share the maps.

import org.olmo.*

class MapStore(private val tables: MutableMap<String, java.util.TreeMap<Key, StoreRecord>> = HashMap()) : StoreBackend {
    /** Byte-string keys ordered bytewise (unsigned), as the contract requires. */
    class Key(val bytes: ByteArray) : Comparable<Key> {
        override fun compareTo(other: Key): Int = java.util.Arrays.compareUnsigned(bytes, other.bytes)
        override fun equals(other: Any?) = other is Key && bytes.contentEquals(other.bytes)
        override fun hashCode() = bytes.contentHashCode()
    }

    /** A second handle to the same maps (a second connection to one database). */
    fun handle() = MapStore(tables)

    private fun table(name: String) = tables.getOrPut(name) { java.util.TreeMap() }

    override fun get(table: String, key: ByteArray): StoreRecord? = synchronized(tables) { table(table)[Key(key)] }

    override fun getMany(table: String, keys: List<ByteArray>): List<StoreRecord?> =
        synchronized(tables) { keys.map { table(table)[Key(it)] } }

    override fun scan(table: String, range: StoreKeyRange, limit: UInt): List<StoreEntry> = synchronized(tables) {
        val all = table(table)
        val from: java.util.NavigableMap<Key, StoreRecord> = when (val start = range.start) {
            is KeyBound.Included -> all.tailMap(Key(start.key), true)
            is KeyBound.Excluded -> all.tailMap(Key(start.key), false)
            is KeyBound.Unbounded -> all
        }
        val end = range.end
        from.entries.asSequence()
            .takeWhile {
                when (end) {
                    is KeyBound.Included -> it.key <= Key(end.key)
                    is KeyBound.Excluded -> it.key < Key(end.key)
                    is KeyBound.Unbounded -> true
                }
            }
            .take(minOf(limit.toLong(), Int.MAX_VALUE.toLong()).toInt())
            .map { StoreEntry(it.key.bytes, it.value) }
            .toList()
    }

    override fun commit(writes: List<StoreWrite>) = synchronized(tables) {
        for (write in writes) {
            val found = table(write.table)[Key(write.key)]?.version
            if (found != write.expectedVersion) {
                throw StoreFailure.Conflict(write.table, write.key, write.expectedVersion, found)
            }
        }
        for (write in writes) {
            val value = write.value
            if (value == null) {
                table(write.table).remove(Key(write.key))
            } else {
                table(write.table)[Key(write.key)] = StoreRecord((write.expectedVersion ?: 0UL) + 1UL, value)
            }
        }
    }
}

/** The same maps behind `suspend` methods (OlmoStore.foreignAsync), as an app on an async
 *  database API writes its store; each method suspends once before answering. */
class AsyncMapStore(private val inner: MapStore = MapStore()) : AsyncStoreBackend {
    fun handle() = AsyncMapStore(inner.handle())

    override suspend fun get(table: String, key: ByteArray): StoreRecord? {
        kotlinx.coroutines.yield()
        return inner.get(table, key)
    }

    override suspend fun getMany(table: String, keys: List<ByteArray>): List<StoreRecord?> {
        kotlinx.coroutines.yield()
        return inner.getMany(table, keys)
    }

    override suspend fun scan(table: String, range: StoreKeyRange, limit: UInt): List<StoreEntry> {
        kotlinx.coroutines.yield()
        return inner.scan(table, range, limit)
    }

    override suspend fun commit(writes: List<StoreWrite>) {
        kotlinx.coroutines.yield()
        inner.commit(writes)
    }
}
