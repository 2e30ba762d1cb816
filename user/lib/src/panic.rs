//! A panic in a user program: a line on the console naming the process,
//! then exit with `PANIC_EXIT`.

/// The exit code of a program that panicked. No program of this project
/// exits with it otherwise (the workload's codes leave it free).
pub const PANIC_EXIT: u32 = 0xFF;

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::println!("pid {}: {}", crate::getpid(), info);
    crate::exit(PANIC_EXIT)
}
