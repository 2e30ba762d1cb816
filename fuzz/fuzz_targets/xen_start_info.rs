#![no_main]
// The body and its contract: tests/fuzz-targets/src/xen_start_info.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::xen_start_info::run(data));
