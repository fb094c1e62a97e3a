import type { JsStoreBackend, ScanRange, ScannedRecord, StoreConflict, StoreWrite, StoredRecord } from '../pkg/olmo_wasm.js';

/** A store for Node on one JSON file, replaced atomically at each commit (one process at a time). */
export class JsonFileStore implements JsStoreBackend {
  constructor(path: string);
  get(table: string, key: Uint8Array): Promise<StoredRecord | null>;
  getMany(table: string, keys: Uint8Array[]): Promise<(StoredRecord | null)[]>;
  scan(table: string, range: ScanRange, limit: number): Promise<ScannedRecord[]>;
  commit(writes: StoreWrite[]): Promise<StoreConflict | null>;
}
