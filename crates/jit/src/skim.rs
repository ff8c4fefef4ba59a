//! A lexical skim of JavaScript source for the small scanners that run before (or instead
//! of) a parser: it tells code from comments and string literals, and nothing more.

/// A piece of source as [`skim`] hands it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// A byte of code, at its offset.
    Code(usize, u8),
    /// A comment starting at the offset; `newline` when a block comment spans lines (a line
    /// comment's newline comes after it, as code).
    Comment(usize, bool),
    /// A string or template literal starting at the offset.
    Quoted(usize),
}

impl Piece {
    /// Where the piece starts.
    pub fn at(self) -> usize {
        match self {
            Piece::Code(i, _) | Piece::Comment(i, _) | Piece::Quoted(i) => i,
        }
    }
}

/// Hands every piece of `source` to `f` in order, until `f` returns false. Regular
/// expression literals are taken for code.
pub fn skim(source: &str, mut f: impl FnMut(Piece) -> bool) {
    let b = source.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let piece = match c {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                Piece::Comment(start, false)
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                let mut newline = false;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    newline |= b[i] == b'\n';
                    i += 1;
                }
                i += 2;
                Piece::Comment(start, newline)
            }
            b'\'' | b'"' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                Piece::Quoted(start)
            }
            _ => {
                i += 1;
                Piece::Code(start, c)
            }
        };
        if !f(piece) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_comments_and_strings_are_told_apart() {
        let mut pieces = Vec::new();
        skim("a/*x\n*/'b;'// c\n`d`", |p| {
            pieces.push(p);
            true
        });
        assert_eq!(
            pieces,
            [
                Piece::Code(0, b'a'),
                Piece::Comment(1, true),
                Piece::Quoted(7),
                Piece::Comment(11, false),
                Piece::Code(15, b'\n'),
                Piece::Quoted(16)
            ]
        );
    }
}
