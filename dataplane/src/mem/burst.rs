//! Moving a whole burst of packets between two bursts with one `memcpy`,
//! and filling a burst by index with its length stored once.

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
    append_tail(from, to, count);
    count
}

/// Moves the last `count` items of `from` to the end of `to`, in order, with
/// one bitwise copy; the items before them stay in `from`.
///
/// # Panics
/// When `from` holds fewer than `count` items or `to` has no room for them.
#[inline]
pub fn append_tail<T, const N: usize>(
    from: &mut ArrayVec<T, N>,
    to: &mut ArrayVec<T, N>,
    count: usize,
) {
    let kept = from
        .len()
        .checked_sub(count)
        .expect("append_tail: source too short");
    let length = to.len();
    assert!(count <= N - length, "append_burst: destination too full");
    // SAFETY: 1. `from` holds `kept + count` initialised items, so the source
    // range `kept..kept + count` is in bounds. 2. `to` has `N - length >=
    // count` spare slots after its `length` items (checked above), so the
    // destination range is in bounds and uninitialised. 3. The two ArrayVecs
    // are distinct (`&mut` to both), so the ranges do not overlap. 4. The
    // `count` items are moved bitwise: `from.set_len(kept)` forgets them
    // there and `to.set_len` takes ownership, so each is owned exactly once.
    unsafe {
        core::ptr::copy_nonoverlapping(from.as_ptr().add(kept), to.as_mut_ptr().add(length), count);
        from.set_len(kept);
        to.set_len(length + count);
    }
}

/// Appends to `to`, in order, what `make` returns for each of
/// `0..count`, skipping the `None`s; returns how many it appended. Each
/// item is written by index into `to`'s spare room and the length is
/// stored once, after the last: a driver filling a batch from its receive
/// ring keeps the count in a register instead of loading, checking and
/// storing the length at every push. Should `make` panic, the items it
/// made before are leaked, not dropped.
///
/// # Panics
/// When `count` is more than `to` has room for (callers bound it first).
#[inline(always)]
pub fn append_from_fn<T, const N: usize>(
    to: &mut ArrayVec<T, N>,
    count: usize,
    mut make: impl FnMut(usize) -> Option<T>,
) -> usize {
    let length = to.len();
    assert!(count <= N - length, "append_from_fn: destination too full");
    let spare = to.as_mut_ptr().wrapping_add(length);
    // The next slot to write: one pointer bumped, rather than a count
    // scaled at every write.
    let mut next = spare;
    for index in 0..count {
        if let Some(item) = make(index) {
            // SAFETY: `next` is `spare` moved by the items written so far,
            // at most `index < count <= N - length` of them, so the slot
            // lies in `to`'s spare room, which is not initialised (each
            // slot is written once, `next` moving past it).
            unsafe {
                next.write(item);
                next = next.add(1);
            }
        }
    }
    // SAFETY: both pointers lie in `to`'s storage, `next` the items
    // written after `spare`.
    let appended = unsafe { next.offset_from(spare) } as usize;
    // SAFETY: the `length` items before `spare` and the `appended` after
    // it are initialised; `length + appended <= N`.
    unsafe { to.set_len(length + appended) };
    appended
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
    fn moves_a_tail_and_keeps_the_front() {
        let mut from: ArrayVec<String, 4> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut to: ArrayVec<String, 4> = ["x"].iter().map(|s| s.to_string()).collect();
        append_tail(&mut from, &mut to, 2);
        assert_eq!(from.as_slice(), ["a"]);
        assert_eq!(to.as_slice(), ["x", "b", "c"]);
        append_tail(&mut from, &mut to, 0);
        assert_eq!(from.as_slice(), ["a"]);
    }

    #[test]
    #[should_panic(expected = "source too short")]
    fn refuses_a_tail_longer_than_the_source() {
        let mut from: ArrayVec<u8, 2> = [1].into_iter().collect();
        let mut to: ArrayVec<u8, 2> = ArrayVec::new();
        append_tail(&mut from, &mut to, 2);
    }

    #[test]
    #[should_panic(expected = "destination too full")]
    fn refuses_to_overflow() {
        let mut from: ArrayVec<u8, 2> = [1, 2].into_iter().collect();
        let mut to: ArrayVec<u8, 2> = [3].into_iter().collect();
        append_burst(&mut from, &mut to);
    }

    #[test]
    fn appends_what_is_made_in_order_and_owns_once() {
        let mut to: ArrayVec<String, 4> = ["a"].iter().map(|s| s.to_string()).collect();
        let appended = append_from_fn(&mut to, 3, |index| {
            (index != 1).then(|| ["b", "x", "c"][index].to_string())
        });
        assert_eq!(appended, 2);
        assert_eq!(to.as_slice(), ["a", "b", "c"]);
        assert_eq!(append_from_fn(&mut to, 1, |_| None), 0);
        assert_eq!(append_from_fn(&mut to, 1, |_| Some("d".to_string())), 1);
        assert_eq!(to.as_slice(), ["a", "b", "c", "d"]);
    }

    #[test]
    #[should_panic(expected = "destination too full")]
    fn refuses_to_make_more_than_fits() {
        let mut to: ArrayVec<u8, 2> = [1].into_iter().collect();
        append_from_fn(&mut to, 2, |_| None::<u8>);
    }
}
