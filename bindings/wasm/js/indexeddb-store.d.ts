import type { JsStoreBackend, ScanRange, ScannedRecord, StoreConflict, StoreWrite, StoredRecord } from '../pkg/olmo_wasm.js';

/** A store on IndexedDB: one strict-durability readwrite transaction per commit; tabs share it safely. */
export class IndexedDbStore implements JsStoreBackend {
  static open(name: string, factory?: IDBFactory): Promise<IndexedDbStore>;
  close(): void;
  get(table: string, key: Uint8Array): Promise<StoredRecord | null>;
  getMany(table: string, keys: Uint8Array[]): Promise<(StoredRecord | null)[]>;
  scan(table: string, range: ScanRange, limit: number): Promise<ScannedRecord[]>;
  commit(writes: StoreWrite[]): Promise<StoreConflict | null>;
}
