//! Counting SSE `data:` lines in a body that arrives in arbitrary pieces.

/// Marker for "inside a line that is not (or is already counted as) a `data:` line".
const MID_LINE: usize = usize::MAX;
const PREFIX: &[u8] = b"data:";

/// Counts lines that start with `data:`, however the body is split into frames.
///
/// Lines end at `\n` (which also covers `\r\n`). `data: [DONE]` counts like any other line.
#[derive(Debug, Default)]
pub(crate) struct DataLineCounter {
    count: u64,
    /// Bytes of `data:` matched at the start of the current line, or [`MID_LINE`].
    matched: usize,
}

impl DataLineCounter {
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.matched == MID_LINE {
                // Skip the rest of the line in one search rather than byte by byte.
                match memchr::memchr(b'\n', data) {
                    Some(end) => {
                        data = &data[end + 1..];
                        self.matched = 0;
                    }
                    None => return,
                }
                continue;
            }
            let byte = data[0];
            data = &data[1..];
            if byte == b'\n' {
                self.matched = 0;
            } else if byte == PREFIX[self.matched] {
                self.matched += 1;
                if self.matched == PREFIX.len() {
                    self.count += 1;
                    self.matched = MID_LINE;
                }
            } else {
                self.matched = MID_LINE;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] =
        b"data: {\"a\":1}\n\n: comment\nevent: x\ndata: {\"b\":\"data:\"}\r\n\r\ndata: [DONE]\n\n";

    #[test]
    fn counts_data_lines_whole() {
        let mut counter = DataLineCounter::default();
        counter.feed(BODY);
        assert_eq!(counter.count(), 3);
    }

    #[test]
    fn counts_data_lines_across_every_split() {
        for split in 0..BODY.len() {
            let mut counter = DataLineCounter::default();
            counter.feed(&BODY[..split]);
            counter.feed(&BODY[split..]);
            assert_eq!(counter.count(), 3, "split at {split}");
        }
        let mut counter = DataLineCounter::default();
        for byte in BODY {
            counter.feed(std::slice::from_ref(byte));
        }
        assert_eq!(counter.count(), 3);
    }
}
