//! A real ZFS for tests and benchmarks: this harness starts its own
//! zfs-fuse daemon, gives it a pool on a file, runs `zpool`/`zfs` commands
//! against it, and takes everything down again.
//!
//! Included by integration tests (`mod common;`, then
//! `common::zfs_fuse::ZfsFuse`) and by `benches/zfs_fuse.rs` (`#[path =
//! "../tests/common/zfs_fuse.rs"] mod zfs_fuse;`), so it uses only std and
//! libc.
//!
//! # What it does
//!
//! [`ZfsFuse::start`]`("POOL")`:
//!
//! 1. finds the binaries (`zfs-fuse`, `zpool`, `zfs`, `zstreamdump`) in the
//!    sbin directories or `PATH`. If zfs-fuse is not installed it prints
//!    `!!! zfs-fuse not installed: skipping ...` and returns `None`, unless
//!    the environment variable `CI` is set: then it panics, because CI must
//!    run these comparisons (`.ci/run` installs zfs-fuse);
//! 2. takes an exclusive `flock` on [`LOCK_FILE`] (waiting for it, and
//!    saying so). zfs-fuse is one daemon per machine: it serves every `zpool`
//!    and `zfs` command through the one socket `/var/run/zfs/zfs_socket`, and
//!    a second daemon exits at once (status 1, message only to syslog)
//!    because the first holds `/var/lock/zfs/zfs_lock`. Tests run in parallel
//!    threads and test binaries may run side by side, so whoever holds the
//!    lock owns the daemon; everybody else waits;
//! 3. stops a daemon a previous harness started and could not stop (its
//!    process was killed): its PID and scratch directory are in
//!    [`PID_FILE`]; it is stopped only if that PID still runs `zfs-fuse`,
//!    and the directory is removed. A zfs-fuse this harness did not
//!    start (a system service, another user's daemon) is never touched: its
//!    lock would make ours exit and our commands would go to it, so the
//!    harness waits for it to stop (`ZSIM_ZFS_FUSE_WAIT_SECS`, default 300
//!    s), then panics saying so;
//! 4. starts `zfs-fuse --no-daemon --no-kstat-mount` (plus the options
//!    given to [`ZfsFuse::start_with`], e.g. `-x` for extended attributes)
//!    as its own child (so it knows the PID and can wait for it;
//!    `--no-daemon` keeps it from forking away, `--no-kstat-mount` keeps it
//!    from mounting `/zfs-kstat`), output to `daemon.log` in a fresh
//!    directory `/tmp/zsim-zfs-fuse-<pid>-<n>`, and waits until `zpool
//!    list` answers (about 0.2 s here). The daemon reads `/etc/zfs/zfsrc`
//!    (ARC limit 100 MB in Debian's);
//! 5. creates a sparse 256 MiB file vdev there and `zpool create -f -o
//!    cachefile=none -O mountpoint=none POOL FILE`: with no cache file no
//!    later daemon ever tries to import the pool again, and with no
//!    mountpoint nothing is mounted unless a test asks ([`ZfsFuse::mount`]).
//!    `zfs send`/`zfs recv` do not need mounts.
//!
//! Dropping the [`ZfsFuse`] (also while a failed test unwinds) runs `zpool
//! destroy -f POOL` (which unmounts what is mounted), sends SIGTERM to the
//! daemon by the PID it started, waits for it (zfs-fuse takes about 3.5 s to
//! exit; after 30 s it is killed), unmounts anything still mounted under the
//! directory, deletes the directory (kept after a panic, for its log) and
//! releases the lock. The daemon is stopped by PID, never by name (`pkill
//! zfs-fuse`): a name would also hit a zfs-fuse someone else runs on the
//! machine, and its pools with it.
//!
//! # What works on this machine (Debian zfs-fuse 0.7.0-25+b1)
//!
//! `/dev/fuse` exists; the daemon runs as root, pools on files work, `zfs
//! send`/`zfs recv` work without mounts, and filesystems can be mounted
//! through FUSE ([`ZfsFuse::mount`]). Every command here runs with a 300 s
//! time limit, after which the command (not the daemon) is killed and the
//! call panics.
//!
//! zfs-fuse lets go of a dataset some time after its FUSE mount is gone:
//! `zfs destroy` of a clone unmounted a moment ago may fail with "dataset
//! is busy", and an unmount may be refused while the kernel still holds the
//! mount. [`ZfsFuse::destroy`] and [`ZfsFuse::unmount`] therefore try again
//! ([`BUSY_ATTEMPTS`] times, [`BUSY_PAUSE`] apart) and then panic naming
//! what still held the dataset (mounts, processes with files open there).
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Held (`flock`, exclusive) by whoever owns the one zfs-fuse daemon.
pub const LOCK_FILE: &str = "/tmp/zsim-zfs-fuse.lock";
/// The PID of the daemon the lock holder started, for recovering from a
/// harness that was killed before it could stop its daemon.
pub const PID_FILE: &str = "/tmp/zsim-zfs-fuse.pid";
/// Size of the pool's file vdev (sparse).
pub const VDEV_BYTES: u64 = 256 << 20;

/// How many times a destroy or unmount refused as busy is tried, and the
/// pause between tries: about 10 s in all, far more than zfs-fuse takes to
/// release an unmounted dataset, short enough to fail fast on a real leak.
pub const BUSY_ATTEMPTS: u32 = 50;
pub const BUSY_PAUSE: Duration = Duration::from_millis(200);

const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The zfs-fuse programs.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub zfs_fuse: PathBuf,
    pub zpool: PathBuf,
    pub zfs: PathBuf,
    pub zstreamdump: PathBuf,
}

/// `name` in the usual sbin directories, then in `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

impl Binaries {
    /// All four programs, or `None` if any is missing.
    pub fn find() -> Option<Binaries> {
        Some(Binaries {
            zfs_fuse: find_program("zfs-fuse")?,
            zpool: find_program("zpool")?,
            zfs: find_program("zfs")?,
            zstreamdump: find_program("zstreamdump")?,
        })
    }
}

/// What the current test is called (test threads carry the test's name).
fn caller() -> String {
    std::thread::current()
        .name()
        .unwrap_or("this comparison")
        .to_string()
}

/// zfs-fuse is not installed: a loud skip, or a panic in CI.
fn not_installed(what: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "zfs-fuse is not installed ({what} missing), and CI must run {}: .ci/run installs it",
        caller()
    );
    eprintln!(
        "!!! zfs-fuse not installed ({what} missing): skipping {} (apt-get install zfs-fuse)",
        caller()
    );
}

/// The binaries, or `None` after a loud skip (a panic in CI).
pub fn binaries() -> Option<Binaries> {
    let found = Binaries::find();
    if found.is_none() {
        not_installed("zfs-fuse, zpool, zfs or zstreamdump");
    }
    found
}

/// The real `zstreamdump`, or `None` after a loud skip (a panic in CI).
pub fn zstreamdump() -> Option<PathBuf> {
    binaries().map(|b| b.zstreamdump)
}

/// Where a command's standard input comes from.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    Null,
    Bytes(&'a [u8]),
    File(&'a Path),
}

/// Where a command's standard output goes.
#[derive(Clone, Copy, Debug)]
pub enum Output<'a> {
    Capture,
    File(&'a Path),
}

/// A finished command.
#[derive(Debug)]
pub struct Run {
    pub command: String,
    pub status: ExitStatus,
    /// Empty when the output went to a file.
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// Wall time from spawning the command to its exit.
    pub elapsed: Duration,
}

impl Run {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics, with the command and its standard error, unless it succeeded.
    pub fn expect_success(self) -> Run {
        assert!(
            self.success(),
            "`{}` failed ({}): {}",
            self.command,
            self.status,
            self.stderr.trim_end()
        );
        self
    }
}

fn spawn_error(program: &Path, e: std::io::Error) -> ! {
    panic!("cannot run {}: {e}", program.display())
}

/// Runs `program args`, feeding `input` and sending its output to `output`,
/// with a time limit (the command is killed and the call panics after 300 s).
/// A command that cannot be started panics.
pub fn run(program: &Path, args: &[&str], input: Input<'_>, output: Output<'_>) -> Run {
    let command = format!("{} {}", program.display(), args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args).stderr(Stdio::piped());
    match input {
        Input::Null => cmd.stdin(Stdio::null()),
        Input::Bytes(_) => cmd.stdin(Stdio::piped()),
        Input::File(path) => cmd.stdin(
            File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display())),
        ),
    };
    match output {
        Output::Capture => cmd.stdout(Stdio::piped()),
        Output::File(path) => cmd.stdout(
            File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display())),
        ),
    };
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| spawn_error(program, e));
    std::thread::scope(|scope| {
        if let (Input::Bytes(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
            // A command may stop reading early (it refused the stream).
            scope.spawn(move || {
                let _ = stdin.write_all(bytes);
            });
        }
        let stdout = child.stdout.take().map(|mut out| {
            scope.spawn(move || {
                let mut buf = Vec::new();
                let _ = out.read_to_end(&mut buf);
                buf
            })
        });
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr = scope.spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr_pipe.read_to_end(&mut buf);
            buf
        });
        let status = wait_with_limit(&mut child, COMMAND_TIMEOUT)
            .unwrap_or_else(|| panic!("`{command}` ran over {COMMAND_TIMEOUT:?}: killed it"));
        let elapsed = started.elapsed();
        let stdout = stdout.map_or_else(Vec::new, |h| h.join().unwrap_or_default());
        let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
        Run {
            command,
            status,
            stdout,
            stderr,
            elapsed,
        }
    })
}

/// Waits for a child of ours; kills it (SIGKILL, by its PID, through the
/// `Child`) and returns `None` if it has not exited within `limit`. Polls
/// every 100 µs, so a measured wall time is off by at most that.
fn wait_with_limit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(100));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Whether process `pid` exists and is not a zombie.
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "PID (comm) STATE ...": the state follows the last ')'.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X') | None
        ),
        Err(_) => false,
    }
}

fn is_zfs_fuse(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("zfs-fuse"))
        .unwrap_or(false)
}

fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) has no memory effects; `pid` is a positive PID.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Stops the daemon an earlier, killed harness left running (PID_FILE
/// holds its PID and scratch directory, and the PID still runs zfs-fuse),
/// and removes that directory. Called with the lock held.
fn stop_leftover_daemon() {
    let Ok(text) = std::fs::read_to_string(PID_FILE) else {
        return;
    };
    let _ = std::fs::remove_file(PID_FILE);
    let mut lines = text.lines();
    let pid = lines.next().and_then(|l| l.trim().parse::<u32>().ok());
    let dir = lines.next().map(PathBuf::from).filter(|d| {
        d.starts_with(std::env::temp_dir()) && d.to_string_lossy().contains("zsim-zfs-fuse-")
    });
    if let Some(pid) = pid.filter(|&p| p != 0 && process_alive(p) && is_zfs_fuse(p)) {
        eprintln!("zfs-fuse harness: stopping zfs-fuse pid {pid}, left running by an earlier run");
        signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while process_alive(pid) {
            if Instant::now() > deadline {
                signal(pid, libc::SIGKILL);
                std::thread::sleep(Duration::from_millis(200));
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if let Some(dir) = dir.filter(|d| d.exists()) {
        unmount_under(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Lazily unmounts what is still mounted under `dir` (a FUSE mount whose
/// daemon is gone).
fn unmount_under(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    for line in mounts.lines() {
        let Some(target) = line.split(' ').nth(1) else {
            continue;
        };
        if target == prefix || target.starts_with(&format!("{prefix}/")) {
            eprintln!("zfs-fuse harness: unmounting leftover {target}");
            let _ = Command::new("umount").args(["-l", target]).status();
        }
    }
}

/// Whether zfs refused because the dataset or its mount is in use
/// ("dataset is busy", "Device or resource busy", "target is busy").
pub fn is_busy(stderr: &str) -> bool {
    stderr.to_ascii_lowercase().contains("busy")
}

/// The lines of /proc/self/mounts mounted at `path` or below it.
fn mounted_at(path: &Path) -> Vec<String> {
    let prefix = path.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter(|line| {
            line.split(' ')
                .nth(1)
                .is_some_and(|target| target == prefix || target.starts_with(&format!("{prefix}/")))
        })
        .map(str::to_string)
        .collect()
}

/// What may hold `dataset`: its mounts (by source name, or at `mountpoint`)
/// and the processes with a file, directory or working directory under
/// `mountpoint`. Said as a sentence for a panic message.
pub fn holders(dataset: &str, mountpoint: &Path) -> String {
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter(|line| {
            line.split(' ').next().is_some_and(|source| {
                source == dataset
                    || source.starts_with(&format!("{dataset}/"))
                    || source.starts_with(&format!("{dataset}@"))
            })
        })
        .map(str::to_string)
        .chain(mounted_at(mountpoint))
        .collect();
    let mut users = Vec::new();
    let pids = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    for pid in pids.filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()) {
        let links = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .chain([PathBuf::from(format!("/proc/{pid}/cwd"))]);
        let open: Vec<String> = links
            .filter_map(|l| std::fs::read_link(l).ok())
            .filter(|target| target.starts_with(mountpoint))
            .map(|target| target.display().to_string())
            .collect();
        if !open.is_empty() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            users.push(format!("pid {pid} ({}): {}", comm.trim(), open.join(", ")));
        }
    }
    let mut said = Vec::new();
    if !mounts.is_empty() {
        said.push(format!("still mounted: {}", mounts.join("; ")));
    }
    if !users.is_empty() {
        said.push(format!(
            "processes using {}: {}",
            mountpoint.display(),
            users.join("; ")
        ));
    }
    if said.is_empty() {
        format!(
            "no mount of it and no process with files under {} (zfs-fuse itself, or a \
             clone, snapshot or hold depending on it: see `zfs list -t all -o name,origin` \
             and `zfs holds`)",
            mountpoint.display()
        )
    } else {
        said.join("; ")
    }
}

/// Takes the machine-wide harness lock, waiting for it if need be.
fn take_lock() -> File {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_FILE)
        .unwrap_or_else(|e| panic!("cannot open {LOCK_FILE}: {e}"));
    if file.try_lock().is_err() {
        eprintln!("zfs-fuse harness: waiting for {LOCK_FILE} (another test owns the daemon)");
        file.lock()
            .unwrap_or_else(|e| panic!("cannot lock {LOCK_FILE}: {e}"));
    }
    file
}

/// How long to wait for a zfs-fuse someone else runs to go away:
/// `ZSIM_ZFS_FUSE_WAIT_SECS`, default 300.
fn foreign_wait() -> Duration {
    let secs = std::env::var("ZSIM_ZFS_FUSE_WAIT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// Whether a zfs-fuse daemon answers on its socket. Asked with the lock held
/// while ours is not running (not yet, or it exited at start): a daemon that
/// answers is not ours.
fn foreign_daemon_answers(bins: &Binaries) -> bool {
    Path::new("/var/run/zfs/zfs_socket").exists()
        && run(&bins.zpool, &["list", "-H"], Input::Null, Output::Capture).success()
}

/// Waits (until `deadline`, then says why not) while a zfs-fuse this harness did
/// not start is running: our commands would go to it, and our own daemon
/// could not start. It is never stopped from here.
fn wait_for_foreign_daemon(bins: &Binaries, deadline: Instant) -> Result<(), String> {
    let mut said = false;
    while foreign_daemon_answers(bins) {
        if Instant::now() >= deadline {
            return Err(format!(
                "a zfs-fuse daemon not started by this harness is running (see `pgrep -a \
                 zfs-fuse`) and did not stop within {:?}: stop it (e.g. `service zfs-fuse \
                 stop`) to run {}",
                foreign_wait(),
                caller()
            ));
        }
        if !said {
            eprintln!(
                "zfs-fuse harness: a zfs-fuse daemon not started by this harness is running: \
                 waiting up to {:?} for it to stop (ZSIM_ZFS_FUSE_WAIT_SECS)",
                foreign_wait()
            );
            said = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// `zfs-fuse --no-daemon --no-kstat-mount [EXTRA]`, a child of ours, output
/// to `log`.
fn spawn_daemon(bins: &Binaries, log: &Path, extra: &[&str]) -> Child {
    let log = File::create(log).expect("daemon log");
    Command::new(&bins.zfs_fuse)
        .args(["--no-daemon", "--no-kstat-mount"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("daemon log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| spawn_error(&bins.zfs_fuse, e))
}

/// Waits until our daemon answers `zpool list`. If it exits first, or does
/// not answer in time (then it is killed), says why.
fn wait_ready(daemon: &mut Child, bins: &Binaries, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = daemon.try_wait() {
            return Err(format!(
                "zfs-fuse exited at start ({status}); another zfs-fuse holding \
                 /var/lock/zfs/zfs_lock makes it exit 1, and it says why only to syslog. \
                 Its output: {:?}",
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        if run(&bins.zpool, &["list", "-H"], Input::Null, Output::Capture).success() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = daemon.kill();
            let _ = daemon.wait();
            return Err(format!(
                "zfs-fuse did not answer within {START_TIMEOUT:?}; its output: {:?}",
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running zfs-fuse daemon started by this harness, with one pool on a
/// file. See the module documentation.
#[derive(Debug)]
pub struct ZfsFuse {
    bins: Binaries,
    pool: String,
    dir: PathBuf,
    vdev: PathBuf,
    daemon: Option<Child>,
    pool_created: bool,
    _lock: File,
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

impl ZfsFuse {
    /// Starts the daemon and creates pool `pool` (mountpoint=none). `None`
    /// after a loud message when zfs-fuse is not installed (a panic in CI);
    /// panics when it is installed but cannot be started.
    pub fn start(pool: &str) -> Option<ZfsFuse> {
        ZfsFuse::start_with(pool, &[])
    }

    /// [`ZfsFuse::start`], with more options for the daemon, e.g. `-x`
    /// (`--enable-xattr`: extended attributes through the FUSE mounts).
    pub fn start_with(pool: &str, daemon_options: &[&str]) -> Option<ZfsFuse> {
        ZfsFuse::start_impl(pool, daemon_options, VDEV_BYTES)
    }

    /// [`ZfsFuse::start`] with a (sparse) file vdev of `vdev_bytes`, for a
    /// pool that must hold more than the default 256 MiB.
    pub fn start_sized(pool: &str, vdev_bytes: u64) -> Option<ZfsFuse> {
        ZfsFuse::start_impl(pool, &[], vdev_bytes)
    }

    fn start_impl(pool: &str, daemon_options: &[&str], vdev_bytes: u64) -> Option<ZfsFuse> {
        let bins = binaries()?;
        let lock = take_lock();
        stop_leftover_daemon();
        let dir = std::env::temp_dir().join(format!(
            "zsim-zfs-fuse-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let log = dir.join("daemon.log");
        let deadline = Instant::now() + foreign_wait();
        let daemon = loop {
            if let Err(e) = wait_for_foreign_daemon(&bins, deadline) {
                let _ = std::fs::remove_dir_all(&dir);
                panic!("{e}");
            }
            let mut daemon = spawn_daemon(&bins, &log, daemon_options);
            let _ = std::fs::write(PID_FILE, format!("{}\n{}\n", daemon.id(), dir.display()));
            match wait_ready(&mut daemon, &bins, &log) {
                Ok(()) => break daemon,
                // Someone else's daemon started in between: wait for it.
                Err(e) if foreign_daemon_answers(&bins) && Instant::now() < deadline => {
                    eprintln!("zfs-fuse harness: {e}");
                }
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    panic!("{e}");
                }
            }
        };
        let vdev = dir.join("vdev");
        let mut zfs = ZfsFuse {
            bins,
            pool: pool.to_string(),
            dir,
            vdev,
            daemon: Some(daemon),
            pool_created: false,
            _lock: lock,
        };
        let vdev_file = File::create(&zfs.vdev).expect("vdev file");
        vdev_file.set_len(vdev_bytes).expect("sparse vdev");
        drop(vdev_file);
        let vdev = zfs.vdev.to_str().expect("a UTF-8 temp path").to_string();
        zfs.zpool(&[
            "create",
            "-f",
            "-o",
            "cachefile=none",
            "-O",
            "mountpoint=none",
            pool,
            &vdev,
        ])
        .expect_success();
        zfs.pool_created = true;
        Some(zfs)
    }

    /// The pool's name.
    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// The harness's scratch directory (vdev, log, mountpoints); a test may
    /// put its own files there.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pool's file vdev.
    pub fn vdev(&self) -> &Path {
        &self.vdev
    }

    /// The daemon's PID.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Child::id)
    }

    pub fn binaries(&self) -> &Binaries {
        &self.bins
    }

    /// What the daemon printed.
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// `zpool ARGS`, output captured.
    pub fn zpool(&self, args: &[&str]) -> Run {
        run(&self.bins.zpool, args, Input::Null, Output::Capture)
    }

    /// `zfs ARGS`, output captured.
    pub fn zfs(&self, args: &[&str]) -> Run {
        run(&self.bins.zfs, args, Input::Null, Output::Capture)
    }

    /// `zfs ARGS`, its standard output; panics if it fails.
    pub fn zfs_ok(&self, args: &[&str]) -> String {
        self.zfs(args).expect_success().text()
    }

    /// `zfs recv [FLAGS] TARGET < stream`.
    pub fn recv(&self, target: &str, stream: &[u8], flags: &[&str]) -> Run {
        let args = [&["recv"], flags, &[target]].concat();
        run(&self.bins.zfs, &args, Input::Bytes(stream), Output::Capture)
    }

    /// `zfs recv [FLAGS] TARGET < FILE`, as a user runs it.
    pub fn recv_file(&self, target: &str, stream: &Path, flags: &[&str]) -> Run {
        let args = [&["recv"], flags, &[target]].concat();
        run(&self.bins.zfs, &args, Input::File(stream), Output::Capture)
    }

    /// `zfs send [FLAGS] SNAPSHOT`: the stream; panics if it fails.
    pub fn send(&self, snapshot: &str, flags: &[&str]) -> Vec<u8> {
        let args = [&["send"], flags, &[snapshot]].concat();
        run(&self.bins.zfs, &args, Input::Null, Output::Capture)
            .expect_success()
            .stdout
    }

    /// `zfs send [FLAGS] SNAPSHOT > FILE`, as a user runs it.
    pub fn send_to_file(&self, snapshot: &str, flags: &[&str], file: &Path) -> Run {
        let args = [&["send"], flags, &[snapshot]].concat();
        run(&self.bins.zfs, &args, Input::Null, Output::File(file))
    }

    /// The `guid` property of a dataset or snapshot (`zfs get -Hp`), `None`
    /// if it does not exist.
    pub fn guid(&self, name: &str) -> Option<u64> {
        let run = self.zfs(&["get", "-Hp", "-o", "value", "guid", name]);
        if !run.success() {
            return None;
        }
        Some(
            run.text()
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("zfs get guid {name}: not a number: {:?}", run.text())),
        )
    }

    /// Every snapshot in the pool (`zfs list -H -t snapshot -o name -r`).
    pub fn snapshots(&self) -> Vec<String> {
        self.zfs_ok(&[
            "list", "-H", "-t", "snapshot", "-o", "name", "-r", &self.pool,
        ])
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// Whether a dataset or snapshot exists.
    pub fn exists(&self, name: &str) -> bool {
        self.zfs(&["list", "-H", "-t", "all", "-o", "name", name])
            .success()
    }

    /// `zfs destroy -r NAME`; panics if it fails (after waiting out a busy
    /// dataset, as [`ZfsFuse::destroy`]).
    pub fn destroy_recursive(&self, name: &str) {
        self.destroy(name, &["-r"]);
    }

    /// `zfs destroy [FLAGS] NAME`, tried again while zfs says the dataset
    /// is busy (zfs-fuse releases an unmounted dataset lazily); panics if it
    /// fails for another reason, or is still busy after [`BUSY_ATTEMPTS`]
    /// tries, naming what held it.
    pub fn destroy(&self, name: &str, flags: &[&str]) {
        let args = [&["destroy"], flags, &[name]].concat();
        self.zfs_while_busy(&args, name, &self.mountpoint_of(name));
    }

    /// `zfs ARGS` until it succeeds or fails for a reason other than a busy
    /// dataset; panics when it fails, saying what held `dataset` if busy.
    fn zfs_while_busy(&self, args: &[&str], dataset: &str, mountpoint: &Path) -> Run {
        let mut attempt = 1;
        loop {
            let run = self.zfs(args);
            if run.success() {
                if attempt > 1 {
                    eprintln!(
                        "zfs-fuse harness: `{}` succeeded at try {attempt} (busy before)",
                        run.command
                    );
                }
                return run;
            }
            if !is_busy(&run.stderr) {
                return run.expect_success();
            }
            if attempt == BUSY_ATTEMPTS {
                panic!(
                    "`{}` still failed after {BUSY_ATTEMPTS} tries {BUSY_PAUSE:?} apart: {}\n\
                     what held {dataset}: {}",
                    run.command,
                    run.stderr.trim_end(),
                    holders(dataset, mountpoint)
                );
            }
            attempt += 1;
            std::thread::sleep(BUSY_PAUSE);
        }
    }

    /// Where [`ZfsFuse::mount`] mounts `fs` (a snapshot's or child's
    /// dataset name maps to its own path; only an exact mount matters).
    fn mountpoint_of(&self, fs: &str) -> PathBuf {
        self.dir.join("mnt").join(fs.replace('/', "_"))
    }

    /// Mounts filesystem `fs` through FUSE under the scratch directory (by
    /// setting its mountpoint) and returns the mountpoint. zfs-fuse 0.7.0
    /// has no `.zfs` directory (ENOENT): to read a snapshot, `zfs clone` it
    /// and mount the clone. Dropping the harness unmounts it.
    pub fn mount(&self, fs: &str) -> Result<PathBuf, String> {
        let path = self.mountpoint_of(fs);
        std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        let property = format!("mountpoint={}", path.display());
        let set = self.zfs(&["set", &property, fs]);
        if !set.success() {
            return Err(set.stderr);
        }
        // Setting the mountpoint mounts a filesystem that can be mounted.
        let mounted = self.zfs_ok(&["get", "-H", "-o", "value", "mounted", fs]);
        if mounted.trim() != "yes" {
            let mount = self.zfs(&["mount", fs]);
            if !mount.success() {
                return Err(mount.stderr);
            }
        }
        Ok(path)
    }

    /// Unmounts `fs` and sets its mountpoint back to none, trying again
    /// while the mount is busy, then waits until the kernel no longer lists
    /// the mount; panics naming what held it if either does not happen
    /// within [`BUSY_ATTEMPTS`] tries.
    pub fn unmount(&self, fs: &str) {
        let path = self.mountpoint_of(fs);
        self.zfs_while_busy(&["set", "mountpoint=none", fs], fs, &path);
        for _ in 0..BUSY_ATTEMPTS {
            if mounted_at(&path).is_empty() {
                return;
            }
            std::thread::sleep(BUSY_PAUSE);
        }
        panic!(
            "{fs} was unmounted (mountpoint=none) but {} is still mounted after {:?}; \
             what held it: {}",
            path.display(),
            BUSY_PAUSE * BUSY_ATTEMPTS,
            holders(fs, &path)
        );
    }

    /// Destroys the pool and stops the daemon now (dropping does the same).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(mut daemon) = self.daemon.take() else {
            return;
        };
        let pid = daemon.id();
        if self.pool_created {
            let destroy = run(
                &self.bins.zpool,
                &["destroy", "-f", &self.pool],
                Input::Null,
                Output::Capture,
            );
            if !destroy.success() {
                eprintln!(
                    "zfs-fuse harness: zpool destroy {} failed: {}",
                    self.pool,
                    destroy.stderr.trim_end()
                );
            }
        }
        signal(pid, libc::SIGTERM);
        if wait_with_limit(&mut daemon, STOP_TIMEOUT).is_none() {
            eprintln!("zfs-fuse harness: zfs-fuse pid {pid} ignored SIGTERM: killed it");
        }
        if std::fs::read_to_string(PID_FILE)
            .is_ok_and(|t| t.lines().next() == Some(pid.to_string().as_str()))
        {
            let _ = std::fs::remove_file(PID_FILE);
        }
        unmount_under(&self.dir);
        if std::thread::panicking() {
            eprintln!(
                "zfs-fuse harness: kept {} (daemon.log, vdev) for the failed test",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for ZfsFuse {
    fn drop(&mut self) {
        self.shutdown();
    }
}
