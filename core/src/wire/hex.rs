//! The hex form of bytes in the text of frames, vectors and traces.

use core::fmt;

/// Writes bytes as lower-case hex, eliding after 32 bytes (`0a0b…(+100 bytes)`); `-` if empty.
pub(crate) struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 32;
        if self.0.is_empty() {
            return f.write_str("-");
        }
        for b in self.0.iter().take(SHOWN) {
            write!(f, "{b:02x}")?;
        }
        if self.0.len() > SHOWN {
            write!(f, "…(+{} bytes)", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}
