//! Fuzz target `xmpp_machine`: see [`olmo_fuzz::check_xmpp_machine`].
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| olmo_fuzz::check_xmpp_machine(data));
