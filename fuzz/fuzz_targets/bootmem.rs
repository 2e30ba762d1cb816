#![no_main]
// The body and its contract: tests/fuzz-targets/src/bootmem.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::bootmem::run(data));
