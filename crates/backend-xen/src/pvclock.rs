//! pvclock: Xen's time, read by the guest without a hypercall.
//!
//! Xen publishes per vCPU a snapshot: its system time (ns since Xen
//! booted) at a TSC value, and the TSC's rate as a 32.32 fixed-point
//! multiplier with a binary shift. The guest reads the TSC and
//! extrapolates:
//!
//! ```text
//! ns = system_time + ((rdtsc - tsc_timestamp) << tsc_shift) * tsc_to_system_mul >> 32
//! ```
//!
//! Xen rewrites the snapshot (recalibration, the vCPU moving to another
//! CPU): `version` is odd while it writes, so the reader retries until it
//! saw one even version before and after.
//!
//! ```text
//!  0 version   8 tsc_timestamp   16 system_time   24 tsc_to_system_mul
//! 28 tsc_shift (signed)   29 flags (bit 0: TSC_STABLE)
//! ```

use core::sync::atomic::{fence, Ordering};

/// Xen guarantees that time from different snapshots never goes
/// backwards (Linux's `PVCLOCK_TSC_STABLE_BIT`); without it the guest
/// must keep the clock monotonic itself.
pub const TSC_STABLE: u8 = 1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuTime {
    pub tsc_timestamp: u64,
    pub system_time: u64,
    pub mul: u32,
    pub shift: i8,
    pub flags: u8,
}

impl VcpuTime {
    /// Reads the snapshot at `p` under its version protocol.
    ///
    /// # Safety
    /// `p` must point at a `vcpu_time_info` Xen maintains.
    pub unsafe fn read(p: *const u8) -> VcpuTime {
        // SAFETY: (all loads) the caller's contract; volatile because Xen
        // writes concurrently, the version read ordered around the rest.
        unsafe {
            let version = p as *const u32;
            loop {
                let v = version.read_volatile();
                fence(Ordering::Acquire);
                let t = VcpuTime {
                    tsc_timestamp: (p.add(8) as *const u64).read_volatile(),
                    system_time: (p.add(16) as *const u64).read_volatile(),
                    mul: (p.add(24) as *const u32).read_volatile(),
                    shift: (p.add(28) as *const i8).read_volatile(),
                    flags: p.add(29).read_volatile(),
                };
                fence(Ordering::Acquire);
                if v & 1 == 0 && version.read_volatile() == v {
                    return t;
                }
            }
        }
    }

    /// System time (ns) at TSC value `tsc`.
    pub fn ns_at(&self, tsc: u64) -> u64 {
        let mut delta = tsc.wrapping_sub(self.tsc_timestamp);
        if self.shift >= 0 {
            delta <<= self.shift;
        } else {
            delta >>= -self.shift;
        }
        self.system_time.wrapping_add(((delta as u128 * self.mul as u128) >> 32) as u64)
    }

    /// The TSC rate the snapshot implies, kHz.
    pub fn tsc_khz(&self) -> u64 {
        if self.mul == 0 {
            return 0;
        }
        let mut khz = (1_000_000u64 << 32) / self.mul as u64;
        if self.shift >= 0 {
            khz >>= self.shift;
        } else {
            khz <<= -self.shift;
        }
        khz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_like_xen() {
        // A 2 GHz TSC: 0.5 ns per tick = mul 2^31, shift 0.
        let t = VcpuTime { tsc_timestamp: 1000, system_time: 5_000, mul: 1 << 31, shift: 0, flags: 0 };
        assert_eq!(t.ns_at(3000), 5_000 + 1000);
        assert_eq!(t.tsc_khz(), 2_000_000);
        // The same rate as mul 2^30 with shift 1, and a 500 MHz TSC as
        // mul 2^31 with shift 2.
        let t2 = VcpuTime { mul: 1 << 30, shift: 1, ..t };
        assert_eq!(t2.ns_at(3000), 6_000);
        let slow = VcpuTime { mul: 1 << 31, shift: 2, ..t };
        assert_eq!(slow.ns_at(3000), 5_000 + 4000);
        assert_eq!(slow.tsc_khz(), 500_000);
        // A negative shift divides.
        let fast = VcpuTime { mul: 1 << 31, shift: -1, ..t };
        assert_eq!(fast.ns_at(3000), 5_000 + 500);
        assert_eq!(fast.tsc_khz(), 4_000_000);
    }
}
