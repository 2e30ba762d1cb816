//! The early console: NOTIFY with the guest-physical address of a
//! NUL-terminated string. (NOTIFY normally kicks a virtqueue; an address
//! that is no queue is, to lguest's Launcher, text to print.)

use arch_i386::layout::PAGE_OFFSET;
use spin::Mutex;

use crate::abi::nr;
use crate::hypercall::Hypercalls;
use crate::transport::Host;

/// Bytes per NOTIFY, the NUL included.
const CHUNK: usize = 256;

static BUF: Mutex<[u8; CHUNK]> = Mutex::new([0; CHUNK]);

pub fn write<H: Host>(hc: &Hypercalls<H>, bytes: &[u8]) {
    // A fault while printing must not deadlock the report of that fault:
    // if the buffer is busy, the text is lost.
    let Some(mut buf) = BUF.try_lock() else { return };
    let mut n = 0;
    for &b in bytes.iter().filter(|&&b| b != 0) {
        buf[n] = b;
        n += 1;
        if n == CHUNK - 1 {
            send(hc, &mut buf, n);
            n = 0;
        }
    }
    if n > 0 {
        send(hc, &mut buf, n);
    }
}

fn send<H: Host>(hc: &Hypercalls<H>, buf: &mut [u8; CHUNK], n: usize) {
    buf[n] = 0;
    // The buffer is a static of the image: its guest-physical address is
    // its virtual one minus PAGE_OFFSET (the Launcher's linear map).
    let pa = (buf.as_ptr() as usize as u32).wrapping_sub(PAGE_OFFSET);
    hc.call_uncounted(nr::NOTIFY, pa, 0, 0);
}
