#![no_main]
// The body and its contract: tests/fuzz-targets/src/lguest_host.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::lguest_host::run(data));
