//! Errno-valued errors that remember where they were made.
//!
//! ZFS reports failures as errno values, and the seed wraps every place that
//! creates one in `SET_ERROR()` so that a probe can see it fire. zsim does the
//! same: [`Error::new`] records the file and line of its caller and a short
//! reason, and a [`SiteLog`] collects every site hit on the current thread, in
//! order, so a run (or a campaign) can report which error paths it exercised.

use std::cell::RefCell;
use std::fmt;
use std::panic::Location;

/// The errno values the engine produces, numbered as on Linux (the platform of
/// the real ZFS zsim is checked against), so that numbers compare directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum Errno {
    EPERM = 1,
    ENOENT = 2,
    ESRCH = 3,
    EINTR = 4,
    EIO = 5,
    ENXIO = 6,
    E2BIG = 7,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    EXDEV = 18,
    ENODEV = 19,
    ENOTDIR = 20,
    EISDIR = 21,
    EINVAL = 22,
    ETXTBSY = 26,
    EFBIG = 27,
    ENOSPC = 28,
    EROFS = 30,
    EMLINK = 31,
    /// A write into a pipe whose reader is gone (`zfs send` into a dead
    /// `zfs receive`).
    EPIPE = 32,
    EDOM = 33,
    ERANGE = 34,
    ENAMETOOLONG = 36,
    ENOTEMPTY = 39,
    /// ZFS's ECKSUM is EBADE on Linux (and on illumos).
    ECKSUM = 52,
    EBADMSG = 74,
    EOVERFLOW = 75,
    ENOTSUP = 95,
    EDQUOT = 122,
}

impl Errno {
    /// The symbolic name, as a storage engineer would grep for it.
    pub fn name(self) -> &'static str {
        use Errno::*;
        match self {
            EPERM => "EPERM",
            ENOENT => "ENOENT",
            ESRCH => "ESRCH",
            EINTR => "EINTR",
            EIO => "EIO",
            ENXIO => "ENXIO",
            E2BIG => "E2BIG",
            EBADF => "EBADF",
            EAGAIN => "EAGAIN",
            ENOMEM => "ENOMEM",
            EACCES => "EACCES",
            EFAULT => "EFAULT",
            EBUSY => "EBUSY",
            EEXIST => "EEXIST",
            EXDEV => "EXDEV",
            ENODEV => "ENODEV",
            ENOTDIR => "ENOTDIR",
            EISDIR => "EISDIR",
            EINVAL => "EINVAL",
            ETXTBSY => "ETXTBSY",
            EFBIG => "EFBIG",
            ENOSPC => "ENOSPC",
            EROFS => "EROFS",
            EMLINK => "EMLINK",
            EPIPE => "EPIPE",
            EDOM => "EDOM",
            ERANGE => "ERANGE",
            ENAMETOOLONG => "ENAMETOOLONG",
            ENOTEMPTY => "ENOTEMPTY",
            ECKSUM => "ECKSUM",
            EBADMSG => "EBADMSG",
            EOVERFLOW => "EOVERFLOW",
            ENOTSUP => "ENOTSUP",
            EDQUOT => "EDQUOT",
        }
    }

    /// The numeric value (Linux numbering).
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an error was created: the Rust equivalent of the seed's `SET_ERROR`
/// probe firing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Site {
    pub file: &'static str,
    pub line: u32,
    pub errno: Errno,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}:{}", self.errno, self.file, self.line)
    }
}

/// A place in the engine's source that creates an error, as `build.rs`
/// finds it: what a [`Site`] records when it fires, its errno when the
/// source names one, and, for a site neither the simulation nor a fuzzer
/// can reach, why (its `// unreached:` comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SiteInfo {
    pub file: &'static str,
    pub line: u32,
    pub errno: Option<Errno>,
    pub unreached: Option<&'static str>,
}

/// Every error site of the engine outside its tests, by file and line: the
/// denominator of the error-site coverage a campaign reports.
pub const ALL_SITES: &[SiteInfo] = include!(concat!(env!("OUT_DIR"), "/error_sites.rs"));

/// An engine error: an errno, the site that set it, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    site: Site,
    reason: String,
}

impl Error {
    /// Creates an error and records its site, as `SET_ERROR` does.
    #[track_caller]
    pub fn new(errno: Errno, reason: impl Into<String>) -> Error {
        let location = Location::caller();
        let site = Site {
            file: location.file(),
            line: location.line(),
            errno,
        };
        record(site);
        Error {
            site,
            reason: reason.into(),
        }
    }

    pub fn errno(&self) -> Errno {
        self.site.errno
    }

    pub fn site(&self) -> Site {
        self.site
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Adds context in front of the reason, keeping the original site: the
    /// place that decided the errno is the one worth reporting.
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.reason = format!("{context}: {}", self.reason);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.site.errno, self.reason)
    }
}

impl std::error::Error for Error {}

/// Shorthand for `Err(Error::new(...))` that keeps the caller's site.
#[track_caller]
pub fn fail<T>(errno: Errno, reason: impl Into<String>) -> Result<T> {
    Err(Error::new(errno, reason))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

thread_local! {
    static SITES: RefCell<Option<Vec<Site>>> = const { RefCell::new(None) };
}

fn record(site: Site) {
    SITES.with(|sites| {
        if let Some(sites) = sites.borrow_mut().as_mut() {
            sites.push(site);
        }
    });
}

/// Collects every error site hit on this thread while it is alive.
///
/// The engine is single-threaded and deterministic, so the order of the sites
/// is part of a run's trace. Logs nest: an inner log sees its own sites, and
/// hands them on to the outer one when it finishes.
pub struct SiteLog {
    /// The enclosing log's sites, if there is one.
    outer: Option<Vec<Site>>,
    finished: bool,
}

impl SiteLog {
    pub fn start() -> SiteLog {
        let outer = SITES.with(|sites| sites.borrow_mut().replace(Vec::new()));
        SiteLog {
            outer,
            finished: false,
        }
    }

    /// Stops collecting and returns the sites hit, in order.
    pub fn finish(mut self) -> Vec<Site> {
        self.take()
    }

    fn take(&mut self) -> Vec<Site> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        let outer = self.outer.take();
        SITES.with(|sites| {
            let mut sites = sites.borrow_mut();
            let mine = sites.take().unwrap_or_default();
            if let Some(mut outer) = outer {
                outer.extend_from_slice(&mine);
                *sites = Some(outer);
            }
            mine
        })
    }
}

impl Drop for SiteLog {
    fn drop(&mut self) {
        self.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refuse(n: u64) -> Result<()> {
        if n > 3 {
            return fail(Errno::EINVAL, format!("{n} is too big"));
        }
        fail(Errno::ENOENT, "nothing there")
    }

    #[test]
    fn error_records_its_creation_site_and_reason() {
        let err = refuse(7).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL);
        assert!(err.site().file.ends_with("error.rs"));
        assert_eq!(err.reason(), "7 is too big");
        assert_eq!(err.to_string(), "EINVAL: 7 is too big");
        assert_eq!(Errno::ECKSUM.code(), 52);
    }

    #[test]
    fn site_log_collects_sites_in_order_and_nests() {
        let outer = SiteLog::start();
        let _ = refuse(1);
        let inner = SiteLog::start();
        let _ = refuse(9);
        let inner_sites = inner.finish();
        let _ = refuse(2);
        let outer_sites = outer.finish();

        assert_eq!(inner_sites.len(), 1);
        assert_eq!(inner_sites[0].errno, Errno::EINVAL);
        let errnos: Vec<Errno> = outer_sites.iter().map(|s| s.errno).collect();
        assert_eq!(errnos, [Errno::ENOENT, Errno::EINVAL, Errno::ENOENT]);
        // Two different lines of `refuse` were hit.
        assert_ne!(outer_sites[0].line, outer_sites[1].line);
    }

    #[test]
    fn errors_outside_a_log_are_not_collected() {
        let _ = refuse(1);
        let log = SiteLog::start();
        assert!(log.finish().is_empty());
    }

    #[test]
    fn context_keeps_the_original_site() {
        let err = refuse(1).unwrap_err();
        let site = err.site();
        let err = err.context("receiving fs@snap");
        assert_eq!(err.site(), site);
        assert_eq!(err.to_string(), "ENOENT: receiving fs@snap: nothing there");
    }
}
