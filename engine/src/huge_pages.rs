//! Asks the kernel to back the large pools with 2 MB pages.
//!
//! A deep book is a few hundred MB of orders, client ids and index, read at random. With 4 KB
//! pages almost every one of those reads also misses the TLB, and on a virtual machine a page
//! walk is two-dimensional (guest and host tables): it costs as much as the miss itself. One
//! 2 MB page covers 512 times the memory per TLB entry. The kernel's transparent huge pages are
//! often set to `madvise` (used only where asked), so the pools ask, once, when reserved. It is a
//! hint: where huge pages are off or the call fails, nothing changes but the speed.

/// Size of a transparent huge page on x86-64 and most aarch64 kernels.
const HUGE_PAGE_BYTES: usize = 2 << 20;

/// Marks the whole 2 MB pages inside `vec`'s reserved buffer (its capacity, not its length) for
/// huge pages. Buffers under 2 MB are left alone.
pub(crate) fn advise<T>(vec: &Vec<T>) {
    let start = vec.as_ptr() as usize;
    let bytes = vec.capacity().saturating_mul(core::mem::size_of::<T>());
    let first = start.next_multiple_of(HUGE_PAGE_BYTES);
    let end = (start + bytes) / HUGE_PAGE_BYTES * HUGE_PAGE_BYTES;
    if end > first {
        madvise_huge(first, end - first);
    }
}

#[cfg(all(target_os = "linux", not(miri)))]
fn madvise_huge(addr: usize, len: usize) {
    // SAFETY: [addr, addr + len) lies inside a buffer this process allocated and still owns;
    // MADV_HUGEPAGE changes how the kernel backs those pages, never their contents. The result
    // is ignored on purpose: a refusal (THP disabled, an old kernel) only means small pages.
    let _ = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
}

#[cfg(not(all(target_os = "linux", not(miri))))]
fn madvise_huge(_addr: usize, _len: usize) {}

#[cfg(test)]
mod tests {
    #[test]
    fn advising_keeps_contents_and_skips_small_buffers() {
        // A buffer spanning several huge pages: the hint runs (its unsafe block), and the data
        // written before and after reads back unchanged.
        let mut big: Vec<u64> = Vec::with_capacity(3 * super::HUGE_PAGE_BYTES / 8);
        big.extend((0..1000u64).map(|i| i * 7));
        super::advise(&big);
        big.extend((1000..big.capacity() as u64).map(|i| i * 7));
        assert!(big.iter().enumerate().all(|(i, &v)| v == i as u64 * 7));
        let small: Vec<u8> = vec![1; 4096];
        super::advise(&small);
        assert!(small.iter().all(|&b| b == 1));
    }
}
