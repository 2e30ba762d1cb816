//! Spins forever and makes no system call: nothing but the timer can take
//! the CPU from it. init runs it beside the workload, which must still
//! finish (preemption), and ends it with kill.
#![no_std]
#![no_main]

user_lib::entry!(main);

fn main(_arg: u32) -> u32 {
    loop {
        core::hint::spin_loop();
    }
}
