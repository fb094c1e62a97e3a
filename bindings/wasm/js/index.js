// The package's own JavaScript: `init()`, which loads the module once (from the file in pkg/
// on Node, by URL in browsers and bundlers), the error classes and the stores written in
// JavaScript. The package's entry is pkg/index.js, which make-entry.mjs writes at build time as
// the wasm-bindgen glue and this file in one ES module: every further ES module costs a fresh
// Node about 0.5-1 ms of CPU in its loader (resolve, read, compile, link). For the same reason
// the errors, the byte helpers and the Map and IndexedDB stores are here rather than in files
// of their own (they took 2 ms of the 15 that import + init took). This file also works as a
// module of its own, importing the glue.
import initWasm, { initSync, __registerErrorClasses } from '../pkg/olmo_wasm.js';

export * from '../pkg/olmo_wasm.js';

let loading;

/**
 * Loads the WebAssembly module; call (and await) once before anything else. `input` is
 * optional: a URL, a Response, bytes or a compiled WebAssembly.Module.
 */
export function init(input) {
  loading ??= load(input);
  return loading;
}

async function load(input) {
  if (input === undefined && globalThis.process?.versions?.node) {
    // Node: compile the file's bytes and instantiate synchronously. The glue's async path
    // tests `instanceof Response`, and on Node that first touch of `Response` loads the whole
    // fetch implementation (undici): two thirds of the time init took.
    // `getBuiltinModule` (Node 20.16+) skips the ESM loader that a first dynamic import starts.
    const fs = process.getBuiltinModule?.('node:fs') ?? (await import('node:fs'));
    const bytes = fs.readFileSync(new URL('../pkg/olmo_wasm_bg.wasm', import.meta.url));
    initSync({ module: new WebAssembly.Module(bytes) });
  } else {
    await initWasm(input === undefined ? undefined : { module_or_path: input });
  }
  __registerErrorClasses({
    OlmoError, ArgumentError, CryptoError, StoreError, MachineError, DecryptionError, XmppError, ConformanceError,
  });
}

// ---- Errors

// The errors olmo throws and rejects with. Every one is an OlmoError with `kind` (the core's
// variant, camelCase) and the core's reason as `message`, plus the variant's fields (a
// conflict's `table`, `key`, `expected` and `found`; a decryption's `sessionId`, ...). None
// carries key material or plaintext. Each class writes its own `name` rather than reading
// `new.target.name`: bundlers' minifiers rename classes, and `name` is what callers match on.

/** Base class of every olmo error. */
export class OlmoError extends Error {
  constructor(message) {
    super(message);
    this.name = 'OlmoError';
  }
}

/** A value passed in that the binding cannot use (wrong type, wrong length). */
export class ArgumentError extends OlmoError {
  constructor(message) { super(message); this.name = 'ArgumentError'; }
}

/** A low-level object refused: decoding, keys, decryption, persistence, key export files. */
export class CryptoError extends OlmoError {
  constructor(message) { super(message); this.name = 'CryptoError'; }
}

/** The store failed: `conflict` (retries ran out), `corrupt`, `newerSchema`, `backend`, ... */
export class StoreError extends OlmoError {
  constructor(message) { super(message); this.name = 'StoreError'; }
}

/** The Matrix machine refused an operation; the store is unchanged. */
export class MachineError extends OlmoError {
  constructor(message) { super(message); this.name = 'MachineError'; }
}

/** A room event did not decrypt: `noSession`, `unknownIndex`, `withheld`, `replay`, ... */
export class DecryptionError extends OlmoError {
  constructor(message) { super(message); this.name = 'DecryptionError'; }
}

/** The XMPP machine refused an operation or a message. */
export class XmppError extends OlmoError {
  constructor(message) { super(message); this.name = 'XmppError'; }
}

/** A store failed the core's conformance suite: `check` names the check, `detail` what was seen. */
export class ConformanceError extends OlmoError {
  constructor(message) { super(message); this.name = 'ConformanceError'; }
}

// ---- Byte keys (the stores written in JavaScript keep them as hex)

// Byte keys as lowercase hex: string order is bytewise order, so hex keys sort and compare
// as the store contract wants.

function toHex(bytes) {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Whether hex key `k` lies in a scan range (`{ start, startInclusive, end, endInclusive }`). */
function inRange(k, range) {
  if (range.start !== undefined) {
    const s = toHex(range.start);
    if (range.startInclusive ? k < s : k <= s) return false;
  }
  if (range.end !== undefined) {
    const e = toHex(range.end);
    if (range.endInclusive ? k > e : k >= e) return false;
  }
  return true;
}

// ---- MapStore

// A JsStoreBackend on Maps: the reference for stores written in JavaScript, and the state a
// file-backed store keeps between writes. Every method is synchronous, so a commit is atomic
// with respect to every other call on the same object.

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

// ---- IndexedDbStore

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
