//! Fuzz target: the property `l2xdp_wire::selfcheck::radius_packet` (see there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| l2xdp_wire::selfcheck::radius_packet(data));
