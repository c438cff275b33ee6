//! Fuzz target: the property `l2xdp_wire::selfcheck::control_message` (see there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| l2xdp_wire::selfcheck::control_message(data));
