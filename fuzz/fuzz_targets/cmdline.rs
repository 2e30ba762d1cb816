#![no_main]
// The body and its contract: tests/fuzz-targets/src/cmdline.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::cmdline::run(data));
