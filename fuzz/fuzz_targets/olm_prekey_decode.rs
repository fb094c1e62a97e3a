//! Fuzz target `olm_prekey_decode`: see [`olmo_fuzz::check_prekey_decode`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| olmo_fuzz::check_prekey_decode(data));
