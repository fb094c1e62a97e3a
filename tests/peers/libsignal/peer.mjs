#!/usr/bin/env node
// Interop peer: drives the real libsignal (@signalapp/libsignal-client, pinned to 0.72.1, the
// last release that still builds plain X3DH "v3" sessions from a bundle without Kyber keys) for
// olmo's OMEMO 0.3 (eu.siacs.conversations.axolotl) tests.
//
// Protocol as tests/peers/peer_protocol.py and tests/common/peer.rs: one JSON object per line on
// stdin, exactly one JSON response line per request on stdout, {"ok": true, ...} or
// {"ok": false, "error": "<ErrorName>: <message>"}.  No failing op ends the peer; {"op": "quit"}
// or EOF do.  Every byte string is lowercase hex.  libsignal's API is async: requests are handled
// strictly in order, one at a time.  Nothing but responses goes to stdout (logs go to stderr).
//
// Devices live in memory, named by the caller.  Each has libsignal store implementations:
// sessions, identities (trust everything by default, or trust-on-first-use), pre-keys, signed
// pre-keys and an always-empty Kyber pre-key store.  Addresses are {"name": str, "device_id": int}.
//
// Ops (fields with ? are optional; details in the comments above each op below):
//   ping                                  -> {libsignal, node}
//   device_new {name, registration_id?, device_id? (1), pre_keys? (100), pre_key_start? (1),
//               signed_pre_key_id? (1), trust? ("all"|"tofu"), replace?}        -> bundle
//   device_import {name, registration_id?, device_id?, identity_private, signed_pre_key:
//               {id, private, signature?}, pre_keys: [{id, private}], trust?, replace?} -> bundle
//       bundle = {identity_key, signed_pre_key_id, signed_pre_key, signed_pre_key_signature,
//                 pre_keys: [{id, key}], registration_id, device_id}
//   bundle {name} -> bundle;  device_info {name};  device_delete {name}
//   process_bundle {name, address, registration_id? (0), identity_key, signed_pre_key_id,
//               signed_pre_key, signed_pre_key_signature, pre_key_id?, pre_key?}  -> {}
//   encrypt {name, address, plaintext, skip?, version_byte?} -> {type, body, counter}
//   decrypt {name, address, type, body} -> {plaintext, version, ...}
//   parse {type, body}  -> {libsignal: {...}, wire: {...}}
//   session_info {name, address};  archive_session {name, address};  delete_session {...}
//   identity {name} -> {identity_key, identity_private};  public_key {private}
//   sign {name | private, message} -> {signature};  verify {identity_key, message, signature}
//       -> {valid};  agree {private, public} -> {shared};  remove_pre_key {name, id} -> {existed}
//   quit
// Error responses from libsignal also carry "code" (its ErrorCode name, e.g. "DuplicatedMessage").
// LIBSIGNAL_PEER_LOG=info (or error|warn|debug|trace) copies libsignal's log to stderr.

import { createHmac, hkdfSync, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import * as S from '@signalapp/libsignal-client';

// Keep stdout for responses only: anything that logs through console goes to stderr.
console.log = console.error;
console.info = console.error;
console.debug = console.error;
console.warn = console.error;

// LIBSIGNAL_PEER_LOG=error|warn|info|debug|trace sends libsignal's own log lines to stderr.  Many
// decryption failures surface as a bare "decryption failed"; the log says why (e.g. "message
// from too far into the future", "MAC verification failed", a version mismatch).
const LOG_LEVELS = { error: 1, warn: 2, info: 3, debug: 4, trace: 5 };
if (process.env.LIBSIGNAL_PEER_LOG) {
  const level = LOG_LEVELS[process.env.LIBSIGNAL_PEER_LOG.toLowerCase()] ?? S.LogLevel.Info;
  S.initLogger(level, (lvl, target, file, line, message) => {
    process.stderr.write(`libsignal[${lvl}] ${target} ${file ?? ''}:${line ?? ''} ${message}\n`);
  });
}

const LIBSIGNAL_VERSION = (() => {
  const require = createRequire(import.meta.url);
  const main = require.resolve('@signalapp/libsignal-client'); // .../dist/index.js
  const pkg = JSON.parse(readFileSync(path.join(path.dirname(main), '..', 'package.json'), 'utf8'));
  return pkg.version;
})();

// ---------------------------------------------------------------------------------------------
// Request helpers

class RequestError extends Error {
  constructor(message) {
    super(message);
    this.name = 'RequestError';
  }
}

function field(req, name) {
  if (!(name in req) || req[name] === undefined) {
    throw new RequestError(`missing field ${JSON.stringify(name)}`);
  }
  return req[name];
}

function hexField(req, name, size) {
  return parseHex(field(req, name), name, size);
}

function parseHex(value, name, size) {
  if (typeof value !== 'string' || value.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(value)) {
    throw new RequestError(`field ${JSON.stringify(name)} must be an even-length hex string`);
  }
  const data = Buffer.from(value, 'hex');
  if (size !== undefined && data.length !== size) {
    throw new RequestError(`field ${JSON.stringify(name)} must be ${size} bytes, got ${data.length}`);
  }
  return data;
}

function intField(req, name, dflt) {
  const value = req[name] === undefined || req[name] === null ? dflt : req[name];
  if (value === undefined) {
    throw new RequestError(`missing field ${JSON.stringify(name)}`);
  }
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RequestError(`field ${JSON.stringify(name)} must be an integer in 0..2^32-1`);
  }
  return value;
}

function hex(buf) {
  return Buffer.from(buf).toString('hex');
}

function addressField(req, name = 'address') {
  const a = field(req, name);
  if (typeof a !== 'object' || a === null || typeof a.name !== 'string') {
    throw new RequestError(`field ${JSON.stringify(name)} must be {"name": str, "device_id": int}`);
  }
  const deviceId = intField(a, 'device_id');
  return S.ProtocolAddress.new(a.name, deviceId);
}

function addrKey(address) {
  return `${address.name()}\u0000${address.deviceId()}`;
}

function messageType(req) {
  const t = field(req, 'type');
  if (t === 'prekey' || t === S.CiphertextMessageType.PreKey) return 'prekey';
  if (t === 'whisper' || t === S.CiphertextMessageType.Whisper) return 'whisper';
  throw new RequestError(`field "type" must be "prekey" or "whisper", got ${JSON.stringify(t)}`);
}

// ---------------------------------------------------------------------------------------------
// In-memory stores (one set per device)

class Device {
  constructor({ name, registrationId, deviceId, identity, trust }) {
    this.name = name;
    this.registrationId = registrationId;
    this.deviceId = deviceId;
    this.identity = identity; // S.IdentityKeyPair
    this.trust = trust; // 'all' | 'tofu'
    this.signedPreKeys = new Map(); // id -> Buffer (SignedPreKeyRecord serialized)
    this.currentSignedPreKeyId = null;
    this.preKeys = new Map(); // id -> Buffer (PreKeyRecord serialized)
    this.sessions = new Map(); // addrKey -> Buffer (SessionRecord serialized)
    this.sessionAddresses = new Map(); // addrKey -> {name, device_id}
    this.identities = new Map(); // addrKey -> Buffer (PublicKey serialized)

    const dev = this;
    this.sessionStore = new (class extends S.SessionStore {
      async saveSession(address, record) {
        const k = addrKey(address);
        dev.sessions.set(k, record.serialize());
        dev.sessionAddresses.set(k, { name: address.name(), device_id: address.deviceId() });
      }
      async getSession(address) {
        const data = dev.sessions.get(addrKey(address));
        return data === undefined ? null : S.SessionRecord.deserialize(data);
      }
      async getExistingSessions(addresses) {
        return addresses.map((address) => {
          const data = dev.sessions.get(addrKey(address));
          if (data === undefined) {
            throw new Error(`no session for ${address.toString()}`);
          }
          return S.SessionRecord.deserialize(data);
        });
      }
    })();
    this.identityStore = new (class extends S.IdentityKeyStore {
      async getIdentityKey() {
        return dev.identity.privateKey;
      }
      async getLocalRegistrationId() {
        return dev.registrationId;
      }
      async saveIdentity(address, key) {
        const k = addrKey(address);
        const old = dev.identities.get(k);
        const serialized = key.serialize();
        dev.identities.set(k, serialized);
        return old !== undefined && !old.equals(serialized)
          ? S.IdentityChange.ReplacedExisting
          : S.IdentityChange.NewOrUnchanged;
      }
      async isTrustedIdentity(address, key, _direction) {
        if (dev.trust === 'all') return true;
        const old = dev.identities.get(addrKey(address));
        return old === undefined || old.equals(key.serialize());
      }
      async getIdentity(address) {
        const data = dev.identities.get(addrKey(address));
        return data === undefined ? null : S.PublicKey.deserialize(data);
      }
    })();
    this.preKeyStore = new (class extends S.PreKeyStore {
      async savePreKey(id, record) {
        dev.preKeys.set(id, record.serialize());
      }
      async getPreKey(id) {
        const data = dev.preKeys.get(id);
        if (data === undefined) throw new Error(`no pre-key with id ${id}`);
        return S.PreKeyRecord.deserialize(data);
      }
      async removePreKey(id) {
        dev.preKeys.delete(id);
      }
    })();
    this.signedPreKeyStore = new (class extends S.SignedPreKeyStore {
      async saveSignedPreKey(id, record) {
        dev.signedPreKeys.set(id, record.serialize());
      }
      async getSignedPreKey(id) {
        const data = dev.signedPreKeys.get(id);
        if (data === undefined) throw new Error(`no signed pre-key with id ${id}`);
        return S.SignedPreKeyRecord.deserialize(data);
      }
    })();
    this.kyberPreKeyStore = new (class extends S.KyberPreKeyStore {
      async saveKyberPreKey(id, _record) {
        throw new Error(`this peer keeps no Kyber pre-keys (save ${id})`);
      }
      async getKyberPreKey(id) {
        throw new Error(`this peer has no Kyber pre-keys (asked for ${id})`);
      }
      async markKyberPreKeyUsed(id) {
        throw new Error(`this peer has no Kyber pre-keys (mark ${id} used)`);
      }
    })();
  }

  addSignedPreKey(id, privateKey, signature) {
    const publicKey = privateKey.getPublicKey();
    const sig = signature ?? this.identity.privateKey.sign(publicKey.serialize());
    const record = S.SignedPreKeyRecord.new(id, Date.now(), publicKey, privateKey, sig);
    this.signedPreKeys.set(id, record.serialize());
    this.currentSignedPreKeyId = id;
  }

  addPreKey(id, privateKey) {
    const record = S.PreKeyRecord.new(id, privateKey.getPublicKey(), privateKey);
    this.preKeys.set(id, record.serialize());
  }

  bundle() {
    const spk = S.SignedPreKeyRecord.deserialize(this.signedPreKeys.get(this.currentSignedPreKeyId));
    const preKeys = [...this.preKeys.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([id, data]) => ({ id, key: hex(S.PreKeyRecord.deserialize(data).publicKey().serialize()) }));
    return {
      identity_key: hex(this.identity.publicKey.serialize()),
      signed_pre_key_id: spk.id(),
      signed_pre_key: hex(spk.publicKey().serialize()),
      signed_pre_key_signature: hex(spk.signature()),
      pre_keys: preKeys,
      registration_id: this.registrationId,
      device_id: this.deviceId,
    };
  }
}

const devices = new Map();

function device(req) {
  const name = field(req, 'name');
  const dev = devices.get(name);
  if (dev === undefined) throw new RequestError(`no device named ${JSON.stringify(name)}`);
  return dev;
}

function newDeviceName(req) {
  const name = field(req, 'name');
  if (typeof name !== 'string') throw new RequestError('field "name" must be a string');
  if (devices.has(name) && req.replace !== true) {
    throw new RequestError(`device ${JSON.stringify(name)} already exists (pass "replace": true)`);
  }
  return name;
}

function trustField(req) {
  const trust = req.trust ?? 'all';
  if (trust !== 'all' && trust !== 'tofu') throw new RequestError('field "trust" must be "all" or "tofu"');
  return trust;
}

function privateKey(data, name) {
  try {
    return S.PrivateKey.deserialize(data);
  } catch (e) {
    throw new RequestError(`field ${JSON.stringify(name)}: ${e.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Minimal protobuf reader (for session records and message dumps)

function readVarint(buf, pos) {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++];
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw new Error('varint too long');
  }
}

// Returns Map<fieldNumber, Array<value>>; varints are BigInt, everything else Buffer.
function decodeProto(buf) {
  const fields = new Map();
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const num = Number(key >> 3n);
    const wire = Number(key & 7n);
    let value;
    if (wire === 0) {
      [value, pos] = readVarint(buf, pos);
    } else if (wire === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      const end = pos + Number(len);
      if (end > buf.length) throw new Error('truncated length-delimited field');
      value = buf.subarray(pos, end);
      pos = end;
    } else if (wire === 1) {
      if (pos + 8 > buf.length) throw new Error('truncated fixed64');
      value = buf.subarray(pos, pos + 8);
      pos += 8;
    } else if (wire === 5) {
      if (pos + 4 > buf.length) throw new Error('truncated fixed32');
      value = buf.subarray(pos, pos + 4);
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
    if (!fields.has(num)) fields.set(num, []);
    fields.get(num).push(value);
  }
  return fields;
}

function pfirst(fields, num) {
  const v = fields.get(num);
  return v === undefined ? undefined : v[0];
}

function pint(fields, num) {
  const v = pfirst(fields, num);
  return v === undefined ? null : Number(v);
}

function pbytes(fields, num) {
  const v = pfirst(fields, num);
  return v === undefined ? null : hex(v);
}

// SessionStructure (storage.proto): 1 session_version, 2 local_identity_public,
// 3 remote_identity_public, 4 root_key, 5 previous_counter, 6 sender_chain, 7 receiver_chains,
// 9 pending_pre_key, 10 remote_registration_id, 11 local_registration_id, 13 alice_base_key.
function describeSessionState(buf) {
  const s = decodeProto(buf);
  const out = {
    version: pint(s, 1) ?? 0,
    local_identity_key: pbytes(s, 2),
    remote_identity_key: pbytes(s, 3),
    previous_counter: pint(s, 5) ?? 0,
    remote_registration_id: pint(s, 10) ?? 0,
    local_registration_id: pint(s, 11) ?? 0,
    alice_base_key: pbytes(s, 13),
    receiver_chains: (s.get(7) ?? []).length,
  };
  const sender = pfirst(s, 6);
  if (sender !== undefined) {
    const chain = decodeProto(sender);
    out.sender_ratchet_key = pbytes(chain, 1);
    const ck = pfirst(chain, 3);
    out.sender_chain_index = ck === undefined ? 0 : pint(decodeProto(ck), 1) ?? 0;
  }
  const pending = pfirst(s, 9);
  if (pending !== undefined) {
    const p = decodeProto(pending);
    out.pending_pre_key = {
      pre_key_id: pint(p, 1),
      signed_pre_key_id: pint(p, 3),
      base_key: pbytes(p, 2),
    };
  } else {
    out.pending_pre_key = null;
  }
  return out;
}

// The current sender chain key {index, key} of a serialized SessionRecord.
function senderChainKey(recordBytes) {
  const current = pfirst(decodeProto(recordBytes), 1);
  if (current === undefined) throw new Error('session has no current state');
  const state = decodeProto(current);
  const sender = pfirst(state, 6);
  if (sender === undefined) throw new Error('session has no sender chain');
  const ck = decodeProto(pfirst(decodeProto(sender), 3));
  return { index: pint(ck, 1) ?? 0, key: Buffer.from(pfirst(ck, 2)) };
}

// wire.proto SignalMessage: 1 ratchet_key, 2 counter, 3 previous_counter, 4 ciphertext.
// Body: version byte || protobuf || 8-byte truncated HMAC.
function describeSignalMessage(body) {
  if (body.length < 1 + 8) throw new Error(`SignalMessage too short (${body.length} bytes)`);
  const f = decodeProto(body.subarray(1, body.length - 8));
  return {
    version_byte: body[0],
    message_version: body[0] >> 4,
    ratchet_key: pbytes(f, 1),
    counter: pint(f, 2),
    previous_counter: pint(f, 3),
    ciphertext: pbytes(f, 4),
    mac: hex(body.subarray(body.length - 8)),
    fields: [...f.keys()].sort((a, b) => a - b),
  };
}

// wire.proto PreKeySignalMessage: 5 registration_id, 1 pre_key_id, 6 signed_pre_key_id,
// 7 kyber_pre_key_id, 8 kyber_ciphertext, 2 base_key, 3 identity_key, 4 message.
function describePreKeySignalMessage(body) {
  if (body.length < 1) throw new Error('PreKeySignalMessage is empty');
  const f = decodeProto(body.subarray(1));
  const inner = pfirst(f, 4);
  return {
    version_byte: body[0],
    message_version: body[0] >> 4,
    registration_id: pint(f, 5),
    pre_key_id: pint(f, 1),
    signed_pre_key_id: pint(f, 6),
    kyber_pre_key_id: pint(f, 7),
    kyber_ciphertext: pbytes(f, 8),
    base_key: pbytes(f, 2),
    identity_key: pbytes(f, 3),
    message: inner === undefined ? null : describeSignalMessage(inner),
    fields: [...f.keys()].sort((a, b) => a - b),
  };
}

// ---------------------------------------------------------------------------------------------
// Test-only: re-version a message libsignal just produced.  The MAC covers the version byte, so
// the new byte needs a MAC recomputed with the message's MAC key, derived here from the sender
// chain key read out of the session record before the encryption (libsignal v3 KDFs:
// seed = HMAC-SHA256(chain_key, 0x01); HKDF-SHA256(seed, salt = none, "WhisperMessageKeys", 80)
// = cipher_key(32) || mac_key(32) || iv(16); MAC = HMAC-SHA256(mac_key, sender_identity(33) ||
// receiver_identity(33) || version || protobuf)[..8]).

function messageMacKey(chainKey, steps) {
  let key = chainKey;
  for (let i = 0; i < steps; i++) key = createHmac('sha256', key).update(Buffer.from([0x02])).digest();
  const seed = createHmac('sha256', key).update(Buffer.from([0x01])).digest();
  const keys = Buffer.from(hkdfSync('sha256', seed, Buffer.alloc(0), Buffer.from('WhisperMessageKeys'), 80));
  return keys.subarray(32, 64);
}

function reversionSignalMessage(body, versionByte, macKey, senderIdentity, receiverIdentity) {
  const out = Buffer.from(body);
  out[0] = versionByte;
  const content = out.subarray(0, out.length - 8);
  const mac = createHmac('sha256', macKey)
    .update(senderIdentity)
    .update(receiverIdentity)
    .update(content)
    .digest()
    .subarray(0, 8);
  mac.copy(out, out.length - 8);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Ops

const OPS = new Map();
function op(name, fn) {
  OPS.set(name, fn);
}

op('ping', async () => ({ libsignal: LIBSIGNAL_VERSION, node: process.versions.node }));

// device_new {name, registration_id?, device_id?, pre_keys? (count, default 100),
//             pre_key_start? (first id, default 1), signed_pre_key_id? (default 1),
//             trust? ("all" | "tofu"), replace?}
op('device_new', async (req) => {
  const name = newDeviceName(req);
  const dev = new Device({
    name,
    registrationId: intField(req, 'registration_id', randomInt(1, 16381)),
    deviceId: intField(req, 'device_id', 1),
    identity: S.IdentityKeyPair.generate(),
    trust: trustField(req),
  });
  const count = intField(req, 'pre_keys', 100);
  const start = intField(req, 'pre_key_start', 1);
  dev.addSignedPreKey(intField(req, 'signed_pre_key_id', 1), S.PrivateKey.generate());
  for (let i = 0; i < count; i++) dev.addPreKey(start + i, S.PrivateKey.generate());
  devices.set(name, dev);
  return dev.bundle();
});

// device_import {name, registration_id?, device_id?, identity_private (32),
//                signed_pre_key: {id, private (32), signature? (64)}, pre_keys: [{id, private (32)}],
//                trust?, replace?}
// libsignal clamps private keys on import (see `identity`).  Without a given signature the
// signed pre-key is signed afresh by libsignal (XEdDSA with a random nonce).
op('device_import', async (req) => {
  const name = newDeviceName(req);
  const identityPrivate = privateKey(hexField(req, 'identity_private', 32), 'identity_private');
  const dev = new Device({
    name,
    registrationId: intField(req, 'registration_id', randomInt(1, 16381)),
    deviceId: intField(req, 'device_id', 1),
    identity: new S.IdentityKeyPair(identityPrivate.getPublicKey(), identityPrivate),
    trust: trustField(req),
  });
  const spk = field(req, 'signed_pre_key');
  if (typeof spk !== 'object' || spk === null) throw new RequestError('field "signed_pre_key" must be an object');
  const signature = spk.signature === undefined || spk.signature === null
    ? undefined
    : hexField(spk, 'signature', 64);
  dev.addSignedPreKey(intField(spk, 'id'), privateKey(hexField(spk, 'private', 32), 'signed_pre_key.private'), signature);
  const preKeys = req.pre_keys ?? [];
  if (!Array.isArray(preKeys)) throw new RequestError('field "pre_keys" must be a list');
  for (const pk of preKeys) {
    dev.addPreKey(intField(pk, 'id'), privateKey(hexField(pk, 'private', 32), 'pre_keys[].private'));
  }
  devices.set(name, dev);
  return dev.bundle();
});

op('device_delete', async (req) => {
  device(req);
  devices.delete(req.name);
  return {};
});

// bundle {name}: the device's current bundle (the pre-keys still in its store).
op('bundle', async (req) => device(req).bundle());

// device_info {name}: what the device's stores hold.
op('device_info', async (req) => {
  const dev = device(req);
  return {
    registration_id: dev.registrationId,
    device_id: dev.deviceId,
    identity_key: hex(dev.identity.publicKey.serialize()),
    signed_pre_key_ids: [...dev.signedPreKeys.keys()].sort((a, b) => a - b),
    pre_key_ids: [...dev.preKeys.keys()].sort((a, b) => a - b),
    sessions: [...dev.sessionAddresses.values()],
    trust: dev.trust,
  };
});

// process_bundle {name, address, registration_id? (default 0), identity_key (33),
//                 signed_pre_key_id, signed_pre_key (33), signed_pre_key_signature (64),
//                 pre_key_id?, pre_key? (33; both or neither)}
// No Kyber pre-key is passed: libsignal 0.72.1 then builds an X3DH (version 3) session.
op('process_bundle', async (req) => {
  const dev = device(req);
  const address = addressField(req);
  const hasPreKey = req.pre_key !== undefined && req.pre_key !== null;
  const hasPreKeyId = req.pre_key_id !== undefined && req.pre_key_id !== null;
  if (hasPreKey !== hasPreKeyId) throw new RequestError('give both "pre_key_id" and "pre_key", or neither');
  const bundle = S.PreKeyBundle.new(
    intField(req, 'registration_id', 0),
    address.deviceId(),
    hasPreKeyId ? intField(req, 'pre_key_id') : null,
    hasPreKey ? S.PublicKey.deserialize(hexField(req, 'pre_key')) : null,
    intField(req, 'signed_pre_key_id'),
    S.PublicKey.deserialize(hexField(req, 'signed_pre_key')),
    hexField(req, 'signed_pre_key_signature'),
    S.PublicKey.deserialize(hexField(req, 'identity_key')),
  );
  await S.processPreKeyBundle(bundle, address, dev.sessionStore, dev.identityStore);
  return {};
});

// encrypt {name, address, plaintext, skip? (messages encrypted and thrown away first),
//          version_byte? (test-only: rewrite libsignal's version byte, MAC recomputed)}
//   -> {type: "prekey" | "whisper", body, counter (of the SignalMessage),
//       libsignal_body (only with version_byte: the bytes libsignal produced)}
op('encrypt', async (req) => {
  const dev = device(req);
  const address = addressField(req);
  const plaintext = hexField(req, 'plaintext');
  const skip = intField(req, 'skip', 0);
  for (let i = 0; i < skip; i++) {
    await S.signalEncrypt(Buffer.alloc(1), address, dev.sessionStore, dev.identityStore);
  }
  const versionByte = req.version_byte === undefined || req.version_byte === null
    ? null
    : intField(req, 'version_byte');
  if (versionByte !== null && versionByte > 0xff) throw new RequestError('"version_byte" must be a byte');
  const before = versionByte === null ? null : dev.sessions.get(addrKey(address));

  const message = await S.signalEncrypt(plaintext, address, dev.sessionStore, dev.identityStore);
  const kind = message.type();
  let body = message.serialize();
  let type;
  let signal;
  if (kind === S.CiphertextMessageType.PreKey) {
    type = 'prekey';
    signal = describePreKeySignalMessage(body).message;
  } else if (kind === S.CiphertextMessageType.Whisper) {
    type = 'whisper';
    signal = describeSignalMessage(body);
  } else {
    throw new Error(`libsignal produced an unexpected message type ${kind}`);
  }

  if (versionByte !== null) {
    const ck = senderChainKey(before);
    if (signal.counter < ck.index) throw new Error('counter below the chain index');
    const macKey = messageMacKey(ck.key, signal.counter - ck.index);
    const theirIdentity = await dev.identityStore.getIdentity(address);
    if (theirIdentity === null) throw new Error('no stored identity for the address');
    const ours = dev.identity.publicKey.serialize();
    const theirs = theirIdentity.serialize();
    if (type === 'whisper') {
      body = reversionSignalMessage(body, versionByte, macKey, ours, theirs);
    } else {
      const inner = Buffer.from(pfirst(decodeProto(body.subarray(1)), 4));
      const at = body.indexOf(inner);
      if (at < 0) throw new Error('inner SignalMessage not found in the PreKeySignalMessage');
      const newInner = reversionSignalMessage(inner, versionByte, macKey, ours, theirs);
      body = Buffer.from(body);
      newInner.copy(body, at);
      body[0] = versionByte;
    }
  }
  const out = { type, body: hex(body), counter: signal.counter };
  if (versionByte !== null) out.libsignal_body = hex(message.serialize());
  return out;
});

// decrypt {name, address, type ("prekey" | "whisper"), body} -> {plaintext, ...message fields}
op('decrypt', async (req) => {
  const dev = device(req);
  const address = addressField(req);
  const type = messageType(req);
  const body = hexField(req, 'body');
  if (type === 'prekey') {
    const msg = S.PreKeySignalMessage.deserialize(body);
    const info = {
      version: msg.version(),
      registration_id: msg.registrationId(),
      pre_key_id: msg.preKeyId(),
      signed_pre_key_id: msg.signedPreKeyId(),
    };
    const plaintext = await S.signalDecryptPreKey(
      msg, address, dev.sessionStore, dev.identityStore,
      dev.preKeyStore, dev.signedPreKeyStore, dev.kyberPreKeyStore,
    );
    return { plaintext: hex(plaintext), ...info };
  }
  const msg = S.SignalMessage.deserialize(body);
  const info = { version: msg.messageVersion(), counter: msg.counter() };
  const plaintext = await S.signalDecrypt(msg, address, dev.sessionStore, dev.identityStore);
  return { plaintext: hex(plaintext), ...info };
});

// parse {type, body}: libsignal's deserialization (accepts or throws) plus a field dump.
op('parse', async (req) => {
  const type = messageType(req);
  const body = hexField(req, 'body');
  if (type === 'prekey') {
    const msg = S.PreKeySignalMessage.deserialize(body);
    return {
      libsignal: {
        version: msg.version(),
        registration_id: msg.registrationId(),
        pre_key_id: msg.preKeyId(),
        signed_pre_key_id: msg.signedPreKeyId(),
      },
      wire: describePreKeySignalMessage(body),
    };
  }
  const msg = S.SignalMessage.deserialize(body);
  return {
    libsignal: { version: msg.messageVersion(), counter: msg.counter(), ciphertext: hex(msg.body()) },
    wire: describeSignalMessage(body),
  };
});

// session_info {name, address}
op('session_info', async (req) => {
  const dev = device(req);
  const address = addressField(req);
  const stored = await dev.identityStore.getIdentity(address);
  const out = {
    exists: false,
    has_current_state: false,
    stored_identity_key: stored === null ? null : hex(stored.serialize()),
  };
  const data = dev.sessions.get(addrKey(address));
  if (data === undefined) return out;
  const record = S.SessionRecord.deserialize(data);
  const r = decodeProto(data);
  const current = pfirst(r, 1);
  Object.assign(out, {
    exists: true,
    has_current_state: record.hasCurrentState(),
    archived_states: (r.get(2) ?? []).length,
    archived_versions: (r.get(2) ?? []).map((s) => pint(decodeProto(s), 1) ?? 0),
  });
  if (current !== undefined) {
    const state = describeSessionState(current);
    Object.assign(out, state, {
      local_registration_id: record.localRegistrationId(),
      remote_registration_id: record.remoteRegistrationId(),
    });
  }
  return out;
});

op('archive_session', async (req) => {
  const dev = device(req);
  const address = addressField(req);
  const k = addrKey(address);
  const data = dev.sessions.get(k);
  if (data === undefined) throw new RequestError(`no session for ${address.toString()}`);
  const record = S.SessionRecord.deserialize(data);
  record.archiveCurrentState();
  dev.sessions.set(k, record.serialize());
  return {};
});

op('delete_session', async (req) => {
  const dev = device(req);
  const k = addrKey(addressField(req));
  const existed = dev.sessions.delete(k);
  dev.sessionAddresses.delete(k);
  return { existed };
});

// identity {name} -> {identity_key (33, 0x05||X25519), identity_private (32, as libsignal stores it: clamped)}
op('identity', async (req) => {
  const dev = device(req);
  return {
    identity_key: hex(dev.identity.publicKey.serialize()),
    identity_private: hex(dev.identity.privateKey.serialize()),
  };
});

// public_key {private (32)} -> {public_key (33), private (32, clamped by libsignal)}
op('public_key', async (req) => {
  const k = privateKey(hexField(req, 'private', 32), 'private');
  return { public_key: hex(k.getPublicKey().serialize()), private: hex(k.serialize()) };
});

// sign {name | private (32), message} -> {signature (64)}: libsignal's XEdDSA (random nonce).
op('sign', async (req) => {
  const message = hexField(req, 'message');
  const key = req.private !== undefined && req.private !== null
    ? privateKey(hexField(req, 'private', 32), 'private')
    : device(req).identity.privateKey;
  return { signature: hex(key.sign(message)) };
});

// verify {identity_key (33), message, signature} -> {valid}
op('verify', async (req) => {
  const key = S.PublicKey.deserialize(hexField(req, 'identity_key'));
  return { valid: key.verify(hexField(req, 'message'), hexField(req, 'signature')) };
});

// agree {private (32), public (33)} -> {shared (32)}: X25519 as libsignal does it.
op('agree', async (req) => {
  const k = privateKey(hexField(req, 'private', 32), 'private');
  return { shared: hex(k.agree(S.PublicKey.deserialize(hexField(req, 'public')))) };
});

op('remove_pre_key', async (req) => {
  const dev = device(req);
  const id = intField(req, 'id');
  const existed = dev.preKeys.delete(id);
  return { existed };
});

// ---------------------------------------------------------------------------------------------
// Serving

function errorText(err) {
  const name = (err && (err.name || (err.constructor && err.constructor.name))) || 'Error';
  const message = err && err.message !== undefined ? err.message : String(err);
  return `${name}: ${message}`;
}

async function handleLine(line) {
  let req;
  try {
    req = JSON.parse(line);
    if (typeof req !== 'object' || req === null || Array.isArray(req)) {
      throw new RequestError('request must be a JSON object');
    }
    if (req.op === 'quit') return [{ ok: true }, true];
    const fn = OPS.get(req.op);
    if (fn === undefined) throw new RequestError(`unknown op ${JSON.stringify(req.op)}`);
    const result = await fn(req);
    return [{ ok: true, ...result }, false];
  } catch (err) {
    const response = { ok: false, error: errorText(err) };
    if (err && typeof err.code === 'number' && err instanceof S.LibSignalErrorBase) {
      response.code = S.ErrorCode[err.code];
    }
    return [response, false];
  }
}

function send(response) {
  let text;
  try {
    text = JSON.stringify(response);
  } catch (err) {
    text = JSON.stringify({ ok: false, error: errorText(err) });
  }
  process.stdout.write(text + '\n');
}

function serve() {
  // The test that drove us went away: nothing left to answer.
  process.stdout.on('error', () => process.exit(0));
  let pending = '';
  let chain = Promise.resolve();
  let quitting = false;

  const finish = () => {
    quitting = true;
    // Let stdout drain, then leave even if something keeps the loop alive.
    process.stdout.write('', () => process.exit(0));
  };

  const enqueue = (line) => {
    chain = chain.then(async () => {
      if (quitting) return;
      const [response, quit] = await handleLine(line);
      send(response);
      if (quit) finish();
    });
  };

  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line !== '') enqueue(line);
    }
  });
  process.stdin.on('end', () => {
    const line = pending.trim();
    pending = '';
    if (line !== '') enqueue(line);
    chain = chain.then(() => {
      if (!quitting) finish();
    });
  });
}

serve();
