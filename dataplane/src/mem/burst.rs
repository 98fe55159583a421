//! Moving a whole burst of packets between two bursts with one `memcpy`.

use arrayvec::ArrayVec;

/// Moves every item of `from` to the end of `to`, in order, with one bitwise
/// copy; `from` is left empty. Returns how many moved.
///
/// # Panics
/// When `to` has no room for all of them (callers make room first).
#[inline]
pub fn append_burst<T, const N: usize>(
    from: &mut ArrayVec<T, N>,
    to: &mut ArrayVec<T, N>,
) -> usize {
    let count = from.len();
    let length = to.len();
    assert!(count <= N - length, "append_burst: destination too full");
    // SAFETY: 1. `to` has `N - length >= count` spare slots after its
    // `length` items (checked above), so the destination range is in bounds
    // and uninitialised. 2. The two ArrayVecs are distinct (`&mut` to both),
    // so the ranges do not overlap. 3. The `count` items are moved bitwise:
    // `from.set_len(0)` forgets them there and `to.set_len` takes ownership,
    // so each is owned exactly once.
    unsafe {
        core::ptr::copy_nonoverlapping(from.as_ptr(), to.as_mut_ptr().add(length), count);
        from.set_len(0);
        to.set_len(length + count);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};

    #[test]
    fn moves_in_order_and_owns_once() {
        let mut from: ArrayVec<String, 4> = ["c", "d"].iter().map(|s| s.to_string()).collect();
        let mut to: ArrayVec<String, 4> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        assert_eq!(append_burst(&mut from, &mut to), 2);
        assert!(from.is_empty());
        assert_eq!(to.as_slice(), ["a", "b", "c", "d"]);
        assert_eq!(append_burst(&mut from, &mut to), 0);
    }

    #[test]
    #[should_panic(expected = "destination too full")]
    fn refuses_to_overflow() {
        let mut from: ArrayVec<u8, 2> = [1, 2].into_iter().collect();
        let mut to: ArrayVec<u8, 2> = [3].into_iter().collect();
        append_burst(&mut from, &mut to);
    }
}
