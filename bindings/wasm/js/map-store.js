// A JsStoreBackend on Maps: the reference for stores written in JavaScript, and the state a
// file-backed store keeps between writes. Every method is synchronous, so a commit is atomic
// with respect to every other call on the same object.
import { toHex, fromHex, inRange } from './bytes.js';

export class MapStore {
  /** `tables`: Map of table name to Map of hex key to `{ version, value }`. */
  constructor(tables = new Map()) {
    this.tables = tables;
  }

  get(table, key) {
    return this.tables.get(table)?.get(toHex(key)) ?? null;
  }

  getMany(table, keys) {
    return keys.map((key) => this.get(table, key));
  }

  scan(table, range, limit) {
    const records = this.tables.get(table);
    if (!records) return [];
    const keys = [...records.keys()].filter((k) => inRange(k, range)).sort();
    return keys.slice(0, limit).map((k) => ({ key: fromHex(k), ...records.get(k) }));
  }

  /** The first write whose expectation fails, as a conflict; `null` if all hold. */
  check(writes) {
    for (const w of writes) {
      const found = this.tables.get(w.table)?.get(toHex(w.key))?.version ?? null;
      if (found !== w.expect) return { table: w.table, key: w.key, found };
    }
    return null;
  }

  /** Applies writes already checked. */
  apply(writes) {
    for (const w of writes) {
      let records = this.tables.get(w.table);
      if (!records) this.tables.set(w.table, (records = new Map()));
      if (w.value === null) records.delete(toHex(w.key));
      else records.set(toHex(w.key), { version: w.version, value: w.value.slice() });
    }
  }

  commit(writes) {
    const conflict = this.check(writes);
    if (conflict) return conflict;
    this.apply(writes);
    return null;
  }
}
