//! What the constructor does, once per process: read the environment and
//! the config file, resolve the configuration, keep its warnings for later,
//! and arm the hooks (see [`crate::plan`]).

use core::ffi::c_int;

use keepalive_shim_config::{
    file_verdict, resolve, Config, Diagnostic, EnvView, FileVerdict, FileView, LineBuf, ReadError,
    Sink, MAX_CONFIG_FILE_BYTES,
};

use crate::log;
use crate::once::ClaimOnce;
use crate::plan::{self, Plan};
use crate::shim;
use crate::sys;

/// The constructor's large buffers (see [`ClaimOnce`]).
struct Scratch {
    /// The config file's path, NUL-terminated; later the executable's path.
    path: [u8; 4096],
    /// The log file's path, NUL-terminated, for the process's lifetime.
    log_path: [u8; 4096],
    /// The warnings' text, kept for the process's first TCP socket.
    warnings: LineBuf<2048>,
    /// The config file is read whole into this.
    file: [u8; MAX_CONFIG_FILE_BYTES],
}
static SCRATCH: ClaimOnce<Scratch> = ClaimOnce::new(Scratch {
    path: [0; 4096],
    log_path: [0; 4096],
    warnings: LineBuf::new(),
    file: [0; MAX_CONFIG_FILE_BYTES],
});
/// At most this many diagnostics are kept for the warning text.
const MAX_DIAGNOSTICS: usize = 16;

/// Reads the configuration (once: this runs in the constructor) and arms
/// the hooks.
pub fn load(
    env: impl Iterator<Item = (&'static [u8], &'static [u8])>,
    arg0: Option<&'static [u8]>,
    secure: bool,
) {
    let mut diagnostics: [Option<Diagnostic<'_>>; MAX_DIAGNOSTICS] = [None; MAX_DIAGNOSTICS];
    let mut count = 0usize;
    let mut report = |d| {
        if let Some(slot) = diagnostics.get_mut(count) {
            *slot = Some(d);
        }
        count = count.saturating_add(1);
    };
    let mut outside = Outside::default();
    let env = EnvView::collect(
        env.inspect(|&(name, value)| outside.see(name, value)),
        &mut report,
    );

    let (path, explicit) = env.config_path(secure);
    // Loaded twice (it cannot be, but): the first load counts.
    let Some(scratch) = SCRATCH.claim() else {
        return;
    };
    let Scratch {
        path: path_buf,
        log_path,
        warnings,
        file: file_buf,
    } = scratch;
    // What the read means is config's policy, shared with `check`.
    let read = sys::read_file(path, path_buf, file_buf).map_err(|errno| match errno {
        libc::ENOENT => ReadError::NotFound,
        libc::EFBIG => ReadError::TooLarge,
        libc::EINVAL => ReadError::NotRegular, // read_file's answer for a non-regular file
        errno => ReadError::Os(errno),
    });
    let file = match file_verdict(path, explicit, read) {
        FileVerdict::Use(contents) => Some(FileView::parse(path, contents, &mut report)),
        FileVerdict::Absent => None,
        FileVerdict::Ignored(problem) => {
            report(problem);
            None
        }
    };
    let config = resolve(&env, file.as_ref(), secure, &mut report);
    let log_file = config
        .log_file
        .and_then(|p| sys::nul_terminated(p, log_path));
    log::init(config.log_level, log_file, outside.journal);
    // Most processes have nothing to say: the text is only built if they do.
    if count > 0 {
        for d in diagnostics.iter().flatten() {
            d.write(&config, warnings);
            warnings.put(b"\n");
        }
        if count > MAX_DIAGNOSTICS {
            warnings.put(b"more configuration problems; see keepalive-shim check\n");
        }
        log::keep_warnings(warnings.as_bytes());
    }

    // The config path's buffer is free again: it holds the executable's path.
    if config.enabled && program_allowed(&config, arg0, path_buf) {
        plan::set(Plan::new(&config));
        shim::inherited(outside.inherited_fds());
    }
}

/// What the constructor reads from variables that are not ours.
#[derive(Default)]
struct Outside {
    /// `JOURNAL_STREAM=DEV:INODE`: systemd connected fd 2 to the journal.
    journal: Option<(u64, u64)>,
    /// `LISTEN_FDS=N` (sockets passed from fd 3 on) and `LISTEN_PID`, the
    /// process they are meant for (sd_listen_fds(3)).
    listen_fds: Option<u64>,
    listen_pid: Option<u64>,
}

impl Outside {
    fn see(&mut self, name: &[u8], value: &[u8]) {
        match name {
            b"JOURNAL_STREAM" => {
                let mut parts = value.splitn(2, |&b| b == b':');
                if let (Some(dev), Some(ino)) = (parts.next(), parts.next()) {
                    self.journal = decimal(dev).zip(decimal(ino));
                }
            }
            b"LISTEN_FDS" => self.listen_fds = decimal(value),
            b"LISTEN_PID" => self.listen_pid = decimal(value),
            _ => {}
        }
    }

    /// The descriptors a parent may have handed over already connected:
    /// stdin/stdout/stderr (inetd, systemd `Accept=yes`) and the
    /// `LISTEN_FDS` range when it is meant for this process.
    fn inherited_fds(&self) -> core::ops::Range<c_int> {
        let pid = u64::try_from(sys::getpid()).ok();
        let n = match (self.listen_fds, self.listen_pid) {
            (Some(n), None) => n,
            (Some(n), Some(p)) if Some(p) == pid => n,
            _ => 0,
        };
        // Bounded: a bogus LISTEN_FDS must not make the constructor slow.
        let n = c_int::try_from(n.min(1024)).unwrap_or(0);
        0..n.saturating_add(3)
    }
}

fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let digit = char::from(b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// `KEEPALIVE_SHIM_PROGRAMS` against the basenames of `/proc/self/exe` and
/// `argv[0]` (looked up only when the list is set: every exec pays for it).
fn program_allowed(config: &Config<'_>, arg0: Option<&[u8]>, exe_buf: &mut [u8]) -> bool {
    if !config.programs.is_set() {
        return true;
    }
    let exe = sys::executable_name(exe_buf).unwrap_or(&[]);
    let arg0 = arg0.unwrap_or(&[]);
    config.program_allowed(&[exe, arg0])
}
