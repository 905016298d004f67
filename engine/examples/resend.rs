//! Receives a fixture and re-sends it, printing the first differing record.
use engine::context::{ManualClock, SplitMix64};
use engine::recv::RecvOptions;
use engine::send::{NoInterrupt, SendOptions};
use engine::spa::Pool;
use engine::stream::StreamReader;
use engine::vdev::MemDevice;

fn main() {
    let name = std::env::args().nth(1).unwrap();
    let data = std::fs::read(format!("engine/tests/fixtures/zfs-fuse/{name}.zsend")).unwrap();
    let mut pool = Pool::create(
        Box::new(MemDevice::new(256 << 20, 512)),
        "fxp",
        Box::new(ManualClock::new(0)),
        Box::new(SplitMix64::new(1)),
    )
    .unwrap();
    let mut r = StreamReader::new(&data[..]);
    let b = r.next_record().unwrap().unwrap();
    let engine::stream::Record::Begin(b) = b.record else {
        panic!()
    };
    let toname = b.toname_lossy();
    let fs = toname.split('@').next().unwrap().to_string();
    pool.receive(&fs, &data[..], &RecvOptions::default(), &mut NoInterrupt)
        .unwrap();
    let mut out = Vec::new();
    pool.send(
        &toname,
        None,
        &mut out,
        &SendOptions::default(),
        None,
        &mut NoInterrupt,
    )
    .unwrap();
    println!("orig {} resent {}", data.len(), out.len());
    let mut a = StreamReader::new(&data[..]);
    let mut bb = StreamReader::new(&out[..]);
    let mut n = 0;
    loop {
        let x = a
            .next_record()
            .unwrap()
            .map(|e| (e.offset, e.record.clone(), e.payload.to_vec()));
        let y = bb
            .next_record()
            .unwrap()
            .map(|e| (e.offset, e.record.clone(), e.payload.to_vec()));
        match (x, y) {
            (None, None) => break,
            (Some(x), Some(y)) => {
                if x.1 != y.1 || x.2 != y.2 {
                    println!(
                        "record {n} differs:\n  orig {:?}\n  ours {:?} (payload same: {})",
                        x.1,
                        y.1,
                        x.2 == y.2
                    );
                    n += 1;
                    if n > 8 {
                        break;
                    }
                }
            }
            (x, y) => {
                println!(
                    "length differs: {:?} / {:?}",
                    x.map(|v| v.1),
                    y.map(|v| v.1)
                );
                break;
            }
        }
    }
    println!("identical: {}", data == out);
}
