//! How a program starts: the kernel enters its ELF entry, `_start`, with
//! eax = the argument its creator gave and esp at the top of its stack;
//! `_start` passes eax to `main` and `main`'s result to EXIT.

/// Makes `main` (`fn(u32) -> u32`) the program: `_start` calls it with
/// the process's argument and exits with what it returns.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        // In the program's own crate, so the linker always has it (ENTRY
        // names it), whatever it keeps of the library.
        ::core::arch::global_asm!(
            ".globl _start",
            "_start:",
            // The end of the frame-pointer chain, for debuggers.
            "    xor ebp, ebp",
            // The i386 System V ABI: esp 16-byte aligned at each call.
            "    and esp, -16",
            "    sub esp, 12",
            "    push eax",
            "    call {start}",
            "    ud2",
            start = sym __user_start,
        );

        extern "C" fn __user_start(arg: u32) -> ! {
            $crate::start(arg, $main)
        }
    };
}

/// Runs `main(arg)` and exits with its result.
pub fn start(arg: u32, main: fn(u32) -> u32) -> ! {
    crate::exit(main(arg))
}
