// The errors olmo throws and rejects with. Every one is an OlmoError with `kind` (the core's
// variant, camelCase) and the core's reason as `message`, plus the variant's fields (a
// conflict's `table`, `key`, `expected` and `found`; a decryption's `sessionId`, ...). None
// carries key material or plaintext.

/** Base class of every olmo error. */
export class OlmoError extends Error {
  constructor(message) {
    super(message);
    this.name = 'OlmoError';
  }
}

/** A value passed in that the binding cannot use (wrong type, wrong length). */
export class ArgumentError extends OlmoError {
  constructor(message) { super(message); this.name = 'ArgumentError'; }
}

/** A low-level object refused: decoding, keys, decryption, persistence, key export files. */
export class CryptoError extends OlmoError {
  constructor(message) { super(message); this.name = 'CryptoError'; }
}

/** The store failed: `conflict` (retries ran out), `corrupt`, `newerSchema`, `backend`, ... */
export class StoreError extends OlmoError {
  constructor(message) { super(message); this.name = 'StoreError'; }
}

/** The Matrix machine refused an operation; the store is unchanged. */
export class MachineError extends OlmoError {
  constructor(message) { super(message); this.name = 'MachineError'; }
}

/** A room event did not decrypt: `noSession`, `unknownIndex`, `withheld`, `replay`, ... */
export class DecryptionError extends OlmoError {
  constructor(message) { super(message); this.name = 'DecryptionError'; }
}

/** The XMPP machine refused an operation or a message. */
export class XmppError extends OlmoError {
  constructor(message) { super(message); this.name = 'XmppError'; }
}

/** A store failed the core's conformance suite: `check` names the check, `detail` what was seen. */
export class ConformanceError extends OlmoError {
  constructor(message) { super(message); this.name = 'ConformanceError'; }
}
