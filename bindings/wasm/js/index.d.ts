export * from '../pkg/olmo_wasm.js';
import type { JsStoreBackend, ScanRange, ScannedRecord, StoreConflict, StoreWrite, StoredRecord } from '../pkg/olmo_wasm.js';

/** What `init` accepts: a URL or path of the `.wasm`, a Response, its bytes, or a compiled module. */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/** Loads the WebAssembly module once; await it before using anything else. */
export function init(input?: InitInput | Promise<InitInput>): Promise<void>;

/** Base class of every olmo error: `kind` is the core's variant (camelCase), `message` its reason. */
export class OlmoError extends Error {
  kind: string;
  [field: string]: unknown;
}
/** A value passed in that the binding cannot use. */
export class ArgumentError extends OlmoError {}
/** A low-level object refused (`decode`, `key`, `decrypt`, `encrypt`, `sessionCreation`, `persist`, `keyExport`, ...). */
export class CryptoError extends OlmoError {}
/** The store failed: `conflict` (with `table`, `key`, `expected`, `found`), `corrupt`, `newerSchema`, `backend`, `invalidBatch`. */
export class StoreError extends OlmoError {}
/** The Matrix machine refused an operation (`json`, `tooLarge`, `wrongAccount`, `corrupt`, `unknownRequest`, `roomNotEncrypted`, ...). */
export class MachineError extends OlmoError {}
/** A room event did not decrypt (`noSession`, `unknownIndex`, `withheld`, `replay`, `badSignature`, `senderMismatch`, `malformed`). */
export class DecryptionError extends OlmoError {}
/** The XMPP machine refused an operation or a message (`stanza`, `badBundle`, `identityChanged`, `decrypt`, ...). */
export class XmppError extends OlmoError {}
/** A store failed the core's conformance suite: `check` and `detail`. */
export class ConformanceError extends OlmoError {
  check: string;
  detail: string;
}

/** A store on Maps, written in JavaScript: the reference for your own `JsStoreBackend`. */
export class MapStore implements JsStoreBackend {
  constructor(tables?: Map<string, Map<string, StoredRecord>>);
  tables: Map<string, Map<string, StoredRecord>>;
  get(table: string, key: Uint8Array): StoredRecord | null;
  getMany(table: string, keys: Uint8Array[]): (StoredRecord | null)[];
  scan(table: string, range: ScanRange, limit: number): ScannedRecord[];
  check(writes: StoreWrite[]): StoreConflict | null;
  apply(writes: StoreWrite[]): void;
  commit(writes: StoreWrite[]): StoreConflict | null;
}

/** A store on IndexedDB: one strict-durability readwrite transaction per commit; tabs share it safely. */
export class IndexedDbStore implements JsStoreBackend {
  static open(name: string, factory?: IDBFactory): Promise<IndexedDbStore>;
  close(): void;
  get(table: string, key: Uint8Array): Promise<StoredRecord | null>;
  getMany(table: string, keys: Uint8Array[]): Promise<(StoredRecord | null)[]>;
  scan(table: string, range: ScanRange, limit: number): Promise<ScannedRecord[]>;
  commit(writes: StoreWrite[]): Promise<StoreConflict | null>;
}
