//! The config file policy, shared by the library and `keepalive-shim check`
//! so that both reach the same conclusion about the same file: which files
//! are read, how much of them, and what a failure to read one means.
//!
//! Reading is the caller's (the library by raw syscalls, the CLI with std);
//! both open with `O_NONBLOCK` (opening a FIFO must not wait for a writer),
//! accept only a regular file, and read at most [`MAX_CONFIG_FILE_BYTES`].

use crate::diagnostic::Diagnostic;

/// The largest config file that is read: 16 KiB. A larger one is ignored
/// whole, never cut short (a cut could drop or change the last setting).
pub const MAX_CONFIG_FILE_BYTES: usize = 16 * 1024;

/// Why the config file could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// `ENOENT`: there is no such file.
    NotFound,
    /// Larger than [`MAX_CONFIG_FILE_BYTES`] (`EFBIG`).
    TooLarge,
    /// A directory, FIFO, device or socket (the library's `EINVAL`).
    NotRegular,
    /// Any other `errno` from `open`, `fstat` or `read`.
    Os(i32),
}

/// What to do with the config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileVerdict<'a> {
    /// Parse these contents.
    Use(&'a [u8]),
    /// No file, and nothing to say: the default path does not exist.
    Absent,
    /// The file is ignored, as if it did not exist; report this.
    Ignored(Diagnostic<'a>),
}

/// Decides what a read of the config file at `path` means. `explicit`: the
/// path came from `KEEPALIVE_SHIM_CONFIG` (a missing default file is
/// normal; a missing named one is worth a warning).
pub fn file_verdict<'a>(
    path: &'a [u8],
    explicit: bool,
    read: Result<&'a [u8], ReadError>,
) -> FileVerdict<'a> {
    match read {
        Ok(contents) if contents.len() <= MAX_CONFIG_FILE_BYTES => FileVerdict::Use(contents),
        Ok(_) => FileVerdict::Ignored(Diagnostic::FileIgnored {
            path,
            why: ReadError::TooLarge,
        }),
        Err(ReadError::NotFound) if !explicit => FileVerdict::Absent,
        Err(why) => FileVerdict::Ignored(Diagnostic::FileIgnored { path, why }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let path = b"/etc/ks.conf";
        assert_eq!(
            file_verdict(path, false, Ok(b"X=1")),
            FileVerdict::Use(b"X=1")
        );
        let exact = [b'#'; MAX_CONFIG_FILE_BYTES];
        assert_eq!(
            file_verdict(path, true, Ok(&exact)),
            FileVerdict::Use(&exact)
        );
        let over = [b'#'; MAX_CONFIG_FILE_BYTES + 1];
        let ignored = |why| FileVerdict::Ignored(Diagnostic::FileIgnored { path, why });
        assert_eq!(
            file_verdict(path, false, Ok(&over)),
            ignored(ReadError::TooLarge)
        );
        assert_eq!(
            file_verdict(path, false, Err(ReadError::NotFound)),
            FileVerdict::Absent
        );
        for why in [
            ReadError::NotFound,
            ReadError::TooLarge,
            ReadError::NotRegular,
            ReadError::Os(13),
        ] {
            assert_eq!(file_verdict(path, true, Err(why)), ignored(why));
        }
        assert_eq!(
            file_verdict(path, false, Err(ReadError::Os(13))),
            ignored(ReadError::Os(13))
        );
    }
}
