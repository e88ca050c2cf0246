//! Measuring one path: TCP bulk throughput and request/response between two network
//! namespaces, pinned, and two sides in turns so that they can be divided run by run.

use super::*;

/// One end of a path: a network namespace and its address of each family.
#[derive(Clone)]
pub struct End {
    pub ns: String,
    pub v4: IpAddr,
    pub v6: IpAddr,
}

impl End {
    pub fn of_pod(p: &Pod) -> End {
        End {
            ns: p.ns.name.clone(),
            v4: p.v4,
            v6: p.v6,
        }
    }

    pub fn addr(&self, v6: bool) -> IpAddr {
        if v6 {
            self.v6
        } else {
            self.v4
        }
    }

    pub fn netns(&self) -> kernel::Netns {
        kernel::Netns::named(&self.ns).unwrap()
    }
}

pub fn listen(at: &End, v6: bool) -> TcpListener {
    let a = if v6 { "[::]:0" } else { "0.0.0.0:0" };
    at.netns().run(|| TcpListener::bind(a)).unwrap().unwrap()
}

pub fn connect(from: &End, to: SocketAddr) -> TcpStream {
    let s = from
        .netns()
        .run(|| TcpStream::connect_timeout(&to, Duration::from_secs(3)))
        .unwrap()
        .unwrap_or_else(|e| panic!("connect {to} from {}: {e}", from.ns));
    s.set_nodelay(true).unwrap();
    s
}

/// Pins the calling thread to `cpu` (modulo the CPUs there are) and returns its mask before, for
/// `unpin`. Senders on one CPU, receivers on another: on a 2-core machine a single stream's
/// figure otherwise depends on where the scheduler happens to put the two (and the softirq work
/// that follows the sender), and runs differ by half.
pub fn pin(cpu: usize) -> libc::cpu_set_t {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: cpu_set_t is plain data; the calls get valid pointers and its size.
    unsafe {
        let mut before: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut before);
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % n, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        before
    }
}

pub fn unpin(mask: libc::cpu_set_t) {
    // SAFETY: as in `pin`.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mask) };
}

/// Gbit/s of `streams` parallel TCP streams from `a` to `b` for `secs`.
pub fn bulk(a: &End, b: &End, v6: bool, streams: usize, secs: f64) -> f64 {
    let l = listen(b, v6);
    let to = SocketAddr::new(b.addr(v6), l.local_addr().unwrap().port());
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..streams {
        let c = connect(a, to);
        let (mut s, _) = l.accept().unwrap();
        readers.push(std::thread::spawn(move || {
            pin(1);
            let mut buf = vec![0u8; 1 << 17];
            let mut got = 0u64;
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got += n as u64;
            }
            got
        }));
        let stop = stop.clone();
        writers.push(std::thread::spawn(move || {
            pin(0);
            let mut c = c;
            let chunk = vec![7u8; 1 << 17];
            while !stop.load(Ordering::Relaxed) {
                if c.write_all(&chunk).is_err() {
                    break;
                }
            }
        }));
    }
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let took = start.elapsed().as_secs_f64();
    let got: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    got as f64 * 8.0 / took / 1e9
}

/// Request/response transactions per second (1 byte each way) for `secs`.
pub fn rr(a: &End, b: &End, v6: bool, secs: f64) -> f64 {
    let l = listen(b, v6);
    let to = SocketAddr::new(b.addr(v6), l.local_addr().unwrap().port());
    let mut c = connect(a, to);
    let (mut s, _) = l.accept().unwrap();
    s.set_nodelay(true).unwrap();
    let server = std::thread::spawn(move || {
        pin(1);
        let mut b = [0u8; 1];
        while let Ok(1) = s.read(&mut b) {
            if s.write_all(&b).is_err() {
                break;
            }
        }
    });
    let mut b = [1u8; 1];
    let mut n = 0u64;
    let mask = pin(0);
    let start = Instant::now();
    let end = Duration::from_secs_f64(secs);
    while start.elapsed() < end {
        c.write_all(&b).unwrap();
        c.read_exact(&mut b).unwrap();
        n += 1;
    }
    let took = start.elapsed().as_secs_f64();
    unpin(mask);
    drop(c);
    server.join().unwrap();
    n as f64 / took
}

/// Median and min–max of the runs.
#[derive(Clone, Copy, Default)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

pub fn stat(mut v: Vec<f64>) -> Stat {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stat {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

#[derive(Clone, Copy, Default)]
pub struct Figures {
    pub one: Stat,
    pub four: Stat,
    pub rr: Stat,
}

/// Every run of each figure, kept so that runs taken side by side can be divided.
#[derive(Clone, Default)]
pub struct Runs {
    pub one: Vec<f64>,
    pub four: Vec<f64>,
    pub rr: Vec<f64>,
}

impl Runs {
    pub fn figures(&self) -> Figures {
        Figures {
            one: stat(self.one.clone()),
            four: stat(self.four.clone()),
            rr: stat(self.rr.clone()),
        }
    }

    /// Run by run, self / other (each pair taken side by side): what differs between the two
    /// paths, without the drift of a noisy machine between one path's runs and the other's.
    pub fn ratio(&self, other: &Runs) -> Figures {
        let div = |a: &[f64], b: &[f64]| stat(a.iter().zip(b).map(|(x, y)| x / y).collect());
        Figures {
            one: div(&self.one, &other.one),
            four: div(&self.four, &other.four),
            rr: div(&self.rr, &other.rr),
        }
    }
}

/// One side of a comparison: the ends, and what to set before measuring it (a route, an
/// offload), so that two settings of one path can be compared run by run too.
pub struct Side<'a> {
    pub a: &'a End,
    pub b: &'a End,
    pub set: &'a dyn Fn(),
}

pub fn same() {}

/// Each figure of two sides, `reps` times, in turns (first then second, then second then first)
/// so that whatever else the machine does falls on both alike.
pub fn measure_turns(sides: [Side; 2], v6: bool, reps: usize, secs: f64) -> [Runs; 2] {
    for s in &sides {
        (s.set)();
        bulk(s.a, s.b, v6, 1, 0.2); // warm-up: neighbours, slow start
    }
    let mut out = [Runs::default(), Runs::default()];
    for i in 0..reps {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let s = &sides[k];
            (s.set)();
            out[k].one.push(bulk(s.a, s.b, v6, 1, secs));
        }
        for k in order {
            let s = &sides[k];
            (s.set)();
            out[k].four.push(bulk(s.a, s.b, v6, 4, secs));
        }
        for k in order {
            let s = &sides[k];
            (s.set)();
            out[k].rr.push(rr(s.a, s.b, v6, secs / 2.0));
        }
    }
    out
}

pub fn measure(a: &End, b: &End, v6: bool, reps: usize, secs: f64) -> Figures {
    let (mut one, mut four, mut r) = (Vec::new(), Vec::new(), Vec::new());
    // Warm-up: neighbour entries, the first TCP connection's slow start.
    bulk(a, b, v6, 1, 0.2);
    for _ in 0..reps {
        one.push(bulk(a, b, v6, 1, secs));
        four.push(bulk(a, b, v6, 4, secs));
        r.push(rr(a, b, v6, secs / 2.0));
    }
    Figures {
        one: stat(one),
        four: stat(four),
        rr: stat(r),
    }
}
