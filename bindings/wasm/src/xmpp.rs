//! The XMPP machine: one OMEMO account (OMEMO 2 and 0.3 at once) over a store, sans I/O: stanza
//! payloads (XML strings) in, payloads and requests out. Every method that touches the store
//! returns a `Promise` and commits once before it resolves.

use std::rc::Rc;

use crate::convert::promise;
use js_sys::Promise;
use olmo::xmpp::{EncryptedStanza, SkipReason, TrustPolicy, XmppMachine as Machine};
use wasm_bindgen::prelude::*;

use crate::convert::{array, object, optional_str, optional_u32, rng, timestamp};
use crate::errors::{argument_error, xmpp};
use crate::store::{AnyStore, Store};
use crate::types::{version_name, version_of, xmpp_trust_name, xmpp_trust_of};

#[wasm_bindgen(typescript_custom_section)]
const TS: &str = r#"
/** An OMEMO version. */
export type OmemoVersion = "omemo2" | "omemo03";
/** A trust decision about a contact's identity key. */
export type OmemoTrust = "trusted" | "distrusted" | "undecided" | "blind";
/** A PEP item to publish: wrap the payload in `<publish node=…><item id=…>`. */
export interface PepItem { version: OmemoVersion; node: string; itemId: string; payload: string }
/** What a received device list changed. */
export interface DeviceListUpdate { added: number[]; removed: number[]; republish: boolean; newDeviceId: number | null }
/** A bundle to fetch, then hand to `receiveBundle`. */
export interface BundleRequest { jid: string; deviceId: number; version: OmemoVersion; node: string; itemId: string }
/** An `<encrypted>` element to send to `to`. */
export interface EncryptedStanza { version: OmemoVersion; to: string; payload: string }
/** What an encryption produced, and the devices left out. */
export interface EncryptOutcome {
  stanzas: EncryptedStanza[];
  skipped: { jid: string; deviceId: number; version: OmemoVersion; reason: "noSession" | "undecided" | "distrusted" }[];
}
/** What a decryption produced. */
export interface DecryptOutcome {
  message: { version: OmemoVersion; senderDevice: number; body: string | null; time: string | null; fingerprint: string; trust: OmemoTrust } | null;
  replies: EncryptedStanza[];
  republish: boolean;
}
"#;

fn stanzas_js(stanzas: &[EncryptedStanza]) -> JsValue {
    array(stanzas.iter().map(|stanza| {
        object(&[
            ("version", version_name(stanza.version).into()),
            ("to", stanza.to.as_str().into()),
            ("payload", stanza.payload.as_str().into()),
        ])
    }))
}

/// One OMEMO account: the device, its sessions, the contacts' device lists and the trust
/// decisions.
#[wasm_bindgen]
pub struct XmppMachine {
    inner: Rc<Machine<AnyStore>>,
}

#[wasm_bindgen]
impl XmppMachine {
    /// Opens the account of `jid` (bare) in `store` under a 32-byte storage key, creating it
    /// on first use with a random device id, at `now` (milliseconds; `Date.now()` if omitted).
    #[wasm_bindgen(unchecked_return_type = "Promise<XmppMachine>")]
    pub fn open(
        store: &Store,
        #[wasm_bindgen(js_name = storageKey)] storage_key: &[u8],
        jid: String,
        now: Option<f64>,
    ) -> Promise {
        let backend = store.inner.clone();
        let key = crate::convert::storage_key(storage_key);
        let now = timestamp(now);
        promise(async move {
            let key = key?;
            let machine = Machine::open(backend, &key, &jid, now, &mut rng())
                .await
                .map_err(|e| xmpp(&e))?;
            Ok(XmppMachine {
                inner: Rc::new(machine),
            }
            .into())
        })
    }

    /// Our bare JID.
    #[wasm_bindgen(getter)]
    pub fn jid(&self) -> String {
        self.inner.jid().to_owned()
    }

    /// Our device id.
    #[wasm_bindgen(js_name = deviceId, unchecked_return_type = "Promise<number>")]
    pub fn device_id(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let id = inner.device_id().await.map_err(|e| xmpp(&e))?;
            Ok(id.into())
        })
    }

    /// Our identity's fingerprint (lowercase hex).
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn fingerprint(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let fingerprint = inner.fingerprint().await.map_err(|e| xmpp(&e))?;
            Ok(fingerprint.into())
        })
    }

    /// Everything to publish (both device lists and both bundles), pre-keys refilled first.
    #[wasm_bindgen(unchecked_return_type = "Promise<PepItem[]>")]
    pub fn publish(&self, now: Option<f64>) -> Promise {
        let inner = self.inner.clone();
        let now = timestamp(now);
        promise(async move {
            let items = inner.publish(now, &mut rng()).await.map_err(|e| xmpp(&e))?;
            Ok(array(items.iter().map(|i| {
                object(&[
                    ("version", version_name(i.version).into()),
                    ("node", i.node.as_str().into()),
                    ("itemId", i.item_id.as_str().into()),
                    ("payload", i.payload.as_str().into()),
                ])
            })))
        })
    }

    /// A device list received from `fromJid` (a PEP notification or an items result).
    #[wasm_bindgen(js_name = receiveDeviceList, unchecked_return_type = "Promise<DeviceListUpdate>")]
    pub fn receive_device_list(
        &self,
        #[wasm_bindgen(js_name = fromJid)] from_jid: String,
        xml: String,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let update = inner
                .receive_device_list(&from_jid, &xml, &mut rng())
                .await
                .map_err(|e| xmpp(&e))?;
            let ids = |ids: &[u32]| array(ids.iter().map(|&id| JsValue::from(id)));
            Ok(object(&[
                ("added", ids(&update.added)),
                ("removed", ids(&update.removed)),
                ("republish", update.republish.into()),
                ("newDeviceId", optional_u32(update.new_device_id)),
            ]))
        })
    }

    /// The bundles to fetch before a message can reach every active device of `jids`.
    #[wasm_bindgen(js_name = bundleRequests, unchecked_return_type = "Promise<BundleRequest[]>")]
    pub fn bundle_requests(&self, jids: Vec<String>) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let jids: Vec<&str> = jids.iter().map(String::as_str).collect();
            let requests = inner.bundle_requests(&jids).await.map_err(|e| xmpp(&e))?;
            Ok(array(requests.iter().map(|r| {
                object(&[
                    ("jid", r.jid.as_str().into()),
                    ("deviceId", r.device_id.into()),
                    ("version", version_name(r.version).into()),
                    ("node", r.node.as_str().into()),
                    ("itemId", r.item_id.as_str().into()),
                ])
            })))
        })
    }

    /// A bundle (the item's payload XML) fetched for `jid`'s `deviceId`.
    #[wasm_bindgen(js_name = receiveBundle, unchecked_return_type = "Promise<void>")]
    pub fn receive_bundle(
        &self,
        jid: String,
        #[wasm_bindgen(js_name = deviceId)] device_id: u32,
        xml: String,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner
                .receive_bundle(&jid, device_id, &xml, &mut rng())
                .await
                .map_err(|e| xmpp(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Encrypts `body` to every device of `recipients` (bare JIDs) and our other devices, for
    /// a stanza to `stanzaTo`.
    #[wasm_bindgen(unchecked_return_type = "Promise<EncryptOutcome>")]
    pub fn encrypt(
        &self,
        recipients: Vec<String>,
        #[wasm_bindgen(js_name = stanzaTo)] stanza_to: String,
        body: String,
        now: Option<f64>,
    ) -> Promise {
        let inner = self.inner.clone();
        let now = timestamp(now);
        promise(async move {
            let recipients: Vec<&str> = recipients.iter().map(String::as_str).collect();
            let outcome = inner
                .encrypt(&recipients, &stanza_to, &body, now, &mut rng())
                .await
                .map_err(|e| xmpp(&e))?;
            let skipped = outcome.skipped.iter().map(|s| {
                let reason = match s.reason {
                    SkipReason::NoSession => "noSession",
                    SkipReason::Undecided => "undecided",
                    SkipReason::Distrusted => "distrusted",
                    _ => "other",
                };
                object(&[
                    ("jid", s.jid.as_str().into()),
                    ("deviceId", s.device_id.into()),
                    ("version", version_name(s.version).into()),
                    ("reason", reason.into()),
                ])
            });
            Ok(object(&[
                ("stanzas", stanzas_js(&outcome.stanzas)),
                ("skipped", array(skipped)),
            ]))
        })
    }

    /// Decrypts an `<encrypted>` element from `from` in a stanza to `stanzaTo`; with a
    /// `stanzaId` the same id again returns the stored outcome without decrypting.
    #[wasm_bindgen(unchecked_return_type = "Promise<DecryptOutcome>")]
    pub fn decrypt(
        &self,
        from: String,
        #[wasm_bindgen(js_name = stanzaTo)] stanza_to: String,
        xml: String,
        #[wasm_bindgen(js_name = stanzaId)] stanza_id: Option<String>,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let outcome = inner
                .decrypt(&from, &stanza_to, &xml, stanza_id.as_deref(), &mut rng())
                .await
                .map_err(|e| xmpp(&e))?;
            let message = outcome.message.as_ref().map_or(JsValue::NULL, |m| {
                object(&[
                    ("version", version_name(m.version).into()),
                    ("senderDevice", m.sender_device.into()),
                    ("body", optional_str(m.body.as_deref())),
                    ("time", optional_str(m.time.as_deref())),
                    ("fingerprint", m.fingerprint.as_str().into()),
                    ("trust", xmpp_trust_name(m.trust).into()),
                ])
            });
            Ok(object(&[
                ("message", message),
                ("replies", stanzas_js(&outcome.replies)),
                ("republish", outcome.republish.into()),
            ]))
        })
    }

    /// Records the user's decision about `jid`'s key `fingerprint`.
    #[wasm_bindgen(js_name = setTrust, unchecked_return_type = "Promise<void>")]
    pub fn set_trust(
        &self,
        jid: String,
        fingerprint: String,
        #[wasm_bindgen(unchecked_param_type = "OmemoTrust")] trust: String,
    ) -> Promise {
        let inner = self.inner.clone();
        let trust = xmpp_trust_of(&trust);
        promise(async move {
            inner
                .set_trust(&jid, &fingerprint, trust?, &mut rng())
                .await
                .map_err(|e| xmpp(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Every decision recorded for `jid`: `{ fingerprint, trust }`.
    #[wasm_bindgen(
        js_name = trustDecisions,
        unchecked_return_type = "Promise<{ fingerprint: string; trust: OmemoTrust }[]>"
    )]
    pub fn trust_decisions(&self, jid: String) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            let decisions = inner.trust_decisions(&jid).await.map_err(|e| xmpp(&e))?;
            Ok(array(decisions.iter().map(|(f, t)| {
                object(&[
                    ("fingerprint", f.as_str().into()),
                    ("trust", xmpp_trust_name(*t).into()),
                ])
            })))
        })
    }

    /// Accepts `fingerprint` as the new identity of `jid`'s device after an
    /// `identityChanged` error.
    #[wasm_bindgen(js_name = acceptIdentity, unchecked_return_type = "Promise<void>")]
    pub fn accept_identity(
        &self,
        #[wasm_bindgen(unchecked_param_type = "OmemoVersion")] version: String,
        jid: String,
        #[wasm_bindgen(js_name = deviceId)] device_id: u32,
        fingerprint: String,
    ) -> Promise {
        let inner = self.inner.clone();
        let version = version_of(&version);
        promise(async move {
            inner
                .accept_identity(version?, &jid, device_id, &fingerprint, &mut rng())
                .await
                .map_err(|e| xmpp(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// How undecided identity keys are treated: `"blindTrustBeforeVerification"` (the
    /// default) or `"trustOnFirstUse"`.
    #[wasm_bindgen(js_name = setTrustPolicy, unchecked_return_type = "Promise<void>")]
    pub fn set_trust_policy(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "\"blindTrustBeforeVerification\" | \"trustOnFirstUse\""
        )]
        policy: String,
    ) -> Promise {
        let inner = self.inner.clone();
        let policy = match policy.as_str() {
            "blindTrustBeforeVerification" => Ok(TrustPolicy::BlindTrustBeforeVerification),
            "trustOnFirstUse" => Ok(TrustPolicy::TrustOnFirstUse),
            _ => Err(argument_error("unknown trust policy")),
        };
        promise(async move {
            inner
                .set_trust_policy(policy?, &mut rng())
                .await
                .map_err(|e| xmpp(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }
}
