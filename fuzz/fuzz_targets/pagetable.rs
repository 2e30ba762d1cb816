#![no_main]
// The body and its contract: tests/fuzz-targets/src/pagetable.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::pagetable::run(data));
