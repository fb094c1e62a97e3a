// Needs the test build (`OLMO_WASM_FEATURES=conformance bash build.sh`): the published one
// has no runStoreConformance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, Store, MapStore, runStoreConformance, storeConformanceChecks, ConformanceError } from '../pkg/index.js';
import { JsonFileStore } from '../js/json-file-store.js';

await init();
const checks = storeConformanceChecks().length;

test('the memory store passes the conformance suite', async () => {
  const store = Store.memory();
  assert.equal(await runStoreConformance(store, store.handle()), checks);
});

test('a Map-based JavaScript store passes the conformance suite', async () => {
  const map = new MapStore();
  assert.equal(await runStoreConformance(Store.fromJs(map), Store.fromJs(map)), checks);
});

test('a JSON-file JavaScript store passes the conformance suite (two handles on one file)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'olmo-wasm-'));
  try {
    const path = join(dir, 'store.json');
    const first = Store.fromJs(new JsonFileStore(path));
    const second = Store.fromJs(new JsonFileStore(path));
    assert.equal(await runStoreConformance(first, second), checks);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a store that ignores versions fails the suite with the check named', async () => {
  const sloppy = new MapStore();
  sloppy.commit = function (writes) { this.apply(writes); return null; };
  await assert.rejects(runStoreConformance(Store.fromJs(sloppy), Store.fromJs(sloppy)),
    (e) => e instanceof ConformanceError && e.check === 'a stale version conflicts and changes nothing');
});

test('an object without the four methods is refused', () => {
  assert.throws(() => Store.fromJs({ get() {} }), /no getMany method/);
});
