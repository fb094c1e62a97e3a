// The npm package as a user gets it: `npm pack`, installed into a scratch project, imported
// by name from an ES module, used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');

const app = `
import { init, Account, Store, MatrixMachine, XmppMachine, CryptoError } from 'olmo-wasm';
import { JsonFileStore } from 'olmo-wasm/json-file-store';
await init();
const alice = new Account();
const bob = new Account();
bob.generateOneTimeKeys(1);
const session = alice.createOutboundSession(bob.curve25519, Object.values(bob.oneTimeKeys())[0]);
const { plaintext } = bob.createInboundSession(alice.curve25519, session.encrypt(new TextEncoder().encode('packed')));
const key = new Uint8Array(32).fill(3);
const machine = await MatrixMachine.open(Store.fromJs(new JsonFileStore('store.json')), key, '@a:example.org', 'A');
const again = await MatrixMachine.open(Store.fromJs(new JsonFileStore('store.json')), key, '@a:example.org', 'A');
const xmpp = await XmppMachine.open(Store.memory(), key, 'a@example.org');
let typed = false;
try { session.decrypt({ type: 1, body: 'AAAA' }); } catch (e) { typed = e instanceof CryptoError; }
console.log(JSON.stringify({
  plaintext: new TextDecoder().decode(plaintext),
  same: machine.identityKeys.curve25519 === again.identityKeys.curve25519,
  device: (await xmpp.deviceId()) > 0,
  typed,
}));
`;

test('npm pack gives a tarball that installs into a project and works by name', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'olmo-wasm-pack-'));
  try {
    execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: here, stdio: 'pipe' });
    const [tarball] = (await readdir(dir)).filter((f) => f.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack made a tarball');
    const project = join(dir, 'project');
    execFileSync('mkdir', ['-p', project]);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
    execFileSync('npm', ['install', '--silent', '--no-audit', '--no-fund', '--offline', join(dir, tarball)], { cwd: project, stdio: 'pipe' });
    await writeFile(join(project, 'app.js'), app);
    const out = JSON.parse(execFileSync('node', ['app.js'], { cwd: project, encoding: 'utf8' }));
    assert.deepEqual(out, { plaintext: 'packed', same: true, device: true, typed: true });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
