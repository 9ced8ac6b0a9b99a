//! Carving typed views out of one caller-owned `&mut [T]` (the core allocates nothing).

/// Splits the first `n` elements off the front of `*buf`.
#[inline]
pub(crate) fn take<'a, T>(buf: &mut &'a mut [T], n: usize) -> &'a mut [T] {
    // Clamp before `mem::take` empties `*buf` (as the receiver it would be evaluated first).
    let n = n.min(buf.len());
    let (head, tail) = core::mem::take(buf).split_at_mut(n);
    *buf = tail;
    head
}
