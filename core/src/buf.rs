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

/// Splits `rows` rows of `N` elements off the front of `*buf`.
#[inline]
pub(crate) fn rows<'a, T, const N: usize>(buf: &mut &'a mut [T], rows: usize) -> &'a mut [[T; N]] {
    const { assert!(N > 0) };
    take(buf, rows * N).as_chunks_mut::<N>().0
}

/// Splits `rows` rows of 4 x `N` elements (the four gates of an LSTM) off the front of `*buf`.
#[inline]
pub(crate) fn gate_rows<'a, T, const N: usize>(
    buf: &mut &'a mut [T],
    rows: usize,
) -> &'a mut [[[T; N]; 4]] {
    self::rows::<T, N>(buf, 4 * rows).as_chunks_mut::<4>().0
}
