//! The PC's battery-backed clock (MC146818 in the CMOS): wall-clock time
//! to the second.
//!
//! Registers are read through an index port (0x70) and a data port
//! (0x71). The chip updates its registers once a second; a read during the
//! update can mix two seconds, so the reading is taken twice, after the
//! update-in-progress flag has cleared, until two agree. Values are BCD
//! unless status register B says binary, and hours may be 12-hour with the
//! top bit meaning PM.

use crate::io::Port;

const INDEX: u16 = 0x70;
const DATA: u16 = 0x71;

const SECONDS: u8 = 0x00;
const MINUTES: u8 = 0x02;
const HOURS: u8 = 0x04;
const DAY: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const STATUS_A: u8 = 0x0A;
const STATUS_B: u8 = 0x0B;
/// The century, where the ACPI tables say (0x32 on the PC and in QEMU).
const CENTURY: u8 = 0x32;

const UPDATE_IN_PROGRESS: u8 = 0x80;
const BINARY: u8 = 0x04;
const HOURS_24: u8 = 0x02;

/// Bit 7 of the index port disables NMIs; keep it clear.
fn read(reg: u8) -> u8 {
    // SAFETY: selecting a CMOS register and reading it changes no memory
    // and no clock state.
    unsafe {
        Port::<u8>::new(INDEX).write(reg);
        Port::<u8>::new(DATA).read()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

fn raw() -> [u8; 7] {
    while read(STATUS_A) & UPDATE_IN_PROGRESS != 0 {}
    [read(SECONDS), read(MINUTES), read(HOURS), read(DAY), read(MONTH), read(YEAR), read(CENTURY)]
}

/// The time the RTC shows (UTC on PCs that run this kernel, and QEMU's
/// default).
pub fn now() -> DateTime {
    let mut r = raw();
    loop {
        let again = raw();
        if again == r {
            break;
        }
        r = again;
    }
    decode(r, read(STATUS_B))
}

fn decode(r: [u8; 7], status_b: u8) -> DateTime {
    let bcd = |v: u8| if status_b & BINARY != 0 { v as u32 } else { (v >> 4) as u32 * 10 + (v & 0xF) as u32 };
    let pm = status_b & HOURS_24 == 0 && r[2] & 0x80 != 0;
    let mut hour = bcd(r[2] & 0x7F);
    if status_b & HOURS_24 == 0 {
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let century = match bcd(r[6]) {
        19..=21 => bcd(r[6]),
        _ => 20, // no century register
    };
    DateTime {
        year: century * 100 + bcd(r[5]),
        month: bcd(r[4]),
        day: bcd(r[3]),
        hour,
        minute: bcd(r[1]),
        second: bcd(r[0]),
    }
}

impl DateTime {
    /// Seconds since 1970-01-01 00:00:00 UTC.
    pub fn unix_seconds(&self) -> u64 {
        // Days since the epoch, counting March as the first month so the
        // leap day is the year's last (the usual civil-calendar formula).
        let (y, m) = if self.month <= 2 {
            (self.year as i64 - 1, self.month + 9)
        } else {
            (self.year as i64, self.month - 3)
        };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * m as i64 + 2) / 5 + self.day as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        (days * 86_400 + (self.hour * 3600 + self.minute * 60 + self.second) as i64) as u64
    }

    /// The inverse of `unix_seconds`.
    pub fn from_unix(secs: u64) -> DateTime {
        let days = (secs / 86_400) as i64 + 719_468;
        let rem = (secs % 86_400) as u32;
        let era = days.div_euclid(146_097);
        let doe = days - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + (month <= 2) as i64) as u32;
        DateTime { year, month, day, hour: rem / 3600, minute: rem / 60 % 60, second: rem % 60 }
    }
}

impl core::fmt::Display for DateTime {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_bcd_and_12_hour() {
        // 2026-12-02 14:05:09 as BCD, 24-hour.
        let t = decode([0x09, 0x05, 0x14, 0x02, 0x12, 0x26, 0x20], HOURS_24);
        assert_eq!(t, DateTime { year: 2026, month: 12, day: 2, hour: 14, minute: 5, second: 9 });
        // 2 PM, 12-hour BCD; 12 AM is hour 0.
        assert_eq!(decode([0, 0, 0x82, 1, 1, 0, 0x20], 0).hour, 14);
        assert_eq!(decode([0, 0, 0x12, 1, 1, 0, 0x20], 0).hour, 0);
        // Binary.
        assert_eq!(decode([9, 5, 14, 2, 12, 26, 20], BINARY | HOURS_24).minute, 5);
    }

    #[test]
    fn unix_seconds_round_trip() {
        let t = DateTime { year: 2026, month: 12, day: 2, hour: 14, minute: 5, second: 9 };
        assert_eq!(t.unix_seconds(), 1_796_220_309);
        assert_eq!(DateTime::from_unix(t.unix_seconds()), t);
        assert_eq!(
            DateTime::from_unix(0),
            DateTime { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0 }
        );
        let leap = DateTime { year: 2024, month: 2, day: 29, hour: 0, minute: 0, second: 0 };
        assert_eq!(DateTime::from_unix(leap.unix_seconds()), leap);
    }
}
