//! Moving a whole burst of packets between two bursts with one `memcpy`,
//! filling a burst by index with its length stored once, and taking a
//! burst's front out one item at a time.

use arrayvec::ArrayVec;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;

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

/// The first items of an `ArrayVec`, taken out one at a time in order
/// ([`take_front`]): a driver's transmit loop looks at the next packet and
/// takes it only when its fast path can send it, with one pointer bumped
/// and one bound. Dropped, it drops the front's items not taken and moves
/// the items behind the front up.
pub struct Front<'a, T, const N: usize> {
    /// Held as a pointer, like `ArrayVec`'s own `Drain`: the item pointers
    /// below are derived from it, and a use of a `&mut` to the whole
    /// vector while they live would invalidate them (Stacked Borrows).
    from: *mut ArrayVec<T, N>,
    _from: PhantomData<&'a mut ArrayVec<T, N>>,
    /// The next item to take, and one past the front's last.
    next: *mut T,
    end: *mut T,
    /// Items in the front when it was taken, and behind it.
    count: usize,
    behind: usize,
}

/// The first `count` items of `from` as a [`Front`]. While it lives `from`
/// reads as empty: a panic meanwhile leaks the items rather than dropping
/// one twice.
///
/// # Panics
/// When `from` holds fewer than `count` items.
#[inline(always)]
pub fn take_front<T, const N: usize>(from: &mut ArrayVec<T, N>, count: usize) -> Front<'_, T, N> {
    let length = from.len();
    assert!(count <= length, "take_front: fewer items than asked");
    // SAFETY: 0 items are initialised as far as `from` knows from here on;
    // the front and `Drop for Front` own all `length` of them.
    unsafe { from.set_len(0) };
    let from = core::ptr::from_mut(from);
    // SAFETY: `from` came from a `&mut` borrowed for the front's life.
    let next = unsafe { (*from).as_mut_ptr() };
    Front {
        from,
        _from: PhantomData,
        next,
        end: next.wrapping_add(count),
        count,
        behind: length - count,
    }
}

impl<T, const N: usize> Front<'_, T, N> {
    /// Items left in the front.
    #[inline(always)]
    pub fn len(&self) -> usize {
        // SAFETY: both lie in the front's items, `next` at or before `end`.
        unsafe { self.end.offset_from(self.next) as usize }
    }

    /// True once every item of the front was taken.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.next == self.end
    }

    /// Takes the next item if `wanted` says so; it stays in the front
    /// otherwise.
    #[inline(always)]
    pub fn next_if(&mut self, wanted: impl FnOnce(&T) -> bool) -> Option<T> {
        self.next_if_then(wanted, core::convert::identity)
    }
}

impl<T, const N: usize> Front<'_, T, N> {
    /// [`Self::next_if`] with the item handed straight to `then`: the
    /// caller's code runs on the taken item with no look at whether an
    /// `Option` of it holds one.
    #[inline(always)]
    pub fn next_if_then<R>(
        &mut self,
        wanted: impl FnOnce(&T) -> bool,
        then: impl FnOnce(T) -> R,
    ) -> Option<R> {
        if self.is_empty() {
            return None;
        }
        // SAFETY: just checked that the front is not empty.
        unsafe { self.next_if_then_unchecked(wanted, then) }
    }
}

impl<T, const N: usize> Front<'_, T, N> {
    /// [`Self::next_if_then`] without the look at whether the front is
    /// empty: a loop bounded by [`Self::len`] already knows it is not, and
    /// checks one bound a pass rather than two.
    ///
    /// # Safety
    /// The front is not empty (`!self.is_empty()`).
    #[inline(always)]
    pub unsafe fn next_if_then_unchecked<R>(
        &mut self,
        wanted: impl FnOnce(&T) -> bool,
        then: impl FnOnce(T) -> R,
    ) -> Option<R> {
        debug_assert!(!self.is_empty(), "next_if_then_unchecked on an empty front");
        // SAFETY: `next` is before `end` (the precondition), at an
        // initialised item of the front not taken yet. Read once, so that
        // `wanted` looks at a value in registers; while not wanted its
        // bits stay where they are, owned by the front (the copy is
        // forgotten), and once taken `next` moves past them.
        let item = ManuallyDrop::new(unsafe { self.next.read() });
        if !wanted(&item) {
            return None;
        }
        // SAFETY: `next < end`, so one past it is at most `end`.
        self.next = unsafe { self.next.add(1) };
        Some(then(ManuallyDrop::into_inner(item)))
    }
}

impl<T, const N: usize> Front<'_, T, N> {
    /// The next item not taken, for a loop that reads the front's items
    /// in place by index (`as_ptr().add(k)`, `k < len()`) and moves the
    /// ones it takes out bitwise, then says how many with
    /// [`Self::skip_taken`]: the front's position stays in the loop's
    /// register rather than in memory at each item.
    #[inline(always)]
    pub fn as_ptr(&self) -> *mut T {
        self.next
    }

    /// Moves past the next `count` items, which the caller moved out
    /// (read bitwise from [`Self::as_ptr`]) and now owns: the front neither
    /// drops nor keeps them.
    ///
    /// # Safety
    /// `count <= self.len()`, and each of the next `count` items was read
    /// out once, after which it is not used through the front again.
    #[inline(always)]
    pub unsafe fn skip_taken(&mut self, count: usize) {
        debug_assert!(count <= self.len(), "skip_taken past the front");
        // SAFETY: `count <= len()`, so the new `next` is at most `end`.
        self.next = unsafe { self.next.add(count) };
    }
}

impl<T, const N: usize> Iterator for Front<'_, T, N> {
    type Item = T;

    #[inline(always)]
    fn next(&mut self) -> Option<T> {
        self.next_if(|_| true)
    }
}

impl<T, const N: usize> Drop for Front<'_, T, N> {
    #[inline]
    fn drop(&mut self) {
        let left = self.len();
        // SAFETY: the `left` items from `next` were not taken: they are
        // initialised and owned here, dropped once (`from` reads as empty,
        // so a panic in a drop leaks the rest).
        unsafe { core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(self.next, left)) };
        // SAFETY: `from` is borrowed for the front's life, and the item
        // pointers are not used again. The `behind` items after the
        // front's `count` are initialised and in bounds; moved bitwise to
        // the start (the ranges may overlap: `copy`), after which `from`
        // owns them once.
        unsafe {
            let from = &mut *self.from;
            if self.behind > 0 {
                let base = from.as_mut_ptr();
                core::ptr::copy(base.add(self.count), base, self.behind);
            }
            from.set_len(self.behind);
        }
    }
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

    #[test]
    fn takes_the_front_while_wanted_and_keeps_what_is_behind() {
        let mut from: ArrayVec<String, 5> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut front = take_front(&mut from, 3);
        assert_eq!(front.len(), 3);
        assert_eq!(front.next_if(|s| s == "a").as_deref(), Some("a"));
        assert_eq!(front.next_if(|s| s == "a"), None);
        assert_eq!(front.next_if_then(|s| s == "b", |s| s.len()), Some(1));
        assert_eq!(front.next_if_then(|s| s == "b", |s| s.len()), None);
        // SAFETY: "c" is left.
        let taken = unsafe { front.next_if_then_unchecked(|s| s == "b", |s| s.len()) };
        assert_eq!(taken, None);
        assert_eq!(front.len(), 1);
        // "c" is dropped with the front, "d" and "e" move up.
        drop(front);
        assert_eq!(from.as_slice(), ["d", "e"]);
        let mut front = take_front(&mut from, 2);
        assert_eq!(front.by_ref().count(), 2);
        assert!(front.is_empty());
        assert_eq!(front.next(), None);
        drop(front);
        assert!(from.is_empty());
    }

    #[test]
    fn items_read_in_place_and_skipped_are_the_callers() {
        let mut from: ArrayVec<String, 4> =
            ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let mut front = take_front(&mut from, 3);
        let next = front.as_ptr();
        // SAFETY: the first two of three are read out once each, then
        // skipped; the rest stay the front's.
        let taken = unsafe {
            let taken = [next.read(), next.add(1).read()];
            front.skip_taken(2);
            taken
        };
        assert_eq!(taken, ["a", "b"]);
        assert_eq!(front.len(), 1);
        assert_eq!(front.next().as_deref(), Some("c"));
        drop(front);
        assert_eq!(from.as_slice(), ["d"]);
    }

    #[test]
    #[should_panic(expected = "fewer items than asked")]
    fn refuses_a_front_longer_than_the_items() {
        let mut from: ArrayVec<u8, 2> = [1].into_iter().collect();
        take_front(&mut from, 2);
    }
}
