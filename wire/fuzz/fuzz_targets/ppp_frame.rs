//! Fuzz target: the property `l2xdp_wire::selfcheck::ppp_frame` (see there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| l2xdp_wire::selfcheck::ppp_frame(data));
