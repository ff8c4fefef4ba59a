//! Line and column of a byte offset in a source text.

/// Line starts of a source text, for the `line:col` of an offset.
pub(crate) struct LineIndex<'s> {
    source: &'s str,
    starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    /// Indexes the line starts of `source`.
    pub(crate) fn new(source: &'s str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Self { source, starts }
    }

    /// Line and column (both from 1, the column in characters) of a byte offset.
    pub(crate) fn position(&self, offset: u32) -> (u32, u32) {
        let offset = offset as usize;
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = self
            .source
            .get(start..offset)
            .map_or(0, |s| s.chars().count());
        (line as u32, col as u32 + 1)
    }
}
