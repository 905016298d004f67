//! `cargo sim dump` as a user runs it: byte for byte the text of the real
//! `zstreamdump` on every real ZFS stream, in both byte orders, and a clear
//! one-line error for every kind of damage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;

use common::{fixture, fixtures_dir};
use engine::stream::ByteOrder;
use engine::stream::writer::reencode;

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".zsend").map(str::to_string)
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 20);
    names
}

/// Runs a program with `stdin` fed on standard input and collects its output.
fn run(program: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        // A reader may stop early on damaged input: ignore a closed pipe.
        let _ = input.write_all(&data);
    });
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    output
}

/// `sim dump ARGS` with `stdin` on standard input.
fn sim_dump(args: &[&str], stdin: &[u8]) -> Output {
    let args: Vec<&str> = std::iter::once("dump")
        .chain(args.iter().copied())
        .collect();
    run(Path::new(env!("CARGO_BIN_EXE_sim")), &args, stdin)
}

/// The real zstreamdump, when zfs-fuse is installed. CI installs it, so there
/// a missing binary is a failure; elsewhere the comparison is skipped loudly.
fn real_zstreamdump() -> Option<PathBuf> {
    let found = [
        "/usr/sbin/zstreamdump",
        "/sbin/zstreamdump",
        "/usr/bin/zstreamdump",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "zstreamdump (zfs-fuse) must be installed in CI: .ci/run installs it"
        );
        eprintln!(
            "!!! zstreamdump not found: skipping the comparison with the real one (apt-get install zfs-fuse)"
        );
    }
    found
}

#[test]
fn verbose_dump_is_the_real_zstreamdump_text_of_every_fixture() {
    for name in fixture_names() {
        let path = fixtures_dir().join(format!("{name}.zsend"));
        let out = Command::new(env!("CARGO_BIN_EXE_sim"))
            .args(["dump", "-v"])
            .arg(&path)
            .output()
            .unwrap();
        let want = std::fs::read(fixtures_dir().join(format!("{name}.zstreamdump.txt"))).unwrap();
        assert!(
            out.stdout == want,
            "{name}: dump -v differs from zstreamdump -v\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{name}");
        assert!(out.stderr.is_empty(), "{name}");
    }
}

#[test]
fn dump_reads_standard_input_when_no_file_is_named() {
    let stream = fixture("dedup_full_D");
    let want = std::fs::read(fixtures_dir().join("dedup_full_D.zstreamdump.txt")).unwrap();
    for args in [&["-v"][..], &["-v", "-"][..]] {
        let out = sim_dump(args, &stream);
        assert!(out.status.success());
        assert!(out.stdout == want, "{args:?}");
    }
}

#[test]
fn every_mode_matches_the_real_zstreamdump_in_both_byte_orders() {
    let Some(real) = real_zstreamdump() else {
        return;
    };
    for name in fixture_names() {
        let native = fixture(&name);
        let big = reencode(&native[..], Vec::new(), ByteOrder::Big).unwrap();
        for (order, stream) in [("native", &native), ("big-endian", &big)] {
            for args in [&[][..], &["-v"][..], &["-C"][..], &["-v", "-C"][..]] {
                let ours = sim_dump(args, stream);
                let theirs = run(&real, args, stream);
                assert!(
                    ours.stdout == theirs.stdout,
                    "{name} ({order}) {args:?}: differs from zstreamdump"
                );
                assert!(ours.status.success(), "{name} ({order}) {args:?}");
            }
        }
    }
}

#[test]
fn a_big_endian_stream_dumps_the_same_records() {
    for name in ["small_full", "dedup_i_D", "chain_c1_c4_I", "replication_R"] {
        let native = fixture(name);
        let big = reencode(&native[..], Vec::new(), ByteOrder::Big).unwrap();
        let (a, b) = (sim_dump(&["-v"], &native), sim_dump(&["-v"], &big));
        assert!(a.status.success() && b.status.success(), "{name}");
        let (a, b) = (
            String::from_utf8(a.stdout).unwrap(),
            String::from_utf8(b.stdout).unwrap(),
        );
        // Everything but the END checksums, which each host computes its way.
        let strip = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.starts_with("END checksum"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(strip(&a), strip(&b), "{name}");
        assert!(a.matches("END checksum").count() >= 1);
    }
}

/// The one-line error a damaged stream gets, and what was printed before it.
fn refused(stream: &[u8], args: &[&str]) -> (String, String) {
    let out = sim_dump(args, stream);
    assert_eq!(out.status.code(), Some(1), "a damaged stream exits 1");
    let stderr = String::from_utf8(out.stderr).unwrap();
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

#[test]
fn a_truncated_stream_is_listed_up_to_the_cut_then_refused() {
    let stream = fixture("small_full");
    let (stdout, stderr) = refused(&stream[..100_000], &["-v"]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("dump: EINVAL: record "), "{stderr}");
    assert!(stderr.contains("at byte offset"), "{stderr}");
    assert!(stderr.contains("stream ends inside"), "{stderr}");
    assert!(stdout.starts_with("BEGIN record\n"));
    assert!(stdout.contains("OBJECT object = 31 type = 19"));
    assert!(stdout.contains("SUMMARY:\n"));
}

#[test]
fn bad_magic_is_refused() {
    let mut stream = fixture("empty_full");
    stream[9] ^= 1;
    let (stdout, stderr) = refused(&stream, &[]);
    assert_eq!(
        stderr,
        "dump: EINVAL: record 0 at byte offset 0: invalid stream (bad magic number)\n"
    );
    assert!(stdout.starts_with("SUMMARY:\n"));
}

#[test]
fn an_unknown_record_type_is_refused() {
    let mut stream = fixture("empty_full");
    stream[312] = 42;
    let (_, stderr) = refused(&stream, &["-v"]);
    assert_eq!(
        stderr,
        "dump: EINVAL: record 1 at byte offset 312: unknown record type 0x2a\n"
    );
}

#[test]
fn a_payload_beyond_any_legal_block_is_refused() {
    let mut stream = fixture("small_full");
    // The first WRITE record: set its drr_length (union offset 24) to 2^40.
    let text = std::fs::read_to_string(fixtures_dir().join("small_full.records.jsonl")).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"type\":\"WRITE\""))
        .unwrap();
    let off: usize = line["{\"off\":".len()..line.find(',').unwrap()]
        .parse()
        .unwrap();
    stream[off + 8 + 24..off + 8 + 32].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let (_, stderr) = refused(&stream, &["-v"]);
    assert!(
        stderr.contains(&format!(
            "(WRITE) at byte offset {off}: payload length 1099511627776 exceeds"
        )),
        "{stderr}"
    );
}

#[test]
fn a_flipped_byte_shows_the_expected_checksum_and_is_refused() {
    let mut stream = fixture("small_full");
    stream[200_000] ^= 0x80;
    let (stdout, stderr) = refused(&stream, &[]);
    assert!(
        stdout.contains("Expected checksum differs from checksum in stream.\nExpected checksum = ")
    );
    assert!(
        stderr.starts_with("dump: ECKSUM: record 124 (END) at byte offset"),
        "{stderr}"
    );

    // -C does not look, so it finds nothing wrong.
    let out = sim_dump(&["-C"], &stream);
    assert!(out.status.success());
    assert!(
        !String::from_utf8(out.stdout)
            .unwrap()
            .contains("Expected checksum")
    );
}

#[test]
fn garbage_after_end_is_refused() {
    let mut stream = fixture("empty_full");
    let len = stream.len();
    stream.extend_from_slice(&[0x5a; 100]);
    let (stdout, stderr) = refused(&stream, &[]);
    assert_eq!(
        stderr,
        format!(
            "dump: EINVAL: record 19 at byte offset {len}: garbage after END record: 100 trailing bytes\n"
        )
    );
    assert!(stdout.contains("END checksum"));
}

#[test]
fn usage_errors_exit_2() {
    let out = sim_dump(&["--bogus"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = sim_dump(&["/nonexistent/stream"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot open /nonexistent/stream")
    );
}

#[test]
fn dumps_are_snapshotted() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for name in fixture_names() {
            let out = sim_dump(&[], &fixture(&name));
            insta::assert_snapshot!(
                format!("dump__{name}"),
                String::from_utf8(out.stdout).unwrap()
            );
        }
        for name in ["empty_full", "dedup_i_D", "chain_c1_c4_I", "replication_R"] {
            let out = sim_dump(&["-v"], &fixture(name));
            insta::assert_snapshot!(
                format!("dump_v__{name}"),
                String::from_utf8(out.stdout).unwrap()
            );
        }
    });
}

/// A replication stream zsim wrote (`send -R` of the tree received from
/// the `replication_R` fixture, in both byte orders) is listed the same by
/// `dump -v` and by the real `zstreamdump -v`.
#[test]
fn a_replication_stream_zsim_wrote_dumps_as_zstreamdump_dumps_it() {
    let Some(real) = real_zstreamdump() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("zsim-dump-r-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join("fxp.img");
    let image = image.to_str().unwrap();
    let sim = |args: &[&str], stdin: &[u8]| run(Path::new(env!("CARGO_BIN_EXE_sim")), args, stdin);
    assert!(
        sim(&["pool", "create", image, "--seed", "7"], &[])
            .status
            .success()
    );
    let received = sim(&["recv", image, "fxp/rep"], &fixture("replication_R"));
    assert!(
        received.status.success(),
        "{}",
        String::from_utf8_lossy(&received.stderr)
    );
    for order in ["native", "big"] {
        let sent = sim(
            &["send", image, "fxp/rep@r2", "-R", "--byte-order", order],
            &[],
        );
        assert!(
            sent.status.success(),
            "{}",
            String::from_utf8_lossy(&sent.stderr)
        );
        let ours = sim_dump(&["-v"], &sent.stdout);
        let theirs = run(&real, &["-v"], &sent.stdout);
        assert!(ours.status.success() && theirs.status.success(), "{order}");
        assert!(
            ours.stdout == theirs.stdout,
            "{order}: dump -v differs from zstreamdump -v"
        );
        let text = String::from_utf8(ours.stdout).unwrap();
        assert!(text.contains("name = fxp/rep/kid"), "{text}");
        assert!(
            text.contains("Total DRR_BEGIN records = 5"),
            "{order}: {text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
