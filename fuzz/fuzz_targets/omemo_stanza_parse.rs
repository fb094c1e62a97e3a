//! Fuzz target `omemo_stanza_parse`: see [`olmo_fuzz::check_omemo_stanza_parse`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| olmo_fuzz::check_omemo_stanza_parse(data));
