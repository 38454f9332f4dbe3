//! A strict byte scanner for the subset of JSON that the hot history lines
//! use: objects, arrays, strings without escapes, integers, `true`, `false`
//! and `null`.
//!
//! It never decides that a line is malformed. Every method returns `None`
//! for anything outside that subset (an escape, a float, a leading zero, an
//! integer out of range, nesting deeper than [`DEPTH_MAX`]), and the caller
//! then hands the whole line to serde_json, which either reads it or names
//! the error's column. So this scanner may accept only text that serde_json
//! accepts with the same meaning, and the differential tests hold it to that.

/// Nesting deeper than this goes to serde_json (whose own limit is 128).
pub(super) const DEPTH_MAX: u32 = 64;

/// Powers of ten up to the eight digits of one [`digits8`] chunk.
const POW10: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// The decimal digits that start `b[i..]`, up to eight, read in one go (as
/// simdjson does): their value and how many there are. `None` when fewer
/// than eight bytes are left.
#[inline]
fn digits8(b: &[u8], i: usize) -> Option<(u64, usize)> {
    let chunk = u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?);
    let sub = chunk.wrapping_sub(0x3030_3030_3030_3030);
    // A byte's top bit is set unless it was a digit. Borrows and carries
    // only move towards later bytes, past the first non-digit.
    let non_digit = (sub | sub.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080;
    let len = (non_digit.trailing_zeros() / 8) as usize;
    if len == 0 {
        return Some((0, 0));
    }
    // Left-pad with ASCII zeros to eight digits.
    let ascii = if len == 8 { chunk } else { (chunk << (8 * (8 - len))) | (0x3030_3030_3030_3030 >> (8 * len)) };
    let v = (ascii & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561) >> 8;
    let v = (v & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601) >> 16;
    Some(((v & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001) >> 32, len))
}

/// Where the string that starts `b` ends: the offset of its closing
/// quote. `None` at an escape, a control character or the end of `b`.
/// Eight bytes at a time: a byte-by-byte loop mispredicts its exit on
/// every string.
#[inline]
fn string_end(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let v = u64::from_le_bytes(chunk.try_into().ok()?);
        // The classic "has a zero byte" test, for `"`, `\` and bytes below
        // 0x20; its lowest set bit is exact.
        let quote = (v ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES) & !(v ^ (ONES * u64::from(b'"'))) & HIGH;
        let slash = (v ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES) & !(v ^ (ONES * u64::from(b'\\'))) & HIGH;
        let control = v.wrapping_sub(ONES * 0x20) & !v & HIGH;
        let hit = quote | slash | control;
        if hit != 0 {
            let at = i + (hit.trailing_zeros() / 8) as usize;
            return (b[at] == b'"').then_some(at);
        }
        i += 8;
    }
    let at = i + b[i..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    (b[at] == b'"').then_some(at)
}

/// A position in one line.
pub(super) struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    pub(super) fn new(b: &'a [u8]) -> Scan<'a> {
        Scan { b, i: 0 }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    pub(super) fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// Consumes `c` (after whitespace), or gives up.
    #[inline]
    pub(super) fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// Consumes `c` if it is next.
    #[inline]
    fn try_eat(&mut self, c: u8) -> bool {
        self.eat(c).is_some()
    }

    /// True once only whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Consumes a literal word if it is next.
    #[inline]
    pub(super) fn try_word(&mut self, word: &[u8]) -> bool {
        self.ws();
        let hit = self.b[self.i..].starts_with(word);
        if hit {
            self.i += word.len();
        }
        hit
    }

    /// A string without escapes or control characters: the byte range of
    /// its contents. The line is valid UTF-8 already.
    #[inline]
    pub(super) fn string(&mut self) -> Option<(usize, usize)> {
        self.eat(b'"')?;
        let start = self.i;
        let end = self.i + string_end(&self.b[self.i..])?;
        self.i = end + 1;
        Some((start, end))
    }

    /// A string, or `null` as `None`.
    #[inline]
    pub(super) fn opt_string(&mut self) -> Option<Option<(usize, usize)>> {
        if self.try_word(b"null") { Some(None) } else { self.string().map(Some) }
    }

    #[inline]
    pub(super) fn bool(&mut self) -> Option<bool> {
        if self.try_word(b"true") {
            Some(true)
        } else if self.try_word(b"false") {
            Some(false)
        } else {
            None
        }
    }

    /// A non-negative integer that fits `u64`, written as JSON writes it.
    /// Eight digits at a time while no overflow is possible, then one by one.
    #[inline]
    pub(super) fn u64(&mut self) -> Option<u64> {
        self.ws();
        let (b, start) = (self.b, self.i);
        let (mut v, mut i) = (0u64, start);
        // After at most 11 digits, eight more still fit in 19: no overflow.
        while i - start <= 11
            && let Some((chunk, len)) = digits8(b, i)
        {
            v = v * POW10[len] + chunk;
            i += len;
            if len < 8 {
                return self.end_u64(start, i, v);
            }
        }
        while let Some(d) = b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9) {
            v = v.checked_mul(10)?.checked_add(u64::from(d))?;
            i += 1;
        }
        self.end_u64(start, i, v)
    }

    /// Ends a number at `i`: JSON allows no leading zero, and a fraction or
    /// exponent is not this subset's.
    #[inline]
    fn end_u64(&mut self, start: usize, i: usize, v: u64) -> Option<u64> {
        self.i = i;
        let digits = i - start;
        let leading_zero = digits > 1 && self.b[start] == b'0';
        let more = matches!(self.b.get(i), Some(b'0'..=b'9' | b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !more).then_some(v)
    }

    /// An integer that fits `i64`. `-0` is left to serde_json.
    #[inline]
    pub(super) fn i64(&mut self) -> Option<i64> {
        if self.peek()? != b'-' {
            return i64::try_from(self.u64()?).ok();
        }
        self.i += 1;
        if !matches!(self.b.get(self.i), Some(b'1'..=b'9')) {
            return None;
        }
        let magnitude = self.u64()?;
        (magnitude <= 1 << 63).then(|| (magnitude as i64).wrapping_neg())
    }

    /// A `u64`, or `null` as `None`.
    #[inline]
    pub(super) fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.try_word(b"null") { Some(None) } else { self.u64().map(Some) }
    }

    /// An object: `field` reads each key's value. Keys with escapes, and
    /// trailing commas, give up.
    #[inline]
    pub(super) fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.try_eat(b'}') {
            return Some(());
        }
        self.member(&mut field)?;
        self.object_rest(field)
    }

    /// The rest of an object whose opening and first members were read.
    #[inline]
    pub(super) fn object_rest(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        while self.try_eat(b',') {
            self.member(&mut field)?;
        }
        self.eat(b'}')
    }

    #[inline]
    fn member(&mut self, field: &mut impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        let (s, e) = self.string()?;
        self.eat(b':')?;
        field(self, &self.b[s..e])
    }

    /// Consumes `lit` if the text goes on with exactly it, whitespace
    /// included.
    #[inline]
    pub(super) fn try_lit(&mut self, lit: &[u8]) -> bool {
        let hit = self.b[self.i..].starts_with(lit);
        if hit {
            self.i += lit.len();
        }
        hit
    }

    /// A string's contents as bytes.
    #[inline]
    pub(super) fn bytes(&mut self) -> Option<&'a [u8]> {
        let (s, e) = self.string()?;
        Some(&self.b[s..e])
    }

    /// An array: `elem` reads each element.
    #[inline]
    pub(super) fn array(&mut self, mut elem: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.try_eat(b']') {
            return Some(());
        }
        loop {
            elem(self)?;
            if !self.try_eat(b',') {
                return self.eat(b']');
            }
        }
    }

    /// Skips any value of the subset, nested at most `DEPTH_MAX` deep.
    pub(super) fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth >= DEPTH_MAX {
            return None;
        }
        match self.peek()? {
            b'{' => self.object(|s, _| s.skip_value(depth + 1)),
            b'[' => self.array(|s| s.skip_value(depth + 1)),
            b'"' => self.string().map(drop),
            b't' | b'f' => self.bool().map(drop),
            b'n' => self.try_word(b"null").then_some(()),
            b'-' => self.i64().map(drop),
            _ => self.u64().map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(text: &str) -> Option<()> {
        let mut s = Scan::new(text.as_bytes());
        s.skip_value(0)?;
        s.at_end().then_some(())
    }

    /// What serde_json reads the same way is taken; the rest gives up.
    #[test]
    fn the_subset_is_taken_and_the_rest_gives_up() {
        for ok in ["{}", "[]", " { \"a\" : [1, -2, \"x\", null, true, false, {}] } ", "0", "-9223372036854775808"] {
            assert!(skip(ok).is_some(), "{ok}");
            assert!(serde_json::from_str::<serde_json::Value>(ok).is_ok(), "{ok}");
        }
        for give_up in ["{,}", "[1,]", "01", "1.5", "1e3", "-0", "\"a\\n\"", "{\"a\":1,}", "nul", "[1 2]", "\"\t\""] {
            assert!(skip(give_up).is_none(), "{give_up}");
        }
        assert!(skip(&"[".repeat(70)).is_none());
    }

    /// Every length of number, followed by every kind of byte, reads as
    /// `str::parse` reads it.
    #[test]
    fn numbers_of_every_length_read_as_parse_does() {
        let mut rng = crate::util::SplitMix64::new(2);
        for _ in 0..20_000 {
            let len = rng.range(1, 22) as usize;
            let digits: String = (0..len).map(|_| char::from(b'0' + rng.below(10) as u8)).collect();
            let tail = [",", "]", "}", "", " ", "x", ".5", "e3", "\u{e9}"][rng.below(9) as usize];
            let text = format!("{digits}{tail}");
            let expected = digits.parse::<u64>().ok().filter(|_| len == 1 || !digits.starts_with('0'));
            let expected = expected.filter(|_| !tail.starts_with(['.', 'e']));
            assert_eq!(Scan::new(text.as_bytes()).u64(), expected, "{text}");
        }
    }

    /// Strings of every length end where a byte loop says, and give up at
    /// escapes and control characters.
    #[test]
    fn strings_end_at_their_quote() {
        for len in 0..20 {
            let body = "a".repeat(len);
            for (tail, end) in [("\"x", Some(len)), ("\\\"\"", None), ("\n\"", None), ("", None)] {
                let text = format!("{body}{tail}");
                assert_eq!(string_end(text.as_bytes()), end, "{text:?}");
            }
        }
        assert_eq!(string_end("é\"".as_bytes()), Some(2));
    }

    /// Integers at the edges of their types.
    #[test]
    fn integer_edges() {
        assert_eq!(Scan::new(b"18446744073709551615").u64(), Some(u64::MAX));
        assert_eq!(Scan::new(b"18446744073709551616").u64(), None);
        assert_eq!(Scan::new(b"9223372036854775807").i64(), Some(i64::MAX));
        assert_eq!(Scan::new(b"9223372036854775808").i64(), None);
        assert_eq!(Scan::new(b"-9223372036854775808").i64(), Some(i64::MIN));
        assert_eq!(Scan::new(b"-9223372036854775809").i64(), None);
        assert_eq!(Scan::new(b"-").i64(), None);
    }
}
