//! Allocation-free text output: the preload library writes its log lines
//! into a [`LineBuf`] on the stack; the CLI implements [`Sink`] on a `String`.

/// Something bytes can be written to. Writing never fails; a full buffer
/// truncates.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

/// A fixed-size line buffer that truncates instead of failing or panicking.
pub struct LineBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> LineBuf<N> {
    pub const fn new() -> Self {
        LineBuf {
            buf: [0; N],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Ends the line with `\n`, overwriting the last byte if the buffer is
    /// full, so that a truncated line is still one whole line.
    pub fn finish_line(&mut self) -> &[u8] {
        if self.len < N {
            self.put(b"\n");
        } else if let Some(last) = self.buf.last_mut() {
            *last = b'\n';
        }
        self.as_bytes()
    }
}

impl<const N: usize> Default for LineBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Sink for LineBuf<N> {
    fn put(&mut self, bytes: &[u8]) {
        let free = self.buf.get_mut(self.len..).unwrap_or(&mut []);
        let n = bytes.len().min(free.len());
        if let (Some(dst), Some(src)) = (free.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
            self.len = self.len.saturating_add(n);
        }
    }
}

/// Writes `n` in decimal.
pub fn put_u64(out: &mut impl Sink, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start = start.saturating_sub(1);
        if let Some(d) = digits.get_mut(start) {
            *d = b'0'.saturating_add((n % 10) as u8);
        }
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    out.put(digits.get(start..).unwrap_or(&[]));
}

/// Writes at most `max` bytes of `v`, printable ASCII as is and anything
/// else as `\xNN`, so that a hostile value cannot forge log lines.
pub fn put_escaped(out: &mut impl Sink, v: &[u8], max: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in v.iter().take(max) {
        if (0x20..0x7f).contains(&b) && b != b'\\' && b != b'"' {
            out.put(&[b]);
        } else {
            let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'?');
            let lo = HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'?');
            out.put(&[b'\\', b'x', hi, lo]);
        }
    }
    if v.len() > max {
        out.put(b"...");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        for n in [0u64, 7, 10, 120000, u64::MAX] {
            let mut b = LineBuf::<32>::new();
            put_u64(&mut b, n);
            assert_eq!(b.as_bytes(), std::format!("{n}").as_bytes());
        }
    }

    #[test]
    fn truncation_keeps_one_line() {
        let mut b = LineBuf::<8>::new();
        b.put(b"0123456789");
        assert_eq!(b.as_bytes(), b"01234567");
        assert_eq!(b.finish_line(), b"0123456\n");
        let mut b = LineBuf::<8>::new();
        b.put(b"ab");
        assert_eq!(b.finish_line(), b"ab\n");
    }

    #[test]
    fn escaping() {
        let mut b = LineBuf::<64>::new();
        put_escaped(&mut b, b"a\nb\"\\\xff", 64);
        assert_eq!(b.as_bytes(), b"a\\x0ab\\x22\\x5c\\xff");
        let mut b = LineBuf::<64>::new();
        put_escaped(&mut b, b"abcdef", 3);
        assert_eq!(b.as_bytes(), b"abc...");
    }
}
