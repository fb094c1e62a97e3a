// One cold `import` + initialisation in a fresh process, for bench.mjs: `node init-once.mjs
// olmo|sdk` prints the CPU milliseconds it took (user + system of this process).
const which = process.argv[2];
const start = process.cpuUsage();
if (which === 'olmo') {
  const m = await import('../pkg/index.js');
  await m.init();
} else if (which === 'sdk') {
  const m = await import('@matrix-org/matrix-sdk-crypto-wasm');
  await m.initAsync();
} else {
  throw new Error('usage: node init-once.mjs olmo|sdk');
}
const used = process.cpuUsage(start);
console.log(((used.user + used.system) / 1000).toFixed(3));
