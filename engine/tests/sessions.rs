//! Send and receive a record at a time: a record feed given bytes in pieces
//! of any size reads exactly what the pulling reader reads (errors and their
//! offsets included), a receive session fed byte by byte receives what
//! `Pool::receive` does, a send session's steps write the bytes `Pool::send`
//! writes, and the snapshot a send holds cannot be destroyed meanwhile.

mod common;

use common::*;
use engine::Errno;
use engine::recv::{RecvOptions, RecvSession};
use engine::send::{NoInterrupt, SendOptions};
use engine::stream::reader::{Next, RecordFeed};
use engine::stream::{StreamError, StreamReader};

/// What a reader saw: (index, offset, type, payload) per record, then the
/// error or the clean end.
type Seen = (Vec<(u64, u64, String, Vec<u8>)>, Option<StreamError>);

fn pulled(stream: &[u8]) -> Seen {
    let mut reader = StreamReader::new(stream);
    let mut seen = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(e)) => seen.push((
                e.index,
                e.offset,
                e.record.drr_type().to_string(),
                e.payload.to_vec(),
            )),
            Ok(None) => return (seen, None),
            Err(e) => return (seen, Some(e)),
        }
    }
}

fn fed(stream: &[u8], piece: usize) -> Seen {
    let mut feed = RecordFeed::new();
    let mut seen = Vec::new();
    let mut at = 0;
    loop {
        match feed.next_record() {
            Ok(Next::Record(e)) => seen.push((
                e.index,
                e.offset,
                e.record.drr_type().to_string(),
                e.payload.to_vec(),
            )),
            Ok(Next::End) => return (seen, None),
            Ok(Next::NeedMore) if at == stream.len() => feed.push_eof(),
            Ok(Next::NeedMore) => {
                let end = (at + piece).min(stream.len());
                feed.push(&stream[at..end]);
                at = end;
            }
            Err(e) => return (seen, Some(e)),
        }
    }
}

#[test]
fn a_feed_in_pieces_reads_what_the_reader_reads_even_cut_or_damaged() {
    let stream = fixture_stream("small_full");
    let mut cases = vec![stream.clone()];
    for cut in [0, 1, 311, 312, 313, 700, stream.len() / 2, stream.len() - 1] {
        cases.push(stream[..cut].to_vec());
    }
    let mut flipped = stream.clone();
    flipped[stream.len() / 3] ^= 0x10;
    cases.push(flipped);
    let mut garbage = stream.clone();
    garbage.extend_from_slice(&[7; 20]);
    cases.push(garbage);
    for case in &cases {
        let want = pulled(case);
        for piece in [1, 7, 312, 4096, 1 << 20] {
            assert_eq!(
                fed(case, piece),
                want,
                "{} bytes in pieces of {piece}",
                case.len()
            );
        }
    }
}

#[test]
fn a_session_fed_byte_by_byte_receives_what_receive_does() {
    for name in ["small_full", "sparse_full", "xattr_full"] {
        let stream = fixture_stream(name);
        let mut whole = plan::new_pool();
        let by_receive = whole
            .receive(
                "fxp/whole",
                &stream[..],
                &RecvOptions::default(),
                &mut NoInterrupt,
            )
            .unwrap();
        let mut pool = plan::new_pool();
        let mut session = RecvSession::new("fxp/whole", &RecvOptions::default());
        let mut feed = RecordFeed::new();
        let mut bytes = stream.iter();
        let received = loop {
            match feed.next_record().unwrap() {
                Next::Record(e) => session.record(&mut pool, &e, &mut NoInterrupt).unwrap(),
                Next::NeedMore => match bytes.next() {
                    Some(b) => feed.push(&[*b]),
                    None => feed.push_eof(),
                },
                Next::End => {
                    assert!(!session.is_closed(), "{name}: open until its end");
                    break session.end(&mut pool).unwrap();
                }
            }
        };
        assert_eq!(received.len(), by_receive.len());
        // The session says what it received, and that it is over.
        assert_eq!(session.received(), &received[..], "{name}");
        assert!(session.is_closed(), "{name}");
        let mut a = Vec::new();
        let mut b = Vec::new();
        let opts = SendOptions::default();
        whole
            .send(
                &format!("fxp/whole@{}", snap_of(&whole)),
                None,
                &mut a,
                &opts,
                None,
                &mut NoInterrupt,
            )
            .unwrap();
        pool.send(
            &format!("fxp/whole@{}", snap_of(&pool)),
            None,
            &mut b,
            &opts,
            None,
            &mut NoInterrupt,
        )
        .unwrap();
        assert!(a == b, "{name}: the two receives hold the same snapshot");
    }
}

fn snap_of(pool: &engine::spa::Pool) -> String {
    pool.list()
        .iter()
        .find_map(|d| d.name.strip_prefix("fxp/whole@").map(str::to_string))
        .expect("a received snapshot")
}

#[test]
fn an_aborted_session_leaves_nothing_and_what_sessions_hold_cannot_be_destroyed() {
    let stream = fixture_stream("small_full");
    let mut pool = plan::new_pool();
    pool.receive(
        "fxp/src",
        &stream[..],
        &RecvOptions::default(),
        &mut NoInterrupt,
    )
    .unwrap();
    let before = pool.list().len();
    let snap = pool
        .list()
        .iter()
        .find(|d| d.name.starts_with("fxp/src@"))
        .map(|d| d.name.clone())
        .unwrap();

    // A send by steps writes what a whole send writes, and holds its snapshot.
    let mut whole = Vec::new();
    let opts = SendOptions::default();
    pool.send(&snap, None, &mut whole, &opts, None, &mut NoInterrupt)
        .unwrap();
    let id = pool.lookup(&snap).unwrap();
    let mut interrupt = NoInterrupt;
    let mut session = pool
        .send_begin(id, None, Vec::new(), &opts, None, &mut interrupt)
        .unwrap();
    let mut steps = 0;
    while session.step(&mut pool).unwrap() {
        steps += 1;
        if steps == 2 {
            let e = pool.destroy(&snap).unwrap_err();
            assert_eq!(e.errno(), Errno::EBUSY, "{e}");
        }
    }
    let summary = session.end(&mut pool);
    assert!(steps > 2);
    assert_eq!(summary.bytes, whole.len() as u64);
    assert!(*session.out_mut() == whole, "the same bytes");
    assert!(!pool.long_held(id, None), "released at the end");

    // A receive aborted half-way leaves the pool as it was.
    let mut session = RecvSession::new("fxp/copy", &RecvOptions::default());
    let mut feed = RecordFeed::new();
    feed.push(&stream[..stream.len() / 2]);
    while let Next::Record(e) = feed.next_record().unwrap() {
        session.record(&mut pool, &e, &mut NoInterrupt).unwrap();
    }
    assert!(session.in_flight().is_some());
    // The new filesystem is the receive's: `dsl_destroy_head_check_impl`
    // refuses anyone else while it holds it.
    let e = pool.destroy("fxp/copy").unwrap_err();
    assert_eq!(e.errno(), Errno::EBUSY, "{e}");
    let e = session.abort(&mut pool, engine::Error::new(Errno::EINTR, "signal"));
    assert_eq!(e.errno(), Errno::EINTR);
    assert_eq!(pool.list().len(), before, "the %recv dataset is gone");
    assert!(engine::check::check(&mut pool).unwrap().is_clean());
}

/// A receive whose pool is imported again while it is in flight (the
/// import destroys its inconsistent new filesystem) is over: its next
/// record is EIO, and the imported pool is not touched.
#[test]
fn a_receive_whose_pool_was_imported_again_ends_with_eio() {
    use engine::context::{ManualClock, SplitMix64};
    use engine::spa::Pool;
    use engine::vdev::{MemDevice, SharedDevice};

    let stream = fixture_stream("small_full");
    let dev = SharedDevice::new(MemDevice::new(256 << 20, 512));
    let mut pool = Pool::create(
        Box::new(dev.clone()),
        "fxp",
        Box::new(ManualClock::new(1_800_000_000)),
        Box::new(SplitMix64::new(2)),
    )
    .unwrap();
    let mut session = RecvSession::new("fxp/copy", &RecvOptions::default());
    let mut feed = RecordFeed::new();
    feed.push(&stream[..stream.len() / 2]);
    while let Next::Record(e) = feed.next_record().unwrap() {
        session.record(&mut pool, &e, &mut NoInterrupt).unwrap();
    }
    assert!(session.in_flight().is_some());
    pool.txg_sync().unwrap();
    let mut again = Pool::import(
        Box::new(dev.clone()),
        Box::new(ManualClock::new(1_800_000_100)),
        Box::new(SplitMix64::new(3)),
    )
    .unwrap();
    assert!(again.lookup("fxp/copy").is_err(), "import destroyed it");
    let before: Vec<String> = again.list().into_iter().map(|i| i.name).collect();
    feed.push(&stream[stream.len() / 2..]);
    feed.push_eof();
    let Next::Record(e) = feed.next_record().unwrap() else {
        panic!("a record");
    };
    let err = session
        .record(&mut again, &e, &mut NoInterrupt)
        .unwrap_err();
    assert_eq!(err.errno(), Errno::EIO, "{err}");
    assert!(err.to_string().contains("imported again"), "{err}");
    assert!(session.is_closed());
    let after: Vec<String> = again.list().into_iter().map(|i| i.name).collect();
    assert_eq!(after, before);
    assert!(engine::check::check(&mut again).unwrap().is_clean());
}

/// Feeds `stream` into a receive of `target` in `pool`, calling `between`
/// once half of it is in; returns how the receive ended.
fn receive_with_a_pause(
    pool: &mut engine::spa::Pool,
    target: &str,
    stream: &[u8],
    force: bool,
    between: impl FnOnce(&mut engine::spa::Pool),
) -> engine::Result<Vec<u64>> {
    let options = RecvOptions {
        force,
        ..RecvOptions::default()
    };
    let mut session = RecvSession::new(target, &options);
    let mut feed = RecordFeed::new();
    let half = stream.len() / 2;
    feed.push(&stream[..half]);
    let mut between = Some(between);
    let mut pushed_all = false;
    loop {
        match feed.next_record()? {
            Next::Record(e) => session.record(pool, &e, &mut NoInterrupt)?,
            Next::NeedMore if !pushed_all => {
                if let Some(f) = between.take() {
                    f(pool);
                }
                feed.push(&stream[half..]);
                feed.push_eof();
                pushed_all = true;
            }
            Next::NeedMore => unreachable!("the whole stream was pushed"),
            Next::End => return session.end(pool),
        }
    }
}

/// A change to an incremental receive's target while it is in flight:
/// the receive ends ETXTBSY and the change stays, unless -F, which
/// discards it; a snapshot of the target taken meanwhile is EINVAL even
/// with -F (the receive no longer branches from its target). A full
/// receive's snapshot is consistent.
#[test]
fn an_incremental_receive_whose_target_changed_meanwhile_is_refused_unless_forced() {
    use common::plan::new_pool;
    let base = fixture_stream("chain_c1_full");
    let incr = fixture_stream("chain_c1_c2_i");
    let setup = || {
        let mut pool = new_pool();
        let ids = pool
            .receive(
                "fxp/chain",
                &base[..],
                &RecvOptions::default(),
                &mut NoInterrupt,
            )
            .unwrap();
        let flags = pool.info(ids[0]).flags;
        assert_eq!(
            flags & engine::dsl::DS_FLAG_INCONSISTENT,
            0,
            "the snapshot is consistent"
        );
        pool
    };
    let change = |pool: &mut engine::spa::Pool| {
        let fs = pool.lookup("fxp/chain").unwrap();
        let mut dmu = pool.dmu(fs).unwrap();
        let o = dmu.object_alloc(19, 512, 0, 0).unwrap();
        dmu.write(o, 0, &[7; 512]).unwrap();
        drop(dmu);
        pool.txg_sync().unwrap();
    };
    let mut pool = setup();
    let err = receive_with_a_pause(&mut pool, "fxp/chain", &incr, false, change).unwrap_err();
    assert_eq!(err.errno(), Errno::ETXTBSY, "{err}");
    assert!(pool.lookup("fxp/chain@c2").is_err());

    let mut pool = setup();
    receive_with_a_pause(&mut pool, "fxp/chain", &incr, true, change).unwrap();
    assert!(pool.lookup("fxp/chain@c2").is_ok());

    let mut pool = setup();
    let err = receive_with_a_pause(&mut pool, "fxp/chain", &incr, true, |pool| {
        pool.snapshot("fxp/chain@mid").unwrap();
    })
    .unwrap_err();
    assert_eq!(err.errno(), Errno::EINVAL, "{err}");
    assert!(pool.lookup("fxp/chain@c2").is_err());
}

/// The snapshots a compound receive has made are in its guid map, held
/// (the seed's `add_ds_to_guidmap` long-holds each) until the session
/// ends: a later substream's WRITE_BYREF may read them, so destroying one
/// meanwhile is EBUSY, and afterwards it is allowed.
#[test]
fn a_compound_receive_holds_the_snapshots_it_made_until_it_ends() {
    let mut pool = plan::new_pool();
    let full = fixture_stream("chain_c1_full");
    pool.receive(
        "fxp/chain",
        &full[..],
        &RecvOptions::default(),
        &mut NoInterrupt,
    )
    .unwrap();
    let stream = fixture_stream("chain_c1_c4_I");
    let mut session = RecvSession::new("fxp/chain", &RecvOptions::default());
    let mut feed = RecordFeed::new();
    feed.push(&stream);
    feed.push_eof();
    let mut refused = 0;
    loop {
        match feed.next_record().unwrap() {
            Next::Record(e) => session.record(&mut pool, &e, &mut NoInterrupt).unwrap(),
            Next::End => break,
            Next::NeedMore => unreachable!("all of it was pushed"),
        }
        if session.in_flight().is_some()
            && let Some(&first) = session.received().first()
        {
            let name = pool.dataset_name(first);
            let e = pool.destroy(&name).unwrap_err();
            assert_eq!(e.errno(), Errno::EBUSY, "{name}: {e}");
            refused += 1;
        }
    }
    let received = session.end(&mut pool).unwrap();
    assert_eq!(received.len(), 3);
    assert!(refused > 0, "a destroy was tried during the session");
    for ds in received {
        assert!(!pool.long_held(ds, None), "released at the end");
    }
    let name = pool
        .list()
        .into_iter()
        .map(|i| i.name)
        .find(|n| n.starts_with("fxp/chain@"))
        .unwrap();
    pool.destroy(&name).unwrap();
}
