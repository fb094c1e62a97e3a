export * from '../pkg/olmo_wasm.js';
export * from './errors.js';
export { MapStore } from './map-store.js';
export { IndexedDbStore } from './indexeddb-store.js';

/** What `init` accepts: a URL or path of the `.wasm`, a Response, its bytes, or a compiled module. */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/** Loads the WebAssembly module once; await it before using anything else. */
export function init(input?: InitInput | Promise<InitInput>): Promise<void>;
