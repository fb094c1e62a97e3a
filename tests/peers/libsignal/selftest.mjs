#!/usr/bin/env node
// Self-test of the libsignal interop peer: starts peer.mjs as a child process and drives two (and
// more) libsignal devices through its JSON-lines ops only, the way the Rust tests do.
// Ends with "selftest: N passed, M failed"; exits non-zero if anything failed.
// `--verbose` also prints example messages and observed limits to stderr.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const verbose = process.argv.includes('--verbose');
const note = (...args) => { if (verbose) console.error('  note:', ...args); };

// ---------------------------------------------------------------------------------------------
// Peer driver

class Peer {
  constructor() {
    this.child = spawn(process.execPath, [path.join(here, 'peer.mjs')], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.buffer = '';
    this.waiters = [];
    this.lines = [];
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk) => {
      this.buffer += chunk;
      let nl;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        const w = this.waiters.shift();
        if (w) w.resolve(line); else this.lines.push(line);
      }
    });
    this.exit = new Promise((resolve) => this.child.on('exit', (code) => {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`peer exited (${code})`));
      resolve(code);
    }));
  }

  sendRaw(text) {
    this.child.stdin.write(text + '\n');
    return new Promise((resolve, reject) => {
      const line = this.lines.shift();
      if (line !== undefined) resolve(line); else this.waiters.push({ resolve, reject });
    });
  }

  async raw(request) {
    const line = await this.sendRaw(JSON.stringify(request));
    const value = JSON.parse(line);
    if (typeof value !== 'object' || typeof value.ok !== 'boolean') {
      throw new Error(`malformed response ${line}`);
    }
    return value;
  }

  async call(request) {
    const r = await this.raw(request);
    if (!r.ok) throw new Error(`op ${request.op} failed: ${r.error}`);
    return r;
  }

  async fail(request) {
    const r = await this.raw(request);
    if (r.ok) throw new Error(`op ${request.op} unexpectedly succeeded: ${JSON.stringify(r)}`);
    return r.error;
  }
}

// ---------------------------------------------------------------------------------------------
// Tiny test harness

let passed = 0;
let failed = 0;

async function test(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err && err.stack ? err.stack : err}`);
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

function eq(actual, expected, message) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${message}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

const isHex = (s, bytes) => typeof s === 'string' && /^[0-9a-f]*$/.test(s) && s.length === 2 * bytes;
const text = (s) => Buffer.from(s, 'utf8').toString('hex');

// ---------------------------------------------------------------------------------------------

const peer = new Peer();

function addr(name, deviceId) {
  return { name, device_id: deviceId };
}

function bundleRequest(owner, bundle, address, preKeyIndex = 0) {
  const req = {
    op: 'process_bundle',
    name: owner,
    address,
    registration_id: bundle.registration_id,
    identity_key: bundle.identity_key,
    signed_pre_key_id: bundle.signed_pre_key_id,
    signed_pre_key: bundle.signed_pre_key,
    signed_pre_key_signature: bundle.signed_pre_key_signature,
  };
  if (preKeyIndex !== null) {
    req.pre_key_id = bundle.pre_keys[preKeyIndex].id;
    req.pre_key = bundle.pre_keys[preKeyIndex].key;
  }
  return req;
}

// Sets up devices `a` → `b` with a session from a's side and one delivered message (so b has one
// too).  Returns the devices' bundles and addresses.
// With `answer`, b answers once so that both sides send whisper messages.
async function pair(a, b, { aDev = 1, bDev = 2, preKeys = 5, answer = false } = {}) {
  const A = await peer.call({ op: 'device_new', name: a, registration_id: 1000 + aDev, device_id: aDev, pre_keys: preKeys });
  const B = await peer.call({ op: 'device_new', name: b, registration_id: 2000 + bDev, device_id: bDev, pre_keys: preKeys });
  const toB = addr(b, bDev);
  const toA = addr(a, aDev);
  await peer.call(bundleRequest(a, B, toB));
  const m = await peer.call({ op: 'encrypt', name: a, address: toB, plaintext: text('hello') });
  await peer.call({ op: 'decrypt', name: b, address: toA, type: m.type, body: m.body });
  if (answer) {
    const r = await peer.call({ op: 'encrypt', name: b, address: toA, plaintext: text('answer') });
    await peer.call({ op: 'decrypt', name: a, address: toB, type: r.type, body: r.body });
  }
  return { A, B, toA, toB };
}

await test('ping reports libsignal 0.72.1', async () => {
  const r = await peer.call({ op: 'ping' });
  eq(r.libsignal, '0.72.1', 'libsignal version');
});

let alice;
let bob;
const ALICE = addr('alice', 1111);
const BOB = addr('bob', 2222);

await test('device_new returns a well-formed bundle', async () => {
  alice = await peer.call({ op: 'device_new', name: 'alice', registration_id: 111, device_id: 1111, pre_keys: 5 });
  bob = await peer.call({ op: 'device_new', name: 'bob', registration_id: 222, device_id: 2222 });
  for (const d of [alice, bob]) {
    assert(isHex(d.identity_key, 33) && d.identity_key.startsWith('05'), 'identity key 33 bytes, 0x05');
    assert(isHex(d.signed_pre_key, 33) && d.signed_pre_key.startsWith('05'), 'spk 33 bytes, 0x05');
    assert(isHex(d.signed_pre_key_signature, 64), 'signature 64 bytes');
    assert(Number.isInteger(d.signed_pre_key_id), 'spk id');
    for (const pk of d.pre_keys) assert(isHex(pk.key, 33) && pk.key.startsWith('05'), 'pre-key 33 bytes');
  }
  eq(alice.pre_keys.map((p) => p.id), [1, 2, 3, 4, 5], 'alice pre-key ids');
  eq(bob.pre_keys.length, 100, 'default pre-key count');
  eq(alice.registration_id, 111, 'registration id');
  const v = await peer.call({ op: 'verify', identity_key: bob.identity_key, message: bob.signed_pre_key, signature: bob.signed_pre_key_signature });
  eq(v.valid, true, 'spk signature verifies under the identity key');
});

await test('duplicate device name is refused unless replace', async () => {
  const e = await peer.fail({ op: 'device_new', name: 'alice' });
  assert(e.includes('already exists'), e);
});

let first;
await test('X3DH without Kyber: first message is a v3 PreKeySignalMessage', async () => {
  await peer.call(bundleRequest('alice', bob, BOB, 0));
  const info = await peer.call({ op: 'session_info', name: 'alice', address: BOB });
  eq([info.exists, info.has_current_state, info.version], [true, true, 3], 'alice session');
  first = await peer.call({ op: 'encrypt', name: 'alice', address: BOB, plaintext: text('first') });
  eq(first.type, 'prekey', 'type');
  eq(first.body.slice(0, 2), '34', 'version byte of a v3 message');
  const p = await peer.call({ op: 'parse', type: 'prekey', body: first.body });
  eq(p.libsignal, { version: 3, registration_id: 111, pre_key_id: bob.pre_keys[0].id, signed_pre_key_id: bob.signed_pre_key_id }, 'libsignal view');
  eq(p.wire.fields, [1, 2, 3, 4, 5, 6], 'PreKeySignalMessage protobuf fields');
  eq(p.wire.identity_key, alice.identity_key, 'identity key in the message');
  eq(p.wire.kyber_pre_key_id, null, 'no kyber pre-key id');
  eq(p.wire.message.version_byte, 0x34, 'inner SignalMessage version byte');
  eq(p.wire.message.fields, [1, 2, 3, 4], 'SignalMessage protobuf fields');
  eq(p.wire.message.counter, 0, 'first counter');
  note('prekey message (alice→bob, "first"):', first.body);
});

await test('bob decrypts the PreKeySignalMessage and consumes the pre-key', async () => {
  const r = await peer.call({ op: 'decrypt', name: 'bob', address: ALICE, type: first.type, body: first.body });
  eq(r.plaintext, text('first'), 'plaintext');
  eq([r.version, r.registration_id, r.pre_key_id], [3, 111, bob.pre_keys[0].id], 'message info');
  const info = await peer.call({ op: 'device_info', name: 'bob' });
  assert(!info.pre_key_ids.includes(bob.pre_keys[0].id), 'used pre-key removed');
  eq(info.pre_key_ids.length, 99, 'remaining pre-keys');
  const s = await peer.call({ op: 'session_info', name: 'bob', address: ALICE });
  eq([s.version, s.remote_registration_id, s.local_registration_id], [3, 111, 222], 'bob session');
  eq(s.stored_identity_key, alice.identity_key, 'bob stored alice identity');
});

let second;
await test('until bob answers, alice keeps sending PreKeySignalMessages', async () => {
  second = await peer.call({ op: 'encrypt', name: 'alice', address: BOB, plaintext: text('second') });
  eq(second.type, 'prekey', 'type');
  const p1 = await peer.call({ op: 'parse', type: 'prekey', body: first.body });
  const p2 = await peer.call({ op: 'parse', type: 'prekey', body: second.body });
  eq(p2.wire.base_key, p1.wire.base_key, 'same base key');
  eq(p2.wire.message.counter, 1, 'counter');
  const r = await peer.call({ op: 'decrypt', name: 'bob', address: ALICE, type: 'prekey', body: second.body });
  eq(r.plaintext, text('second'), 'plaintext');
});

await test('replaying the first PreKeySignalMessage is a duplicate', async () => {
  const e = await peer.fail({ op: 'decrypt', name: 'bob', address: ALICE, type: 'prekey', body: first.body });
  assert(e.startsWith('DuplicatedMessage'), e);
  note('replayed prekey message:', e);
});

await test('bob answers with a whisper message; then alice sends whisper messages', async () => {
  const reply = await peer.call({ op: 'encrypt', name: 'bob', address: ALICE, plaintext: text('reply') });
  eq(reply.type, 'whisper', 'type');
  eq(reply.body.slice(0, 2), '34', 'version byte');
  note('whisper message (bob→alice, "reply"):', reply.body);
  const r = await peer.call({ op: 'decrypt', name: 'alice', address: BOB, type: 'whisper', body: reply.body });
  eq(r.plaintext, text('reply'), 'plaintext');
  const m = await peer.call({ op: 'encrypt', name: 'alice', address: BOB, plaintext: text('third') });
  eq(m.type, 'whisper', 'alice now sends whisper');
  const s = await peer.call({ op: 'session_info', name: 'alice', address: BOB });
  eq(s.pending_pre_key, null, 'no pending pre-key');
  const d = await peer.call({ op: 'decrypt', name: 'bob', address: ALICE, type: 'whisper', body: m.body });
  eq(d.plaintext, text('third'), 'plaintext');
});

await test('out-of-order delivery and duplicates', async () => {
  const ms = [];
  for (let i = 0; i < 4; i++) ms.push(await peer.call({ op: 'encrypt', name: 'alice', address: BOB, plaintext: text(`m${i}`) }));
  for (const i of [3, 0, 2, 1]) {
    const r = await peer.call({ op: 'decrypt', name: 'bob', address: ALICE, type: ms[i].type, body: ms[i].body });
    eq(r.plaintext, text(`m${i}`), `m${i}`);
  }
  const e = await peer.fail({ op: 'decrypt', name: 'bob', address: ALICE, type: 'whisper', body: ms[2].body });
  assert(e.startsWith('DuplicatedMessage'), e);
});

await test('a flipped MAC or ciphertext bit is refused and the peer survives', async () => {
  const m = await peer.call({ op: 'encrypt', name: 'alice', address: BOB, plaintext: text('tamper') });
  const bytes = Buffer.from(m.body, 'hex');
  bytes[bytes.length - 1] ^= 1;
  const e = await peer.fail({ op: 'decrypt', name: 'bob', address: ALICE, type: 'whisper', body: bytes.toString('hex') });
  note('bad MAC:', e);
  const ok = await peer.call({ op: 'decrypt', name: 'bob', address: ALICE, type: 'whisper', body: m.body });
  eq(ok.plaintext, text('tamper'), 'original still decrypts');
});

await test('bundle without a one-time pre-key', async () => {
  const carol = await peer.call({ op: 'device_new', name: 'carol', registration_id: 333, device_id: 3333, pre_keys: 0 });
  eq(carol.pre_keys, [], 'no pre-keys');
  const CAROL = addr('carol', 3333);
  await peer.call(bundleRequest('alice', carol, CAROL, null));
  const m = await peer.call({ op: 'encrypt', name: 'alice', address: CAROL, plaintext: text('no otpk') });
  const p = await peer.call({ op: 'parse', type: 'prekey', body: m.body });
  eq(p.libsignal.pre_key_id, null, 'no pre-key id');
  eq(p.wire.fields, [2, 3, 4, 5, 6], 'fields without pre_key_id');
  const r = await peer.call({ op: 'decrypt', name: 'carol', address: ALICE, type: 'prekey', body: m.body });
  eq(r.plaintext, text('no otpk'), 'plaintext');
});

await test('registration id 0 in a bundle is accepted', async () => {
  const d = await peer.call({ op: 'device_new', name: 'zero', registration_id: 0, device_id: 7, pre_keys: 1 });
  await peer.call(bundleRequest('alice', d, addr('zero', 7), 0));
  const m = await peer.call({ op: 'encrypt', name: 'alice', address: addr('zero', 7), plaintext: '00' });
  const r = await peer.call({ op: 'decrypt', name: 'zero', address: ALICE, type: m.type, body: m.body });
  eq(r.plaintext, '00', 'plaintext');
});

await test('a bad signed pre-key signature is refused by process_bundle', async () => {
  const d = await peer.call({ op: 'device_new', name: 'badsig', registration_id: 9, device_id: 9, pre_keys: 1 });
  const sig = Buffer.from(d.signed_pre_key_signature, 'hex');
  sig[0] ^= 1;
  const e = await peer.fail({ ...bundleRequest('alice', d, addr('badsig', 9), 0), signed_pre_key_signature: sig.toString('hex') });
  note('bad spk signature:', e);
  const s = await peer.call({ op: 'session_info', name: 'alice', address: addr('badsig', 9) });
  eq(s.exists, false, 'no session');
});

await test('device_import: public keys, clamping and a session to the imported device', async () => {
  const idPriv = randomBytes(32);
  const spkPriv = randomBytes(32);
  const pk1 = randomBytes(32);
  const pk2 = randomBytes(32);
  const imp = await peer.call({
    op: 'device_import', name: 'imported', registration_id: 4444, device_id: 44,
    identity_private: idPriv.toString('hex'),
    signed_pre_key: { id: 7, private: spkPriv.toString('hex') },
    pre_keys: [{ id: 100, private: pk1.toString('hex') }, { id: 101, private: pk2.toString('hex') }],
  });
  const idPub = await peer.call({ op: 'public_key', private: idPriv.toString('hex') });
  eq(imp.identity_key, idPub.public_key, 'identity public key');
  eq(imp.signed_pre_key, (await peer.call({ op: 'public_key', private: spkPriv.toString('hex') })).public_key, 'spk public');
  eq(imp.pre_keys.map((p) => p.id), [100, 101], 'pre-key ids');
  eq(imp.pre_keys[1].key, (await peer.call({ op: 'public_key', private: pk2.toString('hex') })).public_key, 'pre-key public');
  eq(imp.signed_pre_key_id, 7, 'spk id');
  const v = await peer.call({ op: 'verify', identity_key: imp.identity_key, message: imp.signed_pre_key, signature: imp.signed_pre_key_signature });
  eq(v.valid, true, 'fresh spk signature');
  const id = await peer.call({ op: 'identity', name: 'imported' });
  const clamped = Buffer.from(idPriv);
  clamped[0] &= 248; clamped[31] &= 127; clamped[31] |= 64;
  eq(id.identity_private, clamped.toString('hex'), 'libsignal stores the clamped private key');
  eq(idPub.private, clamped.toString('hex'), 'public_key reports the clamped key');
  const IMP = addr('imported', 44);
  await peer.call(bundleRequest('alice', imp, IMP, 1));
  const m = await peer.call({ op: 'encrypt', name: 'alice', address: IMP, plaintext: text('to imported') });
  const r = await peer.call({ op: 'decrypt', name: 'imported', address: ALICE, type: m.type, body: m.body });
  eq([r.plaintext, r.pre_key_id, r.signed_pre_key_id], [text('to imported'), 101, 7], 'decrypted with imported keys');
});

await test('device_import keeps a given signed pre-key signature', async () => {
  const src = await peer.call({ op: 'identity', name: 'bob' });
  const spkPriv = randomBytes(32);
  const spk = await peer.call({ op: 'public_key', private: spkPriv.toString('hex') });
  const sig = await peer.call({ op: 'sign', private: src.identity_private, message: spk.public_key });
  const imp = await peer.call({
    op: 'device_import', name: 'bob2', identity_private: src.identity_private,
    signed_pre_key: { id: 1, private: spkPriv.toString('hex'), signature: sig.signature }, pre_keys: [],
  });
  eq(imp.signed_pre_key_signature, sig.signature, 'signature kept');
  eq(imp.identity_key, bob.identity_key, 'same identity');
});

await test('sign / verify (XEdDSA)', async () => {
  const msg = text('sign me');
  const s = await peer.call({ op: 'sign', name: 'alice', message: msg });
  assert(isHex(s.signature, 64), 'signature 64 bytes');
  eq((await peer.call({ op: 'verify', identity_key: alice.identity_key, message: msg, signature: s.signature })).valid, true, 'valid');
  eq((await peer.call({ op: 'verify', identity_key: bob.identity_key, message: msg, signature: s.signature })).valid, false, 'wrong key');
  eq((await peer.call({ op: 'verify', identity_key: alice.identity_key, message: text('other'), signature: s.signature })).valid, false, 'wrong message');
  const s2 = await peer.call({ op: 'sign', name: 'alice', message: msg });
  assert(s2.signature !== s.signature, 'randomized nonce');
  const k = randomBytes(32).toString('hex');
  const pub = await peer.call({ op: 'public_key', private: k });
  const s3 = await peer.call({ op: 'sign', private: k, message: msg });
  eq((await peer.call({ op: 'verify', identity_key: pub.public_key, message: msg, signature: s3.signature })).valid, true, 'raw private key');
});

await test('agree: X25519 is symmetric', async () => {
  const a = randomBytes(32).toString('hex');
  const b = randomBytes(32).toString('hex');
  const A = await peer.call({ op: 'public_key', private: a });
  const B = await peer.call({ op: 'public_key', private: b });
  const s1 = await peer.call({ op: 'agree', private: a, public: B.public_key });
  const s2 = await peer.call({ op: 'agree', private: b, public: A.public_key });
  assert(isHex(s1.shared, 32), 'shared 32 bytes');
  eq(s1.shared, s2.shared, 'same secret');
});

await test('encrypt version_byte 0x34 reproduces libsignal\'s own bytes (MAC derivation check)', async () => {
  const { toA, toB } = await pair('v1', 'v2', { answer: true });
  const m = await peer.call({ op: 'encrypt', name: 'v1', address: toB, plaintext: '02', version_byte: 0x34 });
  eq([m.type, m.counter], ['whisper', 0], 'first message of the new sending chain');
  eq(m.body, m.libsignal_body, 'identical to libsignal\'s bytes');
  const m2 = await peer.call({ op: 'encrypt', name: 'v1', address: toB, plaintext: '03', skip: 3, version_byte: 0x34 });
  eq(m2.counter, 4, 'counter after skip');
  eq(m2.body, m2.libsignal_body, 'identical after skipped chain steps');
  eq((await peer.call({ op: 'decrypt', name: 'v2', address: toA, type: m2.type, body: m2.body })).plaintext, '03', 'after skip');
  eq((await peer.call({ op: 'decrypt', name: 'v2', address: toA, type: m.type, body: m.body })).plaintext, '02', 'skipped key');
  // prekey messages: outer and inner bytes
  const { toB: tb } = await pair('v3', 'v4');
  const p = await peer.call({ op: 'encrypt', name: 'v3', address: tb, plaintext: '04', version_byte: 0x34 });
  eq(p.type, 'prekey', 'type');
  eq(p.body, p.libsignal_body, 'identical prekey message');
});

await test('libsignal 0.72.1 accepts 0x33 (libsignal-protocol-java style) whisper and prekey messages', async () => {
  const { toA, toB } = await pair('w1', 'w2');
  const ans = await peer.call({ op: 'encrypt', name: 'w2', address: toA, plaintext: '01' });
  await peer.call({ op: 'decrypt', name: 'w1', address: toB, type: ans.type, body: ans.body });
  const m = await peer.call({ op: 'encrypt', name: 'w1', address: toB, plaintext: text('v33'), version_byte: 0x33 });
  eq(m.body.slice(0, 2), '33', 'version byte');
  const parsed = await peer.call({ op: 'parse', type: 'whisper', body: m.body });
  eq(parsed.libsignal.version, 3, 'libsignal parses version 3');
  const r = await peer.call({ op: 'decrypt', name: 'w2', address: toA, type: 'whisper', body: m.body });
  eq(r.plaintext, text('v33'), 'whisper 0x33 decrypts');
  // prekey message with 0x33 outside and inside
  const X = await peer.call({ op: 'device_new', name: 'x33', registration_id: 5, device_id: 5, pre_keys: 1 });
  await peer.call(bundleRequest('w1', X, addr('x33', 5), 0));
  const p = await peer.call({ op: 'encrypt', name: 'w1', address: addr('x33', 5), plaintext: text('pk33'), version_byte: 0x33 });
  eq(p.type, 'prekey', 'type');
  const pp = await peer.call({ op: 'parse', type: 'prekey', body: p.body });
  eq([pp.wire.version_byte, pp.wire.message.version_byte], [0x33, 0x33], 'both version bytes');
  const r2 = await peer.call({ op: 'decrypt', name: 'x33', address: addr('w1', 1), type: 'prekey', body: p.body });
  eq(r2.plaintext, text('pk33'), 'prekey 0x33 decrypts');
});

await test('version bytes: high nibble 3 is version 3 whatever the low nibble; others refused', async () => {
  for (const answer of [false, true]) {
    const a = answer ? 'yw1' : 'yp1';
    const b = answer ? 'yw2' : 'yp2';
    const { toA, toB } = await pair(a, b, { answer });
    for (const vb of [0x23, 0x44, 0x43, 0x53]) {
      const m = await peer.call({ op: 'encrypt', name: a, address: toB, plaintext: '00', version_byte: vb });
      eq(m.type, answer ? 'whisper' : 'prekey', 'type');
      const e = await peer.fail({ op: 'decrypt', name: b, address: toA, type: m.type, body: m.body });
      note(`${m.type} version byte 0x${vb.toString(16)}:`, e);
    }
    for (const vb of [0x30, 0x3f]) {
      const m = await peer.call({ op: 'encrypt', name: a, address: toB, plaintext: '0f', version_byte: vb });
      const r = await peer.call({ op: 'decrypt', name: b, address: toA, type: m.type, body: m.body });
      eq(r.plaintext, '0f', `${m.type} 0x${vb.toString(16)} accepted`);
    }
  }
});

let maxJump = null;
await test('forward jump limit (MAX_FORWARD_JUMPS = 25000)', async () => {
  // a's new sending chain starts at 0 and b's receiver chain for it at index 0: `skip: S` sends
  // counter S, a jump of S.  Whisper messages, then a prekey message (counter 1 + S).
  const { toA, toB } = await pair('j1', 'j2', { answer: true });
  const ok = await peer.call({ op: 'encrypt', name: 'j1', address: toB, plaintext: '01', skip: 25000 });
  eq([ok.type, ok.counter], ['whisper', 25000], 'counter');
  eq((await peer.call({ op: 'decrypt', name: 'j2', address: toA, type: ok.type, body: ok.body })).plaintext, '01', 'jump of 25000');
  const far = await peer.call({ op: 'encrypt', name: 'j1', address: toB, plaintext: '02', skip: 25001 });
  eq(far.counter, 50002, 'counter');
  const e = await peer.fail({ op: 'decrypt', name: 'j2', address: toA, type: far.type, body: far.body });
  note('whisper jump of 25001:', e);
  // the session survives: j2 answers, and j1's next sending chain starts afresh
  const back = await peer.call({ op: 'encrypt', name: 'j2', address: toA, plaintext: '03' });
  eq((await peer.call({ op: 'decrypt', name: 'j1', address: toB, type: back.type, body: back.body })).plaintext, '03', 'answer');
  const next = await peer.call({ op: 'encrypt', name: 'j1', address: toB, plaintext: '05' });
  eq(next.counter, 0, 'new chain');
  eq((await peer.call({ op: 'decrypt', name: 'j2', address: toA, type: next.type, body: next.body })).plaintext, '05', 'session still usable');
  const { toA: a2, toB: b2 } = await pair('j3', 'j4');
  const pk = await peer.call({ op: 'encrypt', name: 'j3', address: b2, plaintext: '04', skip: 25001 });
  eq(pk.type, 'prekey', 'type');
  const e2 = await peer.fail({ op: 'decrypt', name: 'j4', address: a2, type: pk.type, body: pk.body });
  note('prekey jump of 25001:', e2);
  maxJump = 25000;
});

await test('skipped message keys kept (MAX_MESSAGE_KEYS = 2000)', async () => {
  const { toA, toB } = await pair('k1', 'k2');
  const ms = [];
  for (let i = 0; i < 2002; i++) ms.push(await peer.call({ op: 'encrypt', name: 'k1', address: toB, plaintext: '00' }));
  // receiver index 1; deliver the last (counter 2002): keys for counters 1..2001 are skipped (2001 keys)
  await peer.call({ op: 'decrypt', name: 'k2', address: toA, type: ms[2001].type, body: ms[2001].body });
  const e = await peer.fail({ op: 'decrypt', name: 'k2', address: toA, type: ms[0].type, body: ms[0].body });
  note('oldest skipped key (counter 1) after 2001 skipped:', e);
  const r = await peer.call({ op: 'decrypt', name: 'k2', address: toA, type: ms[1].type, body: ms[1].body });
  eq(r.plaintext, '00', 'counter 2 still decrypts');
});

await test('archived states: old-session messages still decrypt; at most 40 kept', async () => {
  const { B, toA, toB } = await pair('r1', 'r2', { preKeys: 50 });
  const late = await peer.call({ op: 'encrypt', name: 'r1', address: toB, plaintext: text('late') });
  // r1 starts a new session to r2 (archiving the first); r2 takes it, archiving its first
  await peer.call(bundleRequest('r1', B, toB, 1));
  eq((await peer.call({ op: 'session_info', name: 'r1', address: toB })).archived_states, 1, 'r1 archived');
  const fresh = await peer.call({ op: 'encrypt', name: 'r1', address: toB, plaintext: text('fresh') });
  eq(fresh.type, 'prekey', 'new session → prekey');
  eq((await peer.call({ op: 'decrypt', name: 'r2', address: toA, type: 'prekey', body: fresh.body })).plaintext, text('fresh'), 'fresh');
  eq((await peer.call({ op: 'session_info', name: 'r2', address: toA })).archived_states, 1, 'r2 archived');
  const r = await peer.call({ op: 'decrypt', name: 'r2', address: toA, type: late.type, body: late.body });
  eq(r.plaintext, text('late'), 'message from the archived session');
  for (let i = 0; i < 45; i++) await peer.call(bundleRequest('r1', B, toB, null));
  const s = await peer.call({ op: 'session_info', name: 'r1', address: toB });
  note('archived states after 47 sessions:', s.archived_states);
  eq(s.archived_states, 40, 'archived states cap');
  await peer.call({ op: 'archive_session', name: 'r1', address: toB });
  const s2 = await peer.call({ op: 'session_info', name: 'r1', address: toB });
  eq([s2.exists, s2.has_current_state], [true, false], 'archived current state');
  const e = await peer.fail({ op: 'encrypt', name: 'r1', address: toB, plaintext: '00' });
  note('encrypt without a current state:', e);
});

await test('trust-on-first-use refuses a changed identity', async () => {
  await peer.call({ op: 'device_new', name: 'tofu', registration_id: 1, device_id: 1, trust: 'tofu' });
  const m1 = await peer.call({ op: 'device_new', name: 'mallory', registration_id: 2, device_id: 2, pre_keys: 2 });
  await peer.call(bundleRequest('tofu', m1, addr('mallory', 2), 0));
  const m2 = await peer.call({ op: 'device_new', name: 'mallory', registration_id: 2, device_id: 2, pre_keys: 2, replace: true });
  const e = await peer.fail(bundleRequest('tofu', m2, addr('mallory', 2), 0));
  assert(e.startsWith('UntrustedIdentity'), e);
  // the default store ("all") takes it
  await peer.call(bundleRequest('alice', m1, addr('mallory', 2), 0));
  await peer.call(bundleRequest('alice', m2, addr('mallory', 2), 1));
});

await test('device_info, bundle, remove_pre_key, delete_session, device_delete', async () => {
  const d = await peer.call({ op: 'device_new', name: 'misc', device_id: 3, pre_keys: 3 });
  eq((await peer.call({ op: 'remove_pre_key', name: 'misc', id: 2 })).existed, true, 'removed');
  eq((await peer.call({ op: 'remove_pre_key', name: 'misc', id: 2 })).existed, false, 'gone');
  const b = await peer.call({ op: 'bundle', name: 'misc' });
  eq(b.pre_keys.map((p) => p.id), [1, 3], 'bundle pre-keys');
  eq(b.identity_key, d.identity_key, 'identity');
  await peer.call(bundleRequest('misc', bob, BOB, 5));
  const info = await peer.call({ op: 'device_info', name: 'misc' });
  eq(info.sessions, [BOB], 'sessions');
  eq((await peer.call({ op: 'delete_session', name: 'misc', address: BOB })).existed, true, 'deleted');
  eq((await peer.call({ op: 'session_info', name: 'misc', address: BOB })).exists, false, 'no session');
  await peer.call({ op: 'device_delete', name: 'misc' });
  await peer.fail({ op: 'device_info', name: 'misc' });
});

await test('bad requests fail cleanly and the peer keeps serving', async () => {
  const errors = [
    await peer.fail({ op: 'nope' }),
    await peer.fail({ op: 'decrypt', name: 'nobody', address: ALICE, type: 'whisper', body: '00' }),
    await peer.fail({ op: 'decrypt', name: 'bob', address: ALICE, type: 'whisper', body: 'zz' }),
    await peer.fail({ op: 'decrypt', name: 'bob', address: ALICE, type: 'whisper', body: '34' }),
    await peer.fail({ op: 'decrypt', name: 'bob', address: ALICE, type: 'other', body: '34' }),
    await peer.fail({ op: 'encrypt', name: 'bob', address: addr('stranger', 1), plaintext: '00' }),
    await peer.fail({ op: 'verify', identity_key: '00', message: '', signature: '' }),
  ];
  for (const e of errors) assert(/^[A-Za-z]+: /.test(e), `error format: ${e}`);
  note('errors:', JSON.stringify(errors));
  const bad = JSON.parse(await peer.sendRaw('this is not json'));
  eq(bad.ok, false, 'malformed line');
  const arr = JSON.parse(await peer.sendRaw('[1,2]'));
  eq(arr.ok, false, 'non-object');
  eq((await peer.call({ op: 'ping' })).ok, true, 'still alive');
});

await test('quit ends the peer with status 0', async () => {
  const r = await peer.raw({ op: 'quit' });
  eq(r, { ok: true }, 'quit response');
  eq(await peer.exit, 0, 'exit status');
});

await test('EOF ends a peer with status 0', async () => {
  const p2 = new Peer();
  eq((await p2.call({ op: 'ping' })).ok, true, 'ping');
  p2.child.stdin.end();
  eq(await p2.exit, 0, 'exit status');
});

if (maxJump !== null) note('max forward jump accepted:', maxJump);
console.log(`selftest: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
