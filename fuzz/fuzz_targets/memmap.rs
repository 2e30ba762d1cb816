#![no_main]
// The body and its contract: tests/fuzz-targets/src/memmap.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::memmap::run(data));
