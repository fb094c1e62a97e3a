//! Trust in contacts' identity keys: a decision per (bare JID, identity fingerprint), made by the
//! user or, until then, by the account's [`TrustPolicy`].

use rand_core::CryptoRng;
#[cfg(any(test, feature = "serde"))]
use serde::{Deserialize, Serialize};

use super::error::XmppError;
use super::machine::{AccountMeta, TrustPolicy, XmppMachine};
use super::memo::Name;
use super::tables::{self, TRUST};
use crate::store::{Backend, KeyRange, Txn, transact_known};

/// What is decided about one identity key of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(any(test, feature = "serde"), derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum Trust {
    /// The user verified the key.
    Trusted,
    /// The user refuses the key: nothing is encrypted to it.
    Distrusted,
    /// Nobody decided, and the policy does not trust it: nothing is encrypted to it until the
    /// user decides.
    Undecided,
    /// Used under blind trust before verification (or trusted on first use) until the user
    /// decides.
    Blind,
}

impl Trust {
    /// Whether messages are encrypted to a key so decided.
    pub fn encrypts(self) -> bool {
        matches!(self, Trust::Trusted | Trust::Blind)
    }
}

/// The decision about one identity key of a contact.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(Serialize, Deserialize))]
pub(super) struct TrustRecord {
    pub(super) jid: String,
    pub(super) fingerprint: String,
    pub(super) trust: Trust,
}

impl<B: Backend> XmppMachine<B> {
    pub(crate) fn trust_name(&self, jid: &str, fingerprint: &str) -> Name {
        self.name(TRUST, &[jid.as_bytes(), fingerprint.as_bytes()])
    }

    /// The decision about `jid`'s key `fingerprint`, if any was recorded.
    pub(crate) async fn trust_of(
        &self,
        txn: &mut Txn<'_, B>,
        jid: &str,
        fingerprint: &str,
    ) -> Result<Option<Trust>, XmppError> {
        let name = self.trust_name(jid, fingerprint);
        self.trust_named(txn, &name).await
    }

    /// As [`Self::trust_of`], for the record named `name` ([`Self::trust_name`]).
    pub(crate) async fn trust_named(
        &self,
        txn: &mut Txn<'_, B>,
        name: &[u8],
    ) -> Result<Option<Trust>, XmppError> {
        let trust = |(_, record, _): &tables::Record<TrustRecord>| record.trust;
        Ok(tables::load_memo_with(txn, &self.memo, TRUST, name, trust).await?)
    }

    /// Every decision recorded for `jid` (fingerprint, trust).
    pub async fn trust_decisions(&self, jid: &str) -> Result<Vec<(String, Trust)>, XmppError> {
        let mut txn = Txn::new(&self.backend, &self.sealer);
        self.decisions(&mut txn, jid).await
    }

    async fn decisions(
        &self,
        txn: &mut Txn<'_, B>,
        jid: &str,
    ) -> Result<Vec<(String, Trust)>, XmppError> {
        // Names are keyed hashes, so a contact's decisions are found by scanning: few per
        // account, and only when a new key appears or the user asks.
        let mut found = Vec::new();
        let mut range = KeyRange::all();
        loop {
            let page = self.backend.scan(TRUST, &range, 1_000).await?;
            let Some((last, _)) = page.last() else { break };
            range = range.after(last);
            for (name, _) in page {
                if let Some((record, _)) = tables::load::<B, TrustRecord>(txn, TRUST, &name).await?
                    && record.jid == jid
                {
                    found.push((record.fingerprint, record.trust));
                }
            }
        }
        Ok(found)
    }

    /// Records the policy's decision for a key seen for the first time (a session built with
    /// it); a key already decided about keeps its decision.
    pub(crate) async fn note_identity(
        &self,
        txn: &mut Txn<'_, B>,
        meta: &AccountMeta,
        jid: &str,
        fingerprint: &str,
    ) -> Result<Trust, XmppError> {
        if let Some(trust) = self.trust_of(txn, jid, fingerprint).await? {
            return Ok(trust);
        }
        let others = self.decisions(txn, jid).await?;
        let trust = match meta.policy {
            TrustPolicy::BlindTrustBeforeVerification
                if others.iter().any(|(_, t)| *t == Trust::Trusted) =>
            {
                Trust::Undecided
            }
            TrustPolicy::BlindTrustBeforeVerification => Trust::Blind,
            TrustPolicy::TrustOnFirstUse if others.is_empty() => Trust::Blind,
            TrustPolicy::TrustOnFirstUse => Trust::Undecided,
        };
        self.write_trust(txn, jid, fingerprint, trust).await?;
        Ok(trust)
    }

    async fn write_trust(
        &self,
        txn: &mut Txn<'_, B>,
        jid: &str,
        fingerprint: &str,
        trust: Trust,
    ) -> Result<(), XmppError> {
        let record = TrustRecord {
            jid: jid.to_owned(),
            fingerprint: fingerprint.to_owned(),
            trust,
        };
        let name = self.trust_name(jid, fingerprint);
        Ok(tables::store(txn, TRUST, &name, &record, &[]).await?)
    }

    /// The user's decision about `jid`'s key `fingerprint` (lowercase hex, as
    /// [`IdentityKey::fingerprint`](crate::omemo::IdentityKey::fingerprint) gives it). Under
    /// blind trust before verification, once one key of a contact is trusted, the contact's
    /// new keys wait for a decision (keys already in use keep theirs, as Conversations does).
    /// One commit.
    pub async fn set_trust(
        &self,
        jid: &str,
        fingerprint: &str,
        trust: Trust,
        rng: &mut impl CryptoRng,
    ) -> Result<(), XmppError> {
        transact_known!(self, rng, |txn| {
            self.write_trust(&mut txn, jid, fingerprint, trust).await
        })
    }
}
