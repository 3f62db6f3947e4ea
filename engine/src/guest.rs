//! The boundary where guest data becomes host data: every string a guest
//! hands the host (its output, error messages, log lines and fields,
//! metadata, function names in a backtrace) passes through here, is checked
//! for length while it still lies in the guest's memory, and only then is a
//! bounded prefix copied out.
//!
//! Arguments of host calls (log lines) are lifted as [`WasmStr`], so a
//! 100 MB log message costs the host one UTF-8 check of guest memory, not a
//! 100 MB copy. Results of the guest's exports (output, error message,
//! metadata) cannot be: wasmtime runs the guest's post-return function, which
//! frees them, as soon as they are lifted. They are copied once, a copy no
//! larger than the guest's own memory limit, and clipped at once, before
//! anything else sees them.

use std::borrow::Cow;

use wasmtime::AsContext;
use wasmtime::component::WasmStr;

/// Longest algorithm error message kept (the rest is cut, and the cut said).
pub(crate) const MAX_ERROR_MESSAGE_BYTES: usize = 8 << 10;
/// Longest `metadata().description` accepted.
pub(crate) const MAX_DESCRIPTION_BYTES: usize = 4 << 10;
/// Longest config or output schema accepted.
pub(crate) const MAX_SCHEMA_BYTES: usize = 64 << 10;
/// Longest `metadata().id` or `metadata().version` read (IDs are at most 64
/// characters; anything longer is refused by the ID check).
pub(crate) const MAX_NAME_BYTES: usize = 256;
/// Longest message of one `host::log` line; the run log's own bound applies too.
pub(crate) const MAX_LOG_MESSAGE_BYTES: usize = 4 << 10;
/// Fields of one `host::log` line read; the rest are counted, not read.
pub(crate) const MAX_LOG_FIELDS: usize = 32;
/// Longest key or value of one log field.
pub(crate) const MAX_LOG_FIELD_BYTES: usize = 1 << 10;
/// Frames of a trap's backtrace shown (wasmtime captures at most this many too).
pub(crate) const MAX_BACKTRACE_FRAMES: usize = 64;
/// Longest function or module name shown in a backtrace frame.
pub(crate) const MAX_FRAME_NAME_BYTES: usize = 256;

/// A string from the guest that is not UTF-8 (the canonical ABI requires it).
#[derive(Debug, thiserror::Error)]
#[error("the plugin passed {0} that is not valid UTF-8")]
pub(crate) struct InvalidUtf8(pub(crate) &'static str);

/// Copies at most `max` bytes of a string that still lies in guest memory
/// (an argument of a host call, so the memory is live): the length is
/// checked before anything is copied. `None` when it is not UTF-8.
pub(crate) fn copy_clipped(store: impl AsContext, s: &WasmStr, max: usize) -> Option<String> {
    s.to_str(store.as_context()).ok().map(|text| clip(&text, max))
}

/// At most `max` bytes of `text` (cut at a character boundary, the cut said
/// at the end), with NUL bytes replaced: PostgreSQL refuses NUL in text, and
/// no reader of a log or message wants one.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return without_nul(text).into_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} more bytes cut]", without_nul(&text[..end]), text.len() - end)
}

fn without_nul(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_at_a_character_boundary_and_says_so() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("ééé", 3), "é… [4 more bytes cut]");
        assert_eq!(clip("a\0b", 10), "a\u{FFFD}b");
        let long = "x".repeat(1 << 20);
        assert!(clip(&long, 100).len() < 130);
    }
}
