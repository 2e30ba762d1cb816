//! Executes `ud2`, the instruction defined to be invalid. The kernel must
//! end this process on the #UD (vector 6): init expects
//! `status::faulted(6)`. Getting past it is a failure init reports.
#![no_std]
#![no_main]

user_lib::entry!(main);

fn main(_arg: u32) -> u32 {
    user_lib::println!("pid {}: executing ud2: expect an invalid-opcode fault", user_lib::getpid());
    // SAFETY: `ud2` changes nothing but raises #UD; should execution go
    // on past it, no state of this program is different.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack, preserves_flags)) };
    user_lib::println!("bad-ud2: executed ud2 and was not stopped");
    1
}
