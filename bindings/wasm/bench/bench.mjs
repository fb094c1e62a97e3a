// olmo-wasm beside @matrix-org/matrix-sdk-crypto-wasm 18.9.0 in one Node process: package size
// (raw and gzipped .wasm), time to initialise (also each alone in fresh processes, via
// init-once.mjs), importing the same room keys, and decrypting the same 10,000 room events
// with them. Ratios are olmo / theirs (below 1: olmo smaller or faster).
// Run: (cd bindings/wasm/bench && npm install && node bench.mjs); OLMO_BENCH_QUICK=1 for a smoke run.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';

const quick = process.env.OLMO_BENCH_QUICK === '1';
const EVENTS = quick ? 500 : 10_000;
const KEYS = quick ? 100 : 1_000;
const ROOM = '!bench:example.org';
const here = dirname(fileURLToPath(import.meta.url));
const theirDir = join(here, 'node_modules', '@matrix-org', 'matrix-sdk-crypto-wasm');

function size(path) {
  const bytes = readFileSync(path);
  return { raw: bytes.length, gz: gzipSync(bytes, { level: 9 }).length };
}

// CPU time of this process (user + system), not wall time: both libraries run on this one
// thread, and the figures stay fair on a machine shared with other work.
async function time(run) {
  const start = process.cpuUsage();
  const result = await run();
  const used = process.cpuUsage(start);
  return [(used.user + used.system) / 1000, result];
}

const rows = [];
const row = (what, ours, theirs, unit) => rows.push({ what, ours, theirs, unit });

const ourSize = size(join(here, '..', 'pkg', 'olmo_wasm_bg.wasm'));
const theirSize = size(join(theirDir, 'pkg', 'matrix_sdk_crypto_wasm_bg.wasm'));
row('.wasm raw', ourSize.raw / 1024, theirSize.raw / 1024, 'KiB');
row('.wasm gzipped', ourSize.gz / 1024, theirSize.gz / 1024, 'KiB');

const [ourInit, olmo] = await time(async () => {
  const m = await import('../pkg/index.js');
  await m.init();
  return m;
});
const [theirInit, sdk] = await time(async () => {
  const m = await import('@matrix-org/matrix-sdk-crypto-wasm');
  await m.initAsync();
  return m;
});
row('import + initialise, one process, olmo first (CPU)', ourInit, theirInit, 'ms');

// The row above favours whichever library goes second (Node's and V8's own lazy start-up is
// paid by the first), so also: each library alone in a fresh process, the order alternating
// (olmo, sdk, sdk, olmo, ...), the median of each.
const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
const fresh = { olmo: [], sdk: [] };
const rounds = quick ? 3 : 11;
for (let i = 0; i < rounds; i++) {
  for (const which of i % 2 ? ['sdk', 'olmo'] : ['olmo', 'sdk']) {
    const out = execFileSync(process.execPath, [join(here, 'init-once.mjs'), which], { cwd: here });
    fresh[which].push(Number(out.toString().trim()));
  }
}
row(`import + initialise, fresh process, median of ${rounds} (CPU)`, median(fresh.olmo), median(fresh.sdk), 'ms');

// The same keys and events for both: KEYS Megolm sessions, the events from the first.
const sender = new olmo.Account();
const sessions = Array.from({ length: KEYS }, () => new olmo.GroupSession(1_765_000_000_000));
const keys = sessions.map((s) => {
  const inbound = new olmo.InboundGroupSession(s.sessionKey);
  return {
    algorithm: 'm.megolm.v1.aes-sha2', room_id: ROOM, sender_key: sender.curve25519,
    session_id: s.sessionId, session_key: inbound.exportAtFirstKnownIndex(),
    sender_claimed_keys: { ed25519: sender.ed25519 }, forwarding_curve25519_key_chain: [],
  };
});
const events = [];
for (let i = 0; i < EVENTS; i++) {
  const payload = { type: 'm.room.message', content: { msgtype: 'm.text', body: `message ${i}` }, room_id: ROOM };
  events.push({
    type: 'm.room.encrypted', sender: '@sender:example.org', event_id: `$e${i}`, origin_server_ts: 1_765_000_000_000 + i,
    room_id: ROOM,
    content: {
      algorithm: 'm.megolm.v1.aes-sha2', sender_key: sender.curve25519, device_id: 'SENDER',
      session_id: sessions[0].sessionId,
      ciphertext: sessions[0].encrypt(new TextEncoder().encode(JSON.stringify(payload))),
    },
  });
}
const file = olmo.encryptKeyExport(keys, 'bench', 1);

const ours = await olmo.MatrixMachine.open(olmo.Store.memory(), new Uint8Array(32).fill(1), '@reader:example.org', 'OURS');
const [ourImport, imported] = await time(() => ours.importRoomKeys(file, 'bench'));
if (imported.imported !== KEYS) throw new Error(`olmo imported ${imported.imported} of ${KEYS}`);
const theirs = await sdk.OlmMachine.initialize(new sdk.UserId('@reader:example.org'), new sdk.DeviceId('THEIRS'));
const [theirImport, result] = await time(() => theirs.importExportedRoomKeys(JSON.stringify(keys), () => {}));
if (result.importedCount !== KEYS) throw new Error(`matrix-sdk-crypto imported ${result.importedCount} of ${KEYS}`);
row(`import ${KEYS} room keys (CPU)`, ourImport, theirImport, 'ms');

const [ourBatch, decrypted] = await time(() => ours.decryptRoomEvents(ROOM, events));
if (decrypted.some((d) => d.error)) throw new Error(`olmo: ${decrypted.find((d) => d.error).error}`);
const ours2 = await olmo.MatrixMachine.open(olmo.Store.memory(), new Uint8Array(32).fill(2), '@reader:example.org', 'OURS2');
await ours2.importRoomKeys(file, 'bench');
const [ourSingle] = await time(async () => {
  for (const e of events) await ours2.decryptRoomEvent(ROOM, e);
});
const settings = new sdk.DecryptionSettings(sdk.TrustRequirement.Untrusted);
const room = new sdk.RoomId(ROOM);
const [theirSingle] = await time(async () => {
  for (const e of events) await theirs.decryptRoomEvent(JSON.stringify(e), room, settings);
});
row(`decrypt ${EVENTS} events, one call each (CPU)`, ourSingle, theirSingle, 'ms');
row(`decrypt ${EVENTS} events, olmo batched (CPU)`, ourBatch, theirSingle, 'ms');

const pad = (s, n) => String(s).padEnd(n);
console.log(`${pad('row', 56)}${pad('olmo-wasm', 14)}${pad('matrix-sdk-crypto-wasm', 24)}ratio`);
for (const r of rows) {
  console.log(`${pad(r.what, 56)}${pad(`${r.ours.toFixed(1)} ${r.unit}`, 14)}${pad(`${r.theirs.toFixed(1)} ${r.unit}`, 24)}${(r.ours / r.theirs).toFixed(3)}x`);
}
