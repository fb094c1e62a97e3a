/** Base class of every olmo error: `kind` is the core's variant (camelCase), `message` its reason. */
export class OlmoError extends Error {
  kind: string;
  [field: string]: unknown;
}
/** A value passed in that the binding cannot use. */
export class ArgumentError extends OlmoError {}
/** A low-level object refused (`decode`, `key`, `decrypt`, `encrypt`, `sessionCreation`, `persist`, `keyExport`, ...). */
export class CryptoError extends OlmoError {}
/** The store failed: `conflict` (with `table`, `key`, `expected`, `found`), `corrupt`, `newerSchema`, `backend`, `invalidBatch`. */
export class StoreError extends OlmoError {}
/** The Matrix machine refused an operation (`json`, `tooLarge`, `wrongAccount`, `corrupt`, `unknownRequest`, `roomNotEncrypted`, ...). */
export class MachineError extends OlmoError {}
/** A room event did not decrypt (`noSession`, `unknownIndex`, `withheld`, `replay`, `badSignature`, `senderMismatch`, `malformed`). */
export class DecryptionError extends OlmoError {}
/** The XMPP machine refused an operation or a message (`stanza`, `badBundle`, `identityChanged`, `decrypt`, ...). */
export class XmppError extends OlmoError {}
/** A store failed the core's conformance suite: `check` and `detail`. */
export class ConformanceError extends OlmoError {
  check: string;
  detail: string;
}
