// A JsStoreBackend for Node on one JSON file: each commit writes the whole file to a temporary
// name and renames it over the old one, so a crash leaves the old or the new state, never a
// mix. Handles on the same path notice each other's commits (the file's identity changes at
// every rename). One process at a time: it takes no lock between processes.
import { readFile, writeFile, rename, stat, open } from 'node:fs/promises';
import { MapStore } from '../pkg/index.js';

const queues = new Map();

/** Runs `task` after every earlier task on `path` (commits on one path never interleave). */
function serialised(path, task) {
  const run = (queues.get(path) ?? Promise.resolve()).then(task, task);
  queues.set(path, run.catch(() => {}));
  return run;
}

function encode(tables) {
  const out = {};
  for (const [table, records] of tables) {
    out[table] = {};
    for (const [k, r] of records) out[table][k] = [r.version, Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length).toString('hex')];
  }
  return JSON.stringify(out);
}

function decode(text) {
  const tables = new Map();
  for (const [table, records] of Object.entries(JSON.parse(text))) {
    const map = new Map();
    for (const [k, [version, value]] of Object.entries(records)) {
      map.set(k, { version, value: new Uint8Array(Buffer.from(value, 'hex')) });
    }
    tables.set(table, map);
  }
  return tables;
}

export class JsonFileStore {
  constructor(path) {
    this.path = path;
    this.state = new MapStore();
    this.seen = null;
  }

  /** The file's identity, or null if it does not exist yet. */
  async identity() {
    try {
      const s = await stat(this.path, { bigint: true });
      return `${s.ino}:${s.mtimeNs}:${s.size}`;
    } catch (e) {
      if (e.code === 'ENOENT') return null;
      throw e;
    }
  }

  /** Reloads the file if another handle changed it since we read it. */
  async fresh() {
    const id = await this.identity();
    if (id !== this.seen) {
      this.state = new MapStore(id === null ? new Map() : decode(await readFile(this.path, 'utf8')));
      this.seen = id;
    }
    return this.state;
  }

  async get(table, key) {
    return (await this.fresh()).get(table, key);
  }

  async getMany(table, keys) {
    return (await this.fresh()).getMany(table, keys);
  }

  async scan(table, range, limit) {
    return (await this.fresh()).scan(table, range, limit);
  }

  commit(writes) {
    return serialised(this.path, async () => {
      const current = await this.fresh();
      const conflict = current.check(writes);
      if (conflict) return conflict;
      const next = new MapStore(new Map([...current.tables].map(([t, r]) => [t, new Map(r)])));
      next.apply(writes);
      const temporary = `${this.path}.${process.pid}.tmp`;
      await writeFile(temporary, encode(next.tables));
      const handle = await open(temporary, 'r');
      await handle.sync();
      await handle.close();
      await rename(temporary, this.path);
      this.state = next;
      this.seen = await this.identity();
      return null;
    });
  }
}
