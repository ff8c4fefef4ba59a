//! Line and column of a byte offset in a source text: the one place Flux computes them.

/// Line starts of a source text, for the `line:col` of an offset. Build it once per
/// source; each [`position`](LineIndex::position) is a binary search.
#[derive(Debug, Clone)]
pub struct LineIndex<'s> {
    source: &'s str,
    starts: Vec<usize>,
    /// All ASCII: a column is a byte count, found without counting characters.
    ascii: bool,
}

impl<'s> LineIndex<'s> {
    /// Indexes the line starts of `source`.
    pub fn new(source: &'s str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        let ascii = source.is_ascii();
        Self {
            source,
            starts,
            ascii,
        }
    }

    /// Line and column (both from 1, the column in characters) of a byte offset. An offset
    /// past the end counts as the end; one inside a character, as its line's start.
    pub fn position(&self, offset: u32) -> (u32, u32) {
        let offset = (offset as usize).min(self.source.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = if self.ascii {
            offset - start
        } else {
            self.source
                .get(start..offset)
                .map_or(0, |s| s.chars().count())
        };
        (line as u32, col as u32 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::LineIndex;

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        let src = "ab\n\u{e9}t\u{e9}\n\nx";
        let lines = LineIndex::new(src);
        assert_eq!(lines.position(0), (1, 1));
        assert_eq!(lines.position(2), (1, 3));
        assert_eq!(lines.position(3), (2, 1));
        // After "é" (two bytes): the second character.
        assert_eq!(lines.position(5), (2, 2));
        assert_eq!(lines.position(10), (4, 1));
        assert_eq!(lines.position(11), (4, 2));
        assert_eq!(lines.position(99), (4, 2));
    }
}
