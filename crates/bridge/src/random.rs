//! Random bytes for names and MACs: one getrandom(2) call, no file to open on the ADD path.

/// Fills `buf` from the kernel's random pool. Best effort: on the (pre-3.17) kernels without
/// the call the bytes stay as they were, as they would with an unreadable /dev/urandom.
pub fn fill(buf: &mut [u8]) {
    // SAFETY: the pointer and length describe `buf`, which the kernel may write.
    let _ = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn fills_with_fresh_bytes() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        super::fill(&mut a);
        super::fill(&mut b);
        assert_ne!(a, [0u8; 16]);
        assert_ne!(a, b);
    }
}
