//! Reads kernel memory (0xC0000000, PAGE_OFFSET: the start of the direct
//! map). The kernel's pages are not user pages, so the read faults (#PF,
//! vector 14) and the kernel must end this process: init expects
//! `status::faulted(14)`. Getting past the read is a failure it reports.
#![no_std]
#![no_main]

use user_lib::abi::USER_TOP;

user_lib::entry!(main);

fn main(_arg: u32) -> u32 {
    user_lib::println!("pid {}: reading kernel memory at {USER_TOP:#x}: expect a fault", user_lib::getpid());
    let value: u32;
    // SAFETY: the load touches no memory Rust knows of (the kernel's,
    // above USER_TOP) and writes only `value`; it is meant to fault, and
    // should it not, nothing of this program has changed.
    unsafe {
        core::arch::asm!(
            "mov {value}, dword ptr [{addr}]",
            addr = in(reg) USER_TOP,
            value = out(reg) value,
            options(nostack, readonly, preserves_flags),
        )
    };
    user_lib::println!("bad-kernel-read: read {value:#x} at {USER_TOP:#x} and was not stopped");
    1
}
