// ByteArray forms of the calls that take their bytes zero-copy. Those calls borrow `&[u8]`,
// which UniFFI hands Kotlin as a direct ByteBuffer (and Python as plain bytes, sparing it a copy
// per call); apps compile this file beside the generated bindings and pass ByteArray as
// everywhere else. A caller that already holds a direct buffer calls the buffer form.
package org.olmo

import java.nio.ByteBuffer

/** A direct buffer holding a copy of these bytes, as the zero-copy calls take them. */
fun ByteArray.direct(): ByteBuffer = ByteBuffer.allocateDirect(size).put(this).flip()

/** Encrypts [plaintext]; the message's type is [OlmSession.messageType]. */
fun OlmSession.encrypt(plaintext: ByteArray): ByteArray = encrypt(plaintext.direct())

/** Decrypts an Olm message of [messageType] (0 pre-key, 1 normal). */
fun OlmSession.decrypt(messageType: UByte, ciphertext: ByteArray): ByteArray =
    decrypt(messageType, ciphertext.direct())

/** Whether this session is the one the pre-key message [ciphertext] starts. */
fun OlmSession.matchesInboundSession(ciphertext: ByteArray): Boolean =
    matchesInboundSession(ciphertext.direct())

/** Creates the session the pre-key message [ciphertext] from [identityKey] starts. */
fun OlmAccount.createInboundSession(identityKey: String, ciphertext: ByteArray): InboundSessionCreation =
    createInboundSession(identityKey, ciphertext.direct())

/** Encrypts [plaintext] with the next message key of the room's session. */
fun OutboundGroupSession.encrypt(plaintext: ByteArray): ByteArray = encrypt(plaintext.direct())

/** Decrypts a Megolm message. */
fun InboundGroupSession.decrypt(message: ByteArray): ByteArray = decrypt(message.direct())

/** The message index a Megolm message claims, read without decrypting it. */
fun megolmMessageIndex(message: ByteArray): UInt = megolmMessageIndex(message.direct())
