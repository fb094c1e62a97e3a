// The package in real headless Chromium (Debian's, driven by playwright-core): the store
// conformance suite on IndexedDB, a device that survives a reload, two tabs racing commits on
// one database, a tab closed in the middle of commits, and the demo page's screenshot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
let server, browser, context, profile;

before(async () => {
  server = await serve(root);
  profile = await mkdtemp(join(tmpdir(), 'olmo-chromium-'));
  // A persistent context: IndexedDB outlives pages and reloads, as in a real profile.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await context?.close();
  await server?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

async function page() {
  const p = await context.newPage();
  p.on('pageerror', (e) => console.error('page error:', e.message));
  await p.goto(`${server.url}/browser-tests/page.html`);
  await p.waitForFunction(() => window.ready === true);
  return p;
}

test('IndexedDB passes the store conformance suite in Chromium', async () => {
  const p = await page();
  const passed = await p.evaluate(async () => {
    const { Store, IndexedDbStore, runStoreConformance, storeConformanceChecks } = window.olmo;
    const first = await IndexedDbStore.open('conformance');
    const second = await IndexedDbStore.open('conformance');
    const count = await runStoreConformance(Store.fromJs(first), Store.fromJs(second));
    return { passed: count, checks: storeConformanceChecks().length };
  });
  assert.ok(passed.checks >= 12, `${passed.checks} checks`);
  assert.equal(passed.passed, passed.checks);
  await p.close();
});

test('a device persisted in IndexedDB carries on its sessions after a reload', async () => {
  const p = await page();
  const before = await p.evaluate(async () => {
    const { Store, IndexedDbStore, MatrixMachine } = window.olmo;
    const { Homeserver, Client } = window.harness;
    const hs = new Homeserver();
    const open = async (db, user, device, n) => new Client(hs, await MatrixMachine.open(
      Store.fromJs(await IndexedDbStore.open(db)), new Uint8Array(32).fill(n), user, device));
    const alice = await open('reload-alice', '@alice:example.org', 'ALICE', 1);
    const bob = await open('reload-bob', '@bob:example.org', 'BOB', 2);
    await alice.flush(); await bob.flush();
    await alice.share('!r:example.org', ['@alice:example.org', '@bob:example.org']);
    const event = await alice.message('!r:example.org', 'before reload');
    await bob.sync();
    const read = await bob.machine.decryptRoomEvent('!r:example.org', event);
    return { alice: alice.machine.identityKeys, bob: bob.machine.identityKeys, body: read.content.body, session: read.sessionId };
  });
  assert.equal(before.body, 'before reload');
  await p.reload();
  await p.waitForFunction(() => window.ready === true);
  const afterReload = await p.evaluate(async () => {
    const { Store, IndexedDbStore, MatrixMachine } = window.olmo;
    const open = async (db, user, device, n) => MatrixMachine.open(
      Store.fromJs(await IndexedDbStore.open(db)), new Uint8Array(32).fill(n), user, device);
    const alice = await open('reload-alice', '@alice:example.org', 'ALICE', 1);
    const bob = await open('reload-bob', '@bob:example.org', 'BOB', 2);
    const content = await alice.encryptRoomEvent('!r:example.org', 'm.room.message', { body: 'after reload' },
      { algorithm: 'm.megolm.v1.aes-sha2' }, 1_765_000_000_500);
    const read = await bob.decryptRoomEvent('!r:example.org', {
      type: 'm.room.encrypted', sender: '@alice:example.org', event_id: '$after', origin_server_ts: 1_765_000_000_500,
      room_id: '!r:example.org', content,
    });
    return { alice: alice.identityKeys, bob: bob.identityKeys, body: read.content.body, session: read.sessionId, index: read.messageIndex };
  });
  assert.deepEqual(afterReload.alice, before.alice);
  assert.deepEqual(afterReload.bob, before.bob);
  assert.equal(afterReload.body, 'after reload');
  assert.equal(afterReload.session, before.session, 'the same Megolm session carried on');
  assert.equal(afterReload.index, 1);
  await p.close();
});

const counterScript = async ([tab, rounds]) => {
  const { IndexedDbStore, Store, MatrixMachine } = window.olmo;
  const raw = await IndexedDbStore.open('race');
  const key = new TextEncoder().encode('counter');
  let conflicts = 0;
  for (let i = 0; i < rounds; i++) {
    for (;;) {
      const current = await raw.get('race.counter', key);
      const n = current ? new DataView(current.value.buffer).getUint32(0) : 0;
      const value = new Uint8Array(4);
      new DataView(value.buffer).setUint32(0, n + 1);
      const conflict = await raw.commit([{ table: 'race.counter', key, expect: current?.version ?? null, value, version: (current?.version ?? 0) + 1 }]);
      if (!conflict) break;
      conflicts += 1;
    }
  }
  // The same device open in both tabs: every operation's records land, whoever commits first.
  const machine = await MatrixMachine.open(Store.fromJs(raw), new Uint8Array(32).fill(5), '@race:example.org', 'RACE');
  // Both tabs change the account record (the key count) every time: the machine retries
  // conflicts itself, and past its attempts says so with a StoreError the application retries.
  let surfaced = 0;
  for (let i = 0; i < rounds; i++) {
    for (;;) {
      try {
        await machine.receiveSyncChanges({ oneTimeKeyCount: i }, [{ table: 'log', key: new TextEncoder().encode(`${tab}-${i}`), value: new Uint8Array([i]) }]);
        break;
      } catch (e) {
        if (!(e instanceof window.olmo.StoreError && e.kind === 'conflict')) throw e;
        surfaced += 1;
      }
    }
  }
  return { conflicts, surfaced };
};

test('two tabs racing commits on one IndexedDB lose nothing', async () => {
  const [a, b] = await Promise.all([page(), page()]);
  const rounds = 40;
  const conflicts = await Promise.all([a.evaluate(counterScript, ['a', rounds]), b.evaluate(counterScript, ['b', rounds])]);
  const check = await a.evaluate(async (rounds) => {
    const { IndexedDbStore, Store, MatrixMachine } = window.olmo;
    const raw = await IndexedDbStore.open('race');
    const current = await raw.get('race.counter', new TextEncoder().encode('counter'));
    const machine = await MatrixMachine.open(Store.fromJs(raw), new Uint8Array(32).fill(5), '@race:example.org', 'RACE');
    let present = 0;
    for (const tab of ['a', 'b']) {
      for (let i = 0; i < rounds; i++) {
        if (await machine.appRecord('log', new TextEncoder().encode(`${tab}-${i}`))) present += 1;
      }
    }
    return { counter: new DataView(current.value.buffer).getUint32(0), present };
  }, rounds);
  assert.equal(check.counter, 2 * rounds, `conflicts: ${JSON.stringify(conflicts)}`);
  console.log(`race: ${JSON.stringify(conflicts)}`);
  assert.equal(check.present, 2 * rounds);
  await Promise.all([a.close(), b.close()]);
});

test('a tab closed in the middle of commits leaves every batch whole or absent', async () => {
  const writer = await page();
  // Batches of 20 records of 16 KiB, committed back to back until the tab dies.
  await writer.evaluate(() => {
    (async () => {
      const store = await window.olmo.IndexedDbStore.open('torn');
      window.committed = 0;
      for (let batch = 0; ; batch++) {
        const writes = [];
        for (let i = 0; i < 20; i++) {
          const value = new Uint8Array(16384).fill(batch % 251);
          writes.push({ table: 'torn', key: new Uint8Array([batch >> 8, batch & 255, i]), expect: null, value, version: 1 });
        }
        await store.commit(writes);
        window.committed = batch + 1;
      }
    })();
  });
  await writer.waitForFunction(() => window.committed >= 3);
  await writer.close({ runBeforeUnload: false });
  const reader = await page();
  const result = await reader.evaluate(async () => {
    const { IndexedDbStore, Store, runStoreConformance } = window.olmo;
    const store = await IndexedDbStore.open('torn');
    const all = [];
    let range = { startInclusive: false, endInclusive: false };
    for (;;) {
      const page = await store.scan('torn', range, 500);
      if (page.length === 0) break;
      all.push(...page);
      range = { start: page.at(-1).key, startInclusive: false, endInclusive: false };
    }
    const batches = new Map();
    for (const r of all) {
      const id = (r.key[0] << 8) | r.key[1];
      const ok = r.value.length === 16384 && r.value.every((b) => b === id % 251) && r.version === 1;
      batches.set(id, (batches.get(id) ?? 0) + (ok ? 1 : 1000));
    }
    const torn = [...batches.values()].filter((n) => n !== 20).length;
    const scratch = await IndexedDbStore.open('torn-after');
    const conformance = await runStoreConformance(Store.fromJs(scratch), Store.fromJs(await IndexedDbStore.open('torn-after')));
    return { batches: batches.size, torn, conformance, checks: window.olmo.storeConformanceChecks().length };
  });
  assert.ok(result.batches >= 3, `${result.batches} batches committed`);
  assert.equal(result.torn, 0);
  assert.equal(result.conformance, result.checks);
  await reader.close();
});

test('the demo page runs and its screenshot is taken', async () => {
  const p = await context.newPage();
  await p.setViewportSize({ width: 1000, height: 420 });
  await p.goto(`${server.url}/browser-tests/demo.html`);
  await p.waitForFunction(() => window.demoDone === true);
  const status = await p.textContent('#status');
  assert.match(status, /All steps done/);
  const bob = await p.textContent('#bob');
  assert.match(bob, /decrypted from ALICE: Hello Bob/);
  assert.match(bob, /refused a replayed event: DecryptionError \(replay\)/);
  await p.screenshot({ path: process.env.OLMO_SCREENSHOT ?? join(tmpdir(), 'olmo-wasm-demo.png') });
  await p.close();
});
