import type { JsStoreBackend, ScanRange, ScannedRecord, StoreConflict, StoreWrite, StoredRecord } from '../pkg/olmo_wasm.js';

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
