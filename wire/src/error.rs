//! The one error type of the wire crate: what was wrong with a buffer, never a panic.

/// Why a buffer could not be parsed or emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ends before the field that was being read.
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    /// A field holds a value the protocol does not allow.
    #[error("malformed {what}: {why}")]
    Malformed {
        what: &'static str,
        why: &'static str,
    },
    /// A well-formed value that this implementation does not handle (for example an L2TP
    /// version other than 2 or 3).
    #[error("unsupported {what}: {value}")]
    Unsupported { what: &'static str, value: u32 },
    /// The output buffer is too small for what is being emitted.
    #[error("output buffer too small for {what}: need {need} bytes, have {have}")]
    BufferTooSmall {
        what: &'static str,
        need: usize,
        have: usize,
    },
}

/// The wire crate's result.
pub type Result<T> = core::result::Result<T, Error>;

/// Checks that `buf` holds at least `need` bytes of `what`.
#[inline]
pub(crate) fn check_len(what: &'static str, buf: &[u8], need: usize) -> Result<()> {
    if buf.len() < need {
        Err(Error::Truncated {
            what,
            need,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}

/// Checks that an output buffer can take `need` bytes of `what`.
#[inline]
pub(crate) fn check_room(what: &'static str, buf: &[u8], need: usize) -> Result<()> {
    if buf.len() < need {
        Err(Error::BufferTooSmall {
            what,
            need,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}
