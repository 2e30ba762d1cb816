//! Valid inputs for each target, the corpus's starting points: libFuzzer
//! mutates from a well-formed multiboot info far sooner into the deep
//! branches (a map that validates, a switch with a value) than from
//! nothing. `tests/replay.rs` writes them to `fuzz/corpus/NAME/seed-*`
//! with `FUZZ_WRITE_SEEDS=1` and otherwise checks the files match.

use std::vec::Vec;

/// QEMU's map for 128 MiB: low RAM, the EBDA, the BIOS, RAM from 1 MiB.
const QEMU_MAP: &[(u64, u64, u32)] =
    &[(0, 0x9fc00, 1), (0x9fc00, 0x400, 2), (0xf0000, 0x10000, 2), (0x100000, 0x7ee0000, 1)];
const CMDLINE: &[u8] = b"hypervisor=native paging=pae xen_fail_hypercall=3 perf";

fn put(m: &mut [u8], at: usize, b: &[u8]) {
    m[at..at + b.len()].copy_from_slice(b);
}

fn e820(entries: &[(u64, u64, u32)], stride: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for &(start, len, ty) in entries {
        let mut e = std::vec![0u8; stride];
        put(&mut e, 0, &start.to_le_bytes());
        put(&mut e, 8, &len.to_le_bytes());
        put(&mut e, 16, &ty.to_le_bytes());
        v.extend(e);
    }
    v
}

fn multiboot() -> Vec<u8> {
    let mut m = std::vec![0u8; 0x200];
    put(&mut m, 0, &(1u32 | 1 << 2 | 1 << 6).to_le_bytes());
    put(&mut m, 16, &0x100u32.to_le_bytes());
    let mut map = Vec::new();
    for e in e820(QEMU_MAP, 20).chunks(20) {
        map.extend(20u32.to_le_bytes());
        map.extend(e);
    }
    put(&mut m, 44, &(map.len() as u32).to_le_bytes());
    put(&mut m, 48, &0x80u32.to_le_bytes());
    put(&mut m, 0x80, &map);
    put(&mut m, 0x100, CMDLINE);
    m
}

fn pvh() -> Vec<u8> {
    let mut m = std::vec![0u8; 0x200];
    put(&mut m, 0, &paravirt::pvh::MAGIC.to_le_bytes());
    put(&mut m, 4, &1u32.to_le_bytes());
    put(&mut m, 24, &0x100u64.to_le_bytes());
    put(&mut m, 40, &0x40u64.to_le_bytes());
    put(&mut m, 48, &(QEMU_MAP.len() as u32).to_le_bytes());
    put(&mut m, 0x40, &e820(QEMU_MAP, 24));
    put(&mut m, 0x100, CMDLINE);
    m
}

fn bootparams() -> Vec<u8> {
    use paravirt::bootparams::*;
    let mut m = std::vec![0u8; 0x1000];
    m[OFF_E820_ENTRIES as usize] = QEMU_MAP.len() as u8;
    put(&mut m, OFF_HEADER as usize, &HEADER_MAGIC.to_le_bytes());
    put(&mut m, OFF_VERSION as usize, &0x20fu16.to_le_bytes());
    put(&mut m, OFF_CMD_LINE_PTR as usize, &0xf00u32.to_le_bytes());
    put(&mut m, OFF_E820_TABLE as usize, &e820(QEMU_MAP, 20));
    put(&mut m, 0xf00, CMDLINE);
    m
}

fn xen_start_info() -> Vec<u8> {
    use paravirt::xen_start_info::*;
    let mut m = std::vec![0u8; SIZE];
    put(&mut m, 0, MAGIC);
    put(&mut m, 8 + MAGIC_LEN, &0x8000u32.to_le_bytes());
    put(&mut m, SIZE - CMD_LINE_SIZE, CMDLINE);
    m
}

fn bootmem() -> Vec<u8> {
    // floor 0x10, limit 0x100, two reservations, then a map of 1 MiB of
    // low RAM with a hole, as memmap's entries.
    let mut v = std::vec![0x10u8, 0xff, 0x20, 4, 0x80, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    v.extend(e820(&[(0, 0x9f000, 1), (0x9f000, 0x1000, 2), (0xa0000, 0x60000, 1)], 20));
    v
}

/// A guest that calls LGUEST_INIT with lguest_data at 0x1000 (its
/// syscall_vec the one the host takes), whose ring
/// holds one pending FLUSH_TLB, then FLUSH_ASYNC (which drains it) and
/// HALT.
fn lguest_host() -> Vec<u8> {
    use backend_lguest::abi::{nr, off};
    let mut v = std::vec![3u8];
    for (call, a1) in [(nr::LGUEST_INIT, 0x1000u32), (nr::FLUSH_ASYNC, 0), (nr::HALT, 0)] {
        for w in [call, a1, 0, 0] {
            v.extend(w.to_le_bytes());
        }
    }
    let mut mem = std::vec![0u8; 0x1000 + off::SIZE as usize];
    let ring = 0x1000 + off::HCALL_STATUS as usize;
    mem[ring..ring + backend_lguest::abi::RING_SIZE].fill(0xFF);
    mem[ring] = 0;
    put(&mut mem, 0x1000 + off::HCALLS as usize, &nr::FLUSH_TLB.to_le_bytes());
    // The host refuses any other system-call vector (2.6.24's did too).
    put(&mut mem, 0x1000 + off::SYSCALL_VEC as usize, &backend_lguest::abi::SYSCALL_VECTOR.to_le_bytes());
    v.extend(mem);
    v
}

/// Each target's seeds, by name.
pub fn seeds(target: &str) -> Vec<(&'static str, Vec<u8>)> {
    match target {
        "multiboot" => std::vec![("seed-qemu", multiboot())],
        "pvh" => std::vec![("seed-qemu", pvh())],
        "bootparams" => std::vec![("seed-qemu", bootparams())],
        "xen_start_info" => std::vec![("seed-domu", xen_start_info())],
        "cmdline" => std::vec![("seed-switches", CMDLINE.to_vec())],
        "memmap" => std::vec![("seed-qemu", e820(QEMU_MAP, 20))],
        "bootmem" => std::vec![("seed-hole", bootmem())],
        // PAE with every cap, 11 MiB; per pmd: a pte page half full, a
        // large page, nothing, repeated.
        "pagetable" => std::vec![(
            "seed-pae-mixed",
            [0x0f, 7].into_iter().chain([1, 128, 7, 9, 3, 0].repeat(3)).collect()
        )],
        "lguest_host" => std::vec![("seed-init-ring", lguest_host())],
        _ => Vec::new(),
    }
}
