// Tests for the generated Swift bindings (Sources/Olmo.swift), for a machine with a Swift
// toolchain: build libolmo_ffi for the target, put Sources/ and this file in a package whose
// OlmoFFI module uses Sources/OlmoFFI.modulemap, and run `swift test`. Not compiled here: this
// project's CI has no Swift toolchain (see ../README.md).

import Foundation
import XCTest

@testable import Olmo

/// An app store over dictionaries, the Swift counterpart of the Kotlin and Python test stores.
final class MapStore: StoreBackend, @unchecked Sendable {
    private final class Tables { var records: [String: [Data: StoreRecord]] = [:] }
    private let tables: Tables
    private let lock: NSLock

    init() { tables = Tables(); lock = NSLock() }
    private init(sharing other: MapStore) { tables = other.tables; lock = other.lock }
    func handle() -> MapStore { MapStore(sharing: self) }

    func get(table: String, key: Data) throws -> StoreRecord? {
        lock.lock(); defer { lock.unlock() }
        return tables.records[table]?[key]
    }

    func getMany(table: String, keys: [Data]) throws -> [StoreRecord?] {
        lock.lock(); defer { lock.unlock() }
        return keys.map { tables.records[table]?[$0] }
    }

    func scan(table: String, range: StoreKeyRange, limit: UInt32) throws -> [StoreEntry] {
        lock.lock(); defer { lock.unlock() }
        let before = { (a: Data, b: Data) in a.lexicographicallyPrecedes(b) }
        let keys = (tables.records[table] ?? [:]).keys.sorted(by: before).filter { key in
            let above: Bool
            switch range.start {
            case .included(let start): above = !before(key, start)
            case .excluded(let start): above = before(start, key)
            case .unbounded: above = true
            }
            let below: Bool
            switch range.end {
            case .included(let end): below = !before(end, key)
            case .excluded(let end): below = before(key, end)
            case .unbounded: below = true
            }
            return above && below
        }
        return keys.prefix(Int(limit)).map { StoreEntry(key: $0, record: tables.records[table]![$0]!) }
    }

    func commit(writes: [StoreWrite]) throws {
        lock.lock(); defer { lock.unlock() }
        for write in writes {
            let found = tables.records[write.table]?[write.key]?.version
            if found != write.expectedVersion {
                throw StoreFailure.Conflict(
                    table: write.table, key: write.key,
                    expectedVersion: write.expectedVersion, foundVersion: found)
            }
        }
        for write in writes {
            if let value = write.value {
                let version = (write.expectedVersion ?? 0) + 1
                tables.records[write.table, default: [:]][write.key] = StoreRecord(version: version, value: value)
            } else {
                tables.records[write.table]?[write.key] = nil
            }
        }
    }
}

/// The same dictionaries behind `async` methods, as an app on an async database API writes its
/// store; each method yields once before answering.
final class AsyncMapStore: AsyncStoreBackend, @unchecked Sendable {
    private let inner: MapStore
    init(_ inner: MapStore = MapStore()) { self.inner = inner }
    func handle() -> AsyncMapStore { AsyncMapStore(inner.handle()) }

    func get(table: String, key: Data) async throws -> StoreRecord? {
        await Task.yield()
        return try inner.get(table: table, key: key)
    }

    func getMany(table: String, keys: [Data]) async throws -> [StoreRecord?] {
        await Task.yield()
        return try inner.getMany(table: table, keys: keys)
    }

    func scan(table: String, range: StoreKeyRange, limit: UInt32) async throws -> [StoreEntry] {
        await Task.yield()
        return try inner.scan(table: table, range: range, limit: limit)
    }

    func commit(writes: [StoreWrite]) async throws {
        await Task.yield()
        try inner.commit(writes: writes)
    }
}

final class OlmoTests: XCTestCase {
    func testOlmConversation() throws {
        let alice = OlmAccount()
        let bob = OlmAccount()
        bob.generateOneTimeKeys(count: 1)
        let outbound = try alice.createOutboundSession(
            identityKey: bob.curve25519Key(), oneTimeKey: bob.oneTimeKeys().values.first!)
        let first = try outbound.encrypt(plaintext: Data("Hello Bob".utf8))
        XCTAssertEqual(outbound.messageType(), 0)
        let created = try bob.createInboundSession(identityKey: alice.curve25519Key(), ciphertext: first)
        XCTAssertEqual(created.plaintext(), Data("Hello Bob".utf8))
        let inbound = created.session()
        let reply = try inbound.encrypt(plaintext: Data("Hi Alice".utf8))
        XCTAssertEqual(
            try outbound.decrypt(messageType: inbound.messageType(), ciphertext: reply), Data("Hi Alice".utf8))

        let key = Data(repeating: 7, count: 32)
        let restored = try OlmSession.restore(blob: try inbound.save(key: key), key: key)
        XCTAssertEqual(restored.sessionId(), outbound.sessionId())
    }

    func testMegolmConversationAndBacklog() throws {
        let outbound = OutboundGroupSession()
        let inbound = try InboundGroupSession(sessionKey: outbound.sessionKey())
        let messages = try (0..<10).map { try outbound.encrypt(plaintext: Data("event \($0)".utf8)) }
        for (index, message) in messages.enumerated() {
            XCTAssertEqual(try megolmMessageIndex(message: message), UInt32(index))
            XCTAssertEqual(try inbound.decrypt(message: message), Data("event \(index)".utf8))
        }
        let backlog = try InboundGroupSession.importSession(exportedKey: inbound.exportAtFirstKnownIndex())
        XCTAssertEqual(backlog.decryptBacklog(messages: messages).compactMap { $0 }.count, 10)
    }

    func testKeyExportRoundTrip() throws {
        let outbound = OutboundGroupSession()
        let session = try InboundGroupSession(sessionKey: outbound.sessionKey())
        let message = try outbound.encrypt(plaintext: Data("exported".utf8))
        let key = try ExportedRoomKey.fromSession(
            roomId: "!room:example.org", senderKey: OlmAccount().curve25519Key(), session: session)
        let file = encryptRoomKeyExport(keys: [key], passphrase: "passphrase", rounds: 1000)
        let keys = try decryptRoomKeyExport(text: file, passphrase: "passphrase")
        XCTAssertEqual(keys.count, 1)
        XCTAssertEqual(try keys[0].toSession().decrypt(message: message), Data("exported".utf8))
        XCTAssertThrowsError(try decryptRoomKeyExport(text: file, passphrase: "wrong")) { error in
            guard case OlmoError.KeyExport = error else { return XCTFail("\(error)") }
        }
    }

    func testTypedErrorsHoldNoPlaintext() throws {
        let outbound = OutboundGroupSession()
        let early = try outbound.encrypt(plaintext: Data("secret words".utf8))
        let late = try InboundGroupSession(sessionKey: outbound.sessionKey())
        XCTAssertThrowsError(try late.decrypt(message: early)) { error in
            guard case OlmoError.Decrypt(let reason) = error else { return XCTFail("\(error)") }
            XCTAssertFalse(reason.contains("secret words"))
        }
    }

    func testSwiftStorePassesConformance() throws {
        let store = MapStore()
        let passed = try runStoreConformance(first: store, second: store.handle())
        XCTAssertEqual(Int(passed), storeConformanceChecks().count)
        let async = AsyncMapStore()
        let asyncPassed = try runAsyncStoreConformance(first: async, second: async.handle())
        XCTAssertEqual(Int(asyncPassed), storeConformanceChecks().count)
    }

    func testMachineOpensOnEveryStoreKind() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let stores = [
            OlmoStore.memory(),
            try OlmoStore.sqlite(path: directory.appendingPathComponent("olmo.sqlite").path),
            OlmoStore.foreign(backend: MapStore()),
            OlmoStore.foreignAsync(backend: AsyncMapStore()),
        ]
        for store in stores {
            let key = Data(repeating: 1, count: 32)
            let machine = try MatrixMachine.open(store: store, storageKey: key, userId: "@a:example.org", deviceId: "A")
            let requests = try machine.outgoingRequests()
            XCTAssertTrue(requests.contains { $0.path.hasSuffix("/keys/upload") })
            let again = try MatrixMachine.open(store: store, storageKey: key, userId: "@a:example.org", deviceId: "A")
            XCTAssertEqual(again.curve25519Key(), machine.curve25519Key())
        }
    }
}
