//! The smallest program: one line, exit 0. For a quick smoke test of
//! spawn, WRITE, GETPID and EXIT.
#![no_std]
#![no_main]

user_lib::entry!(main);

fn main(_arg: u32) -> u32 {
    user_lib::println!("hello from pid {}", user_lib::getpid());
    0
}
