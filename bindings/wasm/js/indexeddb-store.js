// A JsStoreBackend on IndexedDB, for browsers. Records live in one object store under the
// key [table, key bytes] (arrays compare element by element, binary keys bytewise, so a scan
// is one key range). A commit is one readwrite transaction with strict durability: it reads
// every record the batch names, and only from those requests' callbacks (nothing else is
// awaited inside the transaction) either aborts on the first version that differs or issues
// every put and delete; it resolves once the transaction completed. Tabs sharing the database
// are serialised by IndexedDB itself.

const RECORDS = 'records';

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function record(stored) {
  return stored ? { version: stored.v, value: new Uint8Array(stored.d) } : null;
}

/** The key range of a scan of `table` (a missing bound: the whole table on that side). */
function keyRange(table, range) {
  // [table] sorts before every [table, bytes]; [table, []] after them (arrays sort after binary).
  const lower = range.start !== undefined ? [table, range.start] : [table];
  const upper = range.end !== undefined ? [table, range.end] : [table, []];
  const lowerOpen = range.start !== undefined && !range.startInclusive;
  const upperOpen = range.end === undefined || !range.endInclusive;
  return IDBKeyRange.bound(lower, upper, lowerOpen, upperOpen);
}

export class IndexedDbStore {
  /** Opens (creating on first use) the database `name`. */
  static async open(name, factory = globalThis.indexedDB) {
    const req = factory.open(name, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(RECORDS);
    const db = await request(req);
    // Another tab deleting or upgrading the database: let it, this handle is done.
    db.onversionchange = () => db.close();
    return new IndexedDbStore(db);
  }

  constructor(db) {
    this.db = db;
  }

  close() {
    this.db.close();
  }

  reader() {
    return this.db.transaction(RECORDS, 'readonly').objectStore(RECORDS);
  }

  async get(table, key) {
    return record(await request(this.reader().get([table, key])));
  }

  async getMany(table, keys) {
    const store = this.reader();
    const found = await Promise.all(keys.map((key) => request(store.get([table, key]))));
    return found.map(record);
  }

  async scan(table, range, limit) {
    if (limit === 0) return [];
    let bounds;
    try {
      bounds = keyRange(table, range);
    } catch (e) {
      if (e.name === 'DataError') return []; // lower above upper: an empty range
      throw e;
    }
    const store = this.reader();
    const [keys, values] = await Promise.all([
      request(store.getAllKeys(bounds, limit)),
      request(store.getAll(bounds, limit)),
    ]);
    return keys.map((k, i) => ({ key: new Uint8Array(k[1]), ...record(values[i]) }));
  }

  commit(writes) {
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction(RECORDS, 'readwrite', { durability: 'strict' });
      const store = tx.objectStore(RECORDS);
      let conflict = null;
      let unchecked = writes.length;
      for (const w of writes) {
        const read = store.get([w.table, w.key]);
        read.onsuccess = () => {
          if (conflict) return;
          const found = read.result ? read.result.v : null;
          if (found !== w.expect) {
            conflict = { table: w.table, key: w.key, found };
            tx.abort();
            return;
          }
          unchecked -= 1;
          if (unchecked > 0) return;
          for (const x of writes) {
            if (x.value === null) store.delete([x.table, x.key]);
            else store.put({ v: x.version, d: x.value }, [x.table, x.key]);
          }
        };
      }
      tx.oncomplete = () => resolve(null);
      tx.onabort = () => (conflict ? resolve(conflict) : reject(tx.error ?? new Error('the transaction was aborted')));
    });
  }
}
