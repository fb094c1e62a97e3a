// Writes pkg/index.js, the package's entry: wasm-bindgen's glue (pkg/olmo_wasm.js) and
// js/index.js (init, the error classes, the stores written in JavaScript) in one ES module.
// A fresh Node spends about 1 ms of CPU in its module loader on each further module, a
// twelfth of import + init. js/index.js stays a module of its own that imports the glue, so
// it reads and runs as written; here its import of the glue goes and the glue's default
// export (its async init) becomes the local name js/index.js imported it as.
// Run by build.sh after wasm-bindgen: `node make-entry.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';

const here = new URL('.', import.meta.url);
const glue = readFileSync(new URL('pkg/olmo_wasm.js', here), 'utf8');
const entry = readFileSync(new URL('js/index.js', here), 'utf8');

/** `text` with `from` replaced by `to`; fails if `from` is not there exactly once. */
function replaceOnce(text, from, to, where) {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) {
    throw new Error(`make-entry: expected exactly one ${JSON.stringify(from)} in ${where}`);
  }
  return text.slice(0, at) + to + text.slice(at + from.length);
}

const glueExports = 'export { initSync, __wbg_init as default };';
const ownGlue = replaceOnce(glue, glueExports, 'export { initSync };\nconst initWasm = __wbg_init;', 'the glue');
let own = replaceOnce(entry, "import initWasm, { initSync, __registerErrorClasses } from '../pkg/olmo_wasm.js';\n", '', 'js/index.js');
own = replaceOnce(own, "export * from '../pkg/olmo_wasm.js';\n", '', 'js/index.js');
writeFileSync(new URL('pkg/index.js', here), `${ownGlue}\n// ---- js/index.js\n\n${own}`);
