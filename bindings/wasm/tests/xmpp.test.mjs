import { test } from 'node:test';
import assert from 'node:assert/strict';
import { init, Store, XmppMachine, MapStore, XmppError } from '../pkg/index.js';

await init();
const NOW = 1_765_000_000_000;
const ROMEO = 'romeo@montague.example';
const JULIET = 'juliet@capulet.example';
const DEVICE_LISTS = { omemo2: 'urn:xmpp:omemo:2:devices', omemo03: 'eu.siacs.conversations.axolotl.devicelist' };

/** PEP nodes and an archive per bare JID, as much of a server as OMEMO needs. */
class Server {
  constructor() { this.pep = new Map(); this.archive = new Map(); this.sent = 0; }
  publish(jid, items) { for (const i of items) this.pep.set(`${jid}|${i.node}|${i.itemId}`, i.payload); }
  item(jid, node, id) { return this.pep.get(`${jid}|${node}|${id}`); }
  send(from, to, payload) {
    const message = { id: `msg-${++this.sent}`, from, to, payload };
    for (const jid of new Set([to, from])) {
      if (!this.archive.has(jid)) this.archive.set(jid, []);
      this.archive.get(jid).push(message);
    }
  }
}

class Device {
  static async open(server, store, jid, n) {
    const d = new Device();
    d.server = server; d.jid = jid; d.read = 0;
    d.machine = await XmppMachine.open(store, new Uint8Array(32).fill(n), jid, NOW);
    d.id = await d.machine.deviceId();
    await d.refresh([jid]);
    await d.publish();
    return d;
  }
  async publish() { this.server.publish(this.jid, await this.machine.publish(NOW)); }
  async refresh(jids) {
    for (const jid of jids) for (const node of Object.values(DEVICE_LISTS)) {
      const list = this.server.item(jid, node, 'current');
      if (!list) continue;
      const update = await this.machine.receiveDeviceList(jid, list);
      assert.ok(Array.isArray(update.added) && update.added.every(Number.isInteger), JSON.stringify(update));
      assert.ok(Array.isArray(update.removed) && typeof update.republish === 'boolean');
      assert.ok(update.newDeviceId === null || Number.isInteger(update.newDeviceId));
    }
  }
  async send(to, body) {
    await this.refresh([to, this.jid]);
    for (const r of await this.machine.bundleRequests([to])) {
      const bundle = this.server.item(r.jid, r.node, r.itemId);
      if (bundle) await this.machine.receiveBundle(r.jid, r.deviceId, bundle);
    }
    const outcome = await this.machine.encrypt([to], to, body, NOW);
    for (const s of outcome.stanzas) this.server.send(this.jid, to, s.payload);
    return outcome;
  }
  async catchUp() {
    const messages = (this.server.archive.get(this.jid) ?? []).slice(this.read);
    this.read += messages.length;
    const bodies = [];
    for (const m of messages) {
      if (m.from === this.jid && new RegExp(`sid=['"]${this.id}['"]`).test(m.payload)) continue;
      const outcome = await this.machine.decrypt(m.from, m.to, m.payload, m.id);
      for (const r of outcome.replies) this.server.send(this.jid, r.to, r.payload);
      if (outcome.republish) await this.publish();
      if (outcome.message?.body) bodies.push(outcome.message.body);
    }
    return bodies;
  }
}

for (const [name, makeStore] of [['memory', () => Store.memory()], ['JavaScript', () => Store.fromJs(new MapStore())]]) {
  test(`OMEMO between two accounts over ${name} stores: key exchange answered, replies both ways`, async () => {
    const server = new Server();
    const romeo = await Device.open(server, makeStore(), ROMEO, 1);
    const juliet = await Device.open(server, makeStore(), JULIET, 2);
    const sent = await romeo.send(JULIET, 'Hi Juliet');
    assert.deepEqual(sent.skipped, []);
    assert.equal(sent.stanzas.length, 1);
    assert.equal(sent.stanzas[0].version, 'omemo2');
    assert.deepEqual(await juliet.catchUp(), ['Hi Juliet']);
    await romeo.catchUp();
    const reply = await juliet.send(ROMEO, 'Hi Romeo');
    assert.deepEqual(reply.skipped, []);
    assert.deepEqual(await romeo.catchUp(), ['Hi Romeo']);
    const decisions = await juliet.machine.trustDecisions(ROMEO);
    assert.equal(decisions.length, 1);
    assert.equal(decisions[0].fingerprint, await romeo.machine.fingerprint());
    assert.equal(decisions[0].trust, 'blind');
  });
}

test('an archive read twice decrypts once; a distrusted key gets nothing', async () => {
  const server = new Server();
  const romeo = await Device.open(server, Store.memory(), ROMEO, 3);
  const juliet = await Device.open(server, Store.memory(), JULIET, 4);
  await romeo.send(JULIET, 'once');
  assert.deepEqual(await juliet.catchUp(), ['once']);
  juliet.read = 0;
  assert.deepEqual(await juliet.catchUp(), ['once']);
  await juliet.machine.setTrust(ROMEO, await romeo.machine.fingerprint(), 'distrusted');
  const outcome = await juliet.send(ROMEO, 'nothing for you');
  assert.equal(outcome.stanzas.length, 0);
  assert.deepEqual(outcome.skipped.map((s) => s.reason), ['distrusted']);
  await assert.rejects(juliet.machine.decrypt(ROMEO, JULIET, '<nonsense/>'),
    (e) => e instanceof XmppError && e.kind === 'stanza');
  await assert.rejects(juliet.machine.setTrust(ROMEO, 'ab', 'maybe'), /trust is/);
});
