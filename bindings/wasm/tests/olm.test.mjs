import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  init, Account, Session, GroupSession, InboundGroupSession, encryptKeyExport,
  decryptKeyExport, CryptoError, ArgumentError, OlmoError,
} from '../pkg/index.js';

await init();
const text = new TextEncoder();
const utf8 = new TextDecoder();
const storageKey = new Uint8Array(32).fill(7);

function pair() {
  const alice = new Account();
  const bob = new Account();
  bob.generateOneTimeKeys(1);
  const [otk] = Object.values(bob.oneTimeKeys());
  bob.markKeysAsPublished();
  const outbound = alice.createOutboundSession(bob.curve25519, otk);
  return { alice, bob, outbound };
}

test('an Olm conversation: pre-key message, reply, and messages both ways', () => {
  const { alice, bob, outbound } = pair();
  const first = outbound.encrypt(text.encode('Hello, Bob'));
  assert.equal(first.type, 0);
  const { session: inbound, plaintext } = bob.createInboundSession(alice.curve25519, first);
  assert.equal(utf8.decode(plaintext), 'Hello, Bob');
  assert.equal(inbound.sessionId, outbound.sessionId);
  assert.ok(inbound.matchesInboundSession(first));

  const reply = inbound.encrypt(text.encode('Hello, Alice'));
  assert.equal(reply.type, 1);
  assert.equal(utf8.decode(outbound.decrypt(reply)), 'Hello, Alice');
  assert.ok(outbound.hasReceivedMessage);
  for (let i = 0; i < 5; i++) {
    const m = outbound.encrypt(text.encode(`m${i}`));
    assert.equal(m.type, 1);
    assert.equal(utf8.decode(inbound.decrypt(m)), `m${i}`);
  }
  for (const o of [alice, bob, outbound, inbound]) o.free();
});

test('the one-time key is used once: a second inbound session from it is refused', () => {
  const { alice, bob, outbound } = pair();
  const first = outbound.encrypt(text.encode('once'));
  bob.createInboundSession(alice.curve25519, first);
  assert.throws(() => bob.createInboundSession(alice.curve25519, first),
    (e) => e instanceof CryptoError && e instanceof OlmoError && e.kind === 'sessionCreation');
});

test('a tampered message is a CryptoError and leaves the session working', () => {
  const { alice, bob, outbound } = pair();
  const { session } = bob.createInboundSession(alice.curve25519, outbound.encrypt(text.encode('x')));
  const good = session.encrypt(text.encode('fine'));
  const bytes = Buffer.from(good.body, 'base64');
  bytes[bytes.length - 1] ^= 1;
  const bad = { type: 1, body: bytes.toString('base64').replace(/=+$/, '') };
  assert.throws(() => outbound.decrypt(bad), (e) => e instanceof CryptoError && e.kind === 'decrypt');
  assert.equal(utf8.decode(outbound.decrypt(good)), 'fine');
  assert.throws(() => outbound.decrypt({ type: 7, body: '' }), ArgumentError);
});

test('accounts and sessions survive save and restore; a wrong key is refused', () => {
  const { alice, bob, outbound } = pair();
  const saved = Account.restore(alice.save(storageKey), storageKey);
  assert.deepEqual(saved.identityKeys, alice.identityKeys);
  const restored = Session.restore(outbound.save(storageKey), storageKey);
  const { plaintext } = bob.createInboundSession(alice.curve25519, restored.encrypt(text.encode('after')));
  assert.equal(utf8.decode(plaintext), 'after');
  assert.throws(() => Account.restore(alice.save(storageKey), new Uint8Array(32)),
    (e) => e instanceof CryptoError && e.kind === 'persist');
  assert.throws(() => alice.save(new Uint8Array(5)), ArgumentError);
  const pickle = alice.toLibolmPickle(storageKey);
  assert.equal(Account.fromLibolmPickle(pickle, storageKey).curve25519, alice.curve25519);
});

test('signatures come out as unpadded base64 of 64 bytes', () => {
  const account = new Account();
  const signature = account.sign(text.encode('message'));
  assert.equal(Buffer.from(signature, 'base64').length, 64);
  assert.ok(!signature.endsWith('='));
});

test('a Megolm conversation: shared key, later joiner, export and import', () => {
  const outbound = new GroupSession(1000);
  const inbound = new InboundGroupSession(outbound.sessionKey);
  assert.equal(inbound.sessionId, outbound.sessionId);
  const messages = [];
  for (let i = 0; i < 4; i++) messages.push(outbound.encrypt(text.encode(`group ${i}`)));
  for (let i = 0; i < 4; i++) {
    const { plaintext, messageIndex } = inbound.decrypt(messages[i]);
    assert.equal(utf8.decode(plaintext), `group ${i}`);
    assert.equal(messageIndex, i);
  }
  const late = InboundGroupSession.import(inbound.exportAt(2));
  assert.equal(late.firstKnownIndex, 2);
  assert.equal(late.isVerified, false);
  assert.throws(() => late.decrypt(messages[1]), (e) => e instanceof CryptoError && e.kind === 'decrypt');
  assert.equal(utf8.decode(late.decrypt(messages[3]).plaintext), 'group 3');
  const restored = GroupSession.restore(outbound.save(storageKey), storageKey);
  assert.equal(restored.messageIndex, 4);
  assert.equal(InboundGroupSession.restore(inbound.save(storageKey), storageKey).sessionId, inbound.sessionId);
});

test('a key export file round-trips; a wrong passphrase is refused', () => {
  const outbound = new GroupSession();
  const inbound = new InboundGroupSession(outbound.sessionKey);
  const key = {
    algorithm: 'm.megolm.v1.aes-sha2', room_id: '!room:example.org',
    sender_key: new Account().curve25519, session_id: inbound.sessionId,
    session_key: inbound.exportAtFirstKnownIndex(), sender_claimed_keys: {},
    forwarding_curve25519_key_chain: [],
  };
  const file = encryptKeyExport([key], 'passphrase', 1000);
  assert.match(file, /^-----BEGIN MEGOLM SESSION DATA-----/);
  const [back] = decryptKeyExport(file, 'passphrase');
  assert.equal(back.session_id, key.session_id);
  assert.equal(back.room_id, key.room_id);
  const imported = InboundGroupSession.import(back.session_key);
  assert.equal(utf8.decode(imported.decrypt(outbound.encrypt(text.encode('exported'))).plaintext), 'exported');
  assert.throws(() => decryptKeyExport(file, 'wrong'), (e) => e instanceof CryptoError && e.kind === 'keyExport');
  assert.throws(() => encryptKeyExport([{ nonsense: true }], 'p'), ArgumentError);
});
