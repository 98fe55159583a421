//! Named counters of the service (`counter`, `counter_add`), shown in
//! `/metrics` as `warpcore_service_events_total{event=<name>}`.

/// A registered counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter(i32);

impl Counter {
    /// Registers `name` (`[a-z0-9-]`, at most 32 bytes, at most 32
    /// counters); during `init` only. `None` when the host refuses.
    pub fn register(name: &[u8]) -> Option<Self> {
        let id = crate::imports::counter(name);
        (id >= 0).then_some(Self(id))
    }

    /// Registers `<prefix><number>` (`rule-3`): numbered counters
    /// without formatting machinery.
    pub fn register_numbered(prefix: &[u8], number: u32) -> Option<Self> {
        let mut name = [0u8; 32];
        let digits = decimal(number);
        let digits = &digits.0[digits.1..];
        let length = prefix.len() + digits.len();
        name.get_mut(..prefix.len())?.copy_from_slice(prefix);
        name.get_mut(prefix.len()..length)?.copy_from_slice(digits);
        Self::register(&name[..length])
    }

    /// Adds `delta`.
    pub fn add(self, delta: i64) {
        crate::imports::counter_add(self.0, delta);
    }

    /// Adds one.
    pub fn increment(self) {
        self.add(1);
    }
}

/// `number`'s decimal digits: the last `10 - start` bytes of the array.
fn decimal(mut number: u32) -> ([u8; 10], usize) {
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            return (digits, start);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_digits() {
        for (number, text) in [(0, "0"), (7, "7"), (15, "15"), (u32::MAX, "4294967295")] {
            let (digits, start) = super::decimal(number);
            assert_eq!(&digits[start..], text.as_bytes());
        }
    }
}
