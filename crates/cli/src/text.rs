//! Text for the terminal: user text (ids, `--name`s, messages) never drives it.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character escaped: C0 (`\n`, `\r`, `\t`, `\x1b`...), DEL
/// (`\x7f`) and C1 (`\u{9b}`...), so sent code cannot move the cursor, clear the screen or
/// forge lines. Everything else is kept as it is.
///
/// Every line of user text the binary prints goes through this one function.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn control_characters_are_escaped_before_the_terminal() {
        assert_eq!(escape("bass drum é"), "bass drum é");
        assert_eq!(escape("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(escape("x\ny\r\t"), "x\\ny\\r\\t");
        assert_eq!(escape("\0\x7f"), "\\x00\\x7f");
        assert_eq!(escape("c1\u{9b}2J"), "c1\\u{9b}2J");
    }
}
