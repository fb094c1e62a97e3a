import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  init, Store, MatrixMachine, MapStore, DecryptionError, MachineError, StoreError,
} from '../pkg/index.js';
import { JsonFileStore } from '../js/json-file-store.js';
import { Homeserver, Client, ENCRYPTION, NOW } from './homeserver.mjs';

await init();
const ROOM = '!room:example.org';
const key = (n) => new Uint8Array(32).fill(n);

async function client(hs, store, user, device, n) {
  const c = new Client(hs, await MatrixMachine.open(store, key(n), user, device));
  await c.flush();
  return c;
}

async function conversation(makeStore) {
  const hs = new Homeserver();
  const alice = await client(hs, makeStore(), '@alice:example.org', 'ALICE', 1);
  const bob = await client(hs, makeStore(), '@bob:example.org', 'BOB', 2);
  const members = [alice.machine.userId, bob.machine.userId];
  const share = await alice.share(ROOM, members);
  assert.deepEqual(share.withoutSession, []);
  const event = await alice.message(ROOM, 'Hello, Bob');

  const outcomes = await bob.sync();
  const roomKey = outcomes.find((o) => o.outcome === 'decrypted' && o.type === 'm.room_key');
  assert.ok(roomKey, JSON.stringify(outcomes));
  assert.equal(roomKey.sender, alice.machine.userId);
  assert.equal(roomKey.senderKey, alice.machine.identityKeys.curve25519);
  assert.equal(typeof roomKey.content.session_id, 'string');
  await bob.machine.updateTrackedUsers(members);
  await bob.flush();
  const [aliceDevice] = await bob.machine.devices(alice.machine.userId);
  assert.deepEqual(aliceDevice, {
    userId: alice.machine.userId, deviceId: 'ALICE', curve25519: alice.machine.identityKeys.curve25519,
    ed25519: alice.machine.identityKeys.ed25519, trust: 'unverified', deleted: false,
  });
  const read = await bob.machine.decryptRoomEvent(ROOM, event);
  assert.equal(read.content.body, 'Hello, Bob');
  assert.equal(read.type, 'm.room.message');
  assert.equal(read.sender, alice.machine.userId);
  assert.equal(read.senderDevice, 'ALICE');
  assert.equal(read.sessionId, event.content.session_id);
  assert.equal(read.messageIndex, 0);
  assert.equal(read.forwarded, false);
  assert.equal(typeof read.verified, 'boolean');

  // Bob answers in the room with a session of his own.
  await bob.share(ROOM, members);
  await alice.sync();
  const reply = await bob.message(ROOM, 'Hello, Alice');
  assert.equal((await alice.machine.decryptRoomEvent(ROOM, reply)).content.body, 'Hello, Alice');
  return { hs, alice, bob, event };
}

test('two machines over memory stores: room keys over Olm, messages both ways', async () => {
  await conversation(() => Store.memory());
});

test('two machines over stores written in JavaScript (Maps)', async () => {
  await conversation(() => Store.fromJs(new MapStore()));
});

test('a replayed event and an unknown session are DecryptionErrors with their fields', async () => {
  const { alice, bob, event } = await conversation(() => Store.memory());
  const copy = { ...event, event_id: '$other' };
  await assert.rejects(bob.machine.decryptRoomEvent(ROOM, copy),
    (e) => e instanceof DecryptionError && e.kind === 'replay' && e.firstEventId === event.event_id);
  const unknown = structuredClone(event);
  unknown.content.session_id = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  await assert.rejects(bob.machine.decryptRoomEvent(ROOM, unknown),
    (e) => e instanceof DecryptionError && e.kind === 'noSession' && e.sessionId === unknown.content.session_id);
  const batch = await bob.machine.decryptRoomEvents(ROOM, [event, unknown]);
  assert.equal(batch[0].event.content.body, 'Hello, Bob');
  assert.equal(batch[1].error.kind, 'noSession');
  await assert.rejects(alice.machine.encryptRoomEvent(ROOM, 'm.room.message', {}, { algorithm: 'm.nothing' }),
    (e) => e instanceof MachineError && e.kind === 'roomNotEncrypted');
});

test('room keys exported by one machine import into another, which then decrypts', async () => {
  const { alice, event } = await conversation(() => Store.memory());
  const file = await alice.machine.exportRoomKeys('secret', undefined, 1000);
  const carol = await MatrixMachine.open(Store.memory(), key(9), '@carol:example.org', 'CAROL');
  const progress = [];
  const result = await carol.importRoomKeys(file, 'secret', (done, total) => progress.push([done, total]));
  assert.equal(result.imported, result.total);
  assert.ok(result.total >= 2);
  assert.ok(progress.length > 0);
  const read = await carol.decryptRoomEvent(ROOM, event);
  assert.equal(read.content.body, 'Hello, Bob');
  assert.equal(read.forwarded, true);
  const again = await carol.importRoomKeys(file, 'secret');
  assert.equal(again.imported, 0);
  await assert.rejects(carol.importRoomKeys(file, 'wrong'), MachineError);
});

test('a bot on a JSON file store restarts as the same device with its sessions', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'olmo-wasm-'));
  try {
    const path = join(dir, 'bob.json');
    const hs = new Homeserver();
    const alice = await client(hs, Store.memory(), '@alice:example.org', 'ALICE', 1);
    let bob = await client(hs, Store.fromJs(new JsonFileStore(path)), '@bob:example.org', 'BOB', 2);
    const keys = bob.machine.identityKeys;
    const members = [alice.machine.userId, bob.machine.userId];
    await alice.share(ROOM, members);
    const event = await alice.message(ROOM, 'before the restart');
    await bob.sync([{ table: 'sync', key: new TextEncoder().encode('token'), value: new TextEncoder().encode('s1') }]);
    bob.machine.free();

    // A new process: a new store object on the same file, the same device.
    bob = new Client(hs, await MatrixMachine.open(Store.fromJs(new JsonFileStore(path)), key(2), '@bob:example.org', 'BOB'));
    assert.deepEqual(bob.machine.identityKeys, keys);
    assert.equal(new TextDecoder().decode(await bob.machine.appRecord('sync', new TextEncoder().encode('token'))), 's1');
    assert.equal((await bob.machine.decryptRoomEvent(ROOM, event)).content.body, 'before the restart');
    const later = await alice.message(ROOM, 'after the restart');
    assert.equal((await bob.machine.decryptRoomEvent(ROOM, later)).content.body, 'after the restart');
    await assert.rejects(MatrixMachine.open(Store.fromJs(new JsonFileStore(path)), key(2), '@eve:example.org', 'EVE'),
      (e) => e instanceof MachineError && e.kind === 'wrongAccount');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a store that throws surfaces as a StoreError of kind backend', async () => {
  const broken = new MapStore();
  broken.commit = () => { throw new Error('disk full'); };
  await assert.rejects(MatrixMachine.open(Store.fromJs(broken), key(1), '@a:example.org', 'A'),
    (e) => e instanceof StoreError && e.kind === 'backend' && /disk full/.test(e.message));
});
