//! The names enumerations have in JavaScript (camelCase strings).

use olmo::omemo::{FailureReason, Version};
use wasm_bindgen::JsValue;

use crate::errors::argument_error;

/// `"omemo2"` or `"omemo03"`.
pub(crate) fn version_name(version: Version) -> &'static str {
    match version {
        Version::Omemo2 => "omemo2",
        Version::Omemo03 => "omemo03",
    }
}

/// The version a name gives.
pub(crate) fn version_of(name: &str) -> Result<Version, JsValue> {
    match name {
        "omemo2" => Ok(Version::Omemo2),
        "omemo03" => Ok(Version::Omemo03),
        _ => Err(argument_error("a version is \"omemo2\" or \"omemo03\"")),
    }
}

/// An OMEMO failure's cause.
pub(crate) fn failure_name(reason: FailureReason) -> &'static str {
    match reason {
        FailureReason::NotForUs => "notForUs",
        FailureReason::NoSession => "noSession",
        FailureReason::BadMac => "badMac",
        FailureReason::Duplicate => "duplicate",
        FailureReason::IdentityChanged => "identityChanged",
        FailureReason::Expired => "expired",
        FailureReason::TooFarAhead => "tooFarAhead",
        FailureReason::UnknownPreKey => "unknownPreKey",
        FailureReason::InvalidBundle => "invalidBundle",
        FailureReason::CannotEncrypt => "cannotEncrypt",
        FailureReason::Malformed => "malformed",
        _ => "other",
    }
}

/// A Matrix device trust decision.
pub(crate) fn matrix_trust_name(trust: olmo::matrix::Trust) -> &'static str {
    match trust {
        olmo::matrix::Trust::Verified => "verified",
        olmo::matrix::Trust::Blocked => "blocked",
        _ => "unverified",
    }
}

/// The Matrix trust decision a name gives.
pub(crate) fn matrix_trust_of(name: &str) -> Result<olmo::matrix::Trust, JsValue> {
    match name {
        "unverified" => Ok(olmo::matrix::Trust::Unverified),
        "verified" => Ok(olmo::matrix::Trust::Verified),
        "blocked" => Ok(olmo::matrix::Trust::Blocked),
        _ => Err(argument_error(
            "a trust is \"unverified\", \"verified\" or \"blocked\"",
        )),
    }
}

/// An XMPP identity trust decision.
pub(crate) fn xmpp_trust_name(trust: olmo::xmpp::Trust) -> &'static str {
    match trust {
        olmo::xmpp::Trust::Trusted => "trusted",
        olmo::xmpp::Trust::Distrusted => "distrusted",
        olmo::xmpp::Trust::Blind => "blind",
        _ => "undecided",
    }
}

/// The XMPP trust decision a name gives.
pub(crate) fn xmpp_trust_of(name: &str) -> Result<olmo::xmpp::Trust, JsValue> {
    match name {
        "trusted" => Ok(olmo::xmpp::Trust::Trusted),
        "distrusted" => Ok(olmo::xmpp::Trust::Distrusted),
        "undecided" => Ok(olmo::xmpp::Trust::Undecided),
        "blind" => Ok(olmo::xmpp::Trust::Blind),
        _ => Err(argument_error(
            "a trust is \"trusted\", \"distrusted\", \"undecided\" or \"blind\"",
        )),
    }
}
