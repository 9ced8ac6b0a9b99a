//! The one error type of the core: returned at API boundaries, never raised on the hot path.

use core::fmt;

/// Why a call into the core was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A buffer's length does not match the shape the call needs.
    Shape {
        /// Which buffer.
        what: &'static str,
        /// Length the call needs.
        expected: usize,
        /// Length it was given.
        found: usize,
    },
    /// A class index is not below the number of classes.
    Label {
        /// The index given.
        index: usize,
        /// The number of classes.
        classes: usize,
    },
    /// A value outside what the call accepts (a quantized model's sizes, shift, input scale, a
    /// non-finite weight), naming it.
    Invalid {
        /// Which value.
        what: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Shape {
                what,
                expected,
                found,
            } => {
                write!(
                    f,
                    "shape mismatch: `{what}` has length {found}, expected {expected}"
                )
            }
            Error::Label { index, classes } => {
                write!(f, "class index {index} out of range for {classes} classes")
            }
            Error::Invalid { what } => write!(f, "invalid {what}"),
        }
    }
}

impl core::error::Error for Error {}

/// `Ok(())` if `found == expected`, else a [`Error::Shape`] naming `what`.
#[inline]
pub(crate) fn check(what: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::Shape {
            what,
            expected,
            found,
        })
    }
}
