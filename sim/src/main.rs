//! `sim`, zsim's command line. Run it as `cargo sim <command>`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sim::cmd;

/// zsim: a deterministic simulation test harness for the ZFS send/receive
/// engine.
#[derive(Debug, Parser)]
#[command(name = "cargo sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(cmd::run::RunArgs),
    Replay(cmd::replay::ReplayArgs),
    Shrink(cmd::replay::ShrinkArgs),
    Campaign(cmd::campaign::CampaignArgs),
    Report(cmd::report::ReportArgs),
    Coverage(cmd::coverage::CoverageArgs),
    Dump(cmd::dump::DumpArgs),
    Verify(cmd::verify::VerifyArgs),
    Pool(cmd::pool::PoolArgs),
    Create(cmd::props::CreateArgs),
    Set(cmd::props::SetArgs),
    Get(cmd::props::GetArgs),
    Send(cmd::send::SendArgs),
    Recv(cmd::recv::RecvArgs),
    Zdb(cmd::zdb::ZdbArgs),
    Scrub(cmd::scrub::ScrubArgs),
    Fuzz(cmd::fuzz::FuzzArgs),
    Corpus(cmd::corpus::CorpusArgs),
    Ls(cmd::ls::LsArgs),
    Zoo(cmd::zoo::ZooArgs),
}

/// Keeps glibc from handing a freed block buffer back to the kernel.
///
/// A send, a receive or a dump allocates and frees a buffer of up to a
/// block (128 KiB) per record. glibc's defaults serve such sizes by `mmap`
/// at first and then by trimming and growing the heap top, so every block
/// paid a page fault per 4 KiB page and two `brk` calls: half or more of a
/// 256 MiB send. Fixed thresholds (which also turn off glibc's own
/// adjusting) keep the freed buffers for the next block; the process keeps
/// at most `M_TRIM_THRESHOLD` bytes it does not use.
fn keep_freed_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
    }
}

fn main() -> ExitCode {
    // As every Unix tool: output into a pipe whose reader left (`| head`)
    // ends the process quietly. Rust ignores SIGPIPE, and `println!` then
    // panics on the EPIPE.
    #[cfg(unix)]
    // SAFETY: called before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    keep_freed_blocks();
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(args) => cmd::run::run(args),
        Command::Replay(args) => cmd::replay::replay(args),
        Command::Shrink(args) => cmd::replay::shrink(args),
        Command::Campaign(args) => cmd::campaign::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Coverage(args) => cmd::coverage::run(args),
        Command::Dump(args) => cmd::dump::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Pool(args) => cmd::pool::run(args),
        Command::Create(args) => cmd::props::create(args),
        Command::Set(args) => cmd::props::set(args),
        Command::Get(args) => cmd::props::get(args),
        Command::Send(args) => cmd::send::run(args),
        Command::Recv(args) => cmd::recv::run(args),
        Command::Zdb(args) => cmd::zdb::run(args),
        Command::Scrub(args) => cmd::scrub::run(args),
        Command::Fuzz(args) => cmd::fuzz::run(args),
        Command::Corpus(args) => cmd::corpus::run(args),
        Command::Ls(args) => cmd::ls::run(args),
        Command::Zoo(args) => cmd::zoo::run(args),
    }
}
