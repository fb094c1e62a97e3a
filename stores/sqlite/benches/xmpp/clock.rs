//! The clock the rows are timed with: wall time, or with `OLMO_BENCH_CLOCK=cpu` the thread's
//! CPU time (`CLOCK_THREAD_CPUTIME_ID`), which other work on a loaded machine does not inflate
//! (the disk waits of SQLite FULL are then left out, so read its rows as CPU only).

use std::sync::OnceLock;
use std::time::Duration;

fn cpu() -> bool {
    static CPU: OnceLock<bool> = OnceLock::new();
    *CPU.get_or_init(|| std::env::var("OLMO_BENCH_CLOCK").as_deref() == Ok("cpu"))
}

fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// A point in time on the chosen clock.
#[derive(Clone, Copy)]
pub enum Instant {
    Wall(std::time::Instant),
    Cpu(Duration),
}

impl Instant {
    pub fn now() -> Self {
        window_opens();
        if cpu() {
            Instant::Cpu(thread_cpu_time())
        } else {
            Instant::Wall(std::time::Instant::now())
        }
    }

    pub fn elapsed(&self) -> Duration {
        window_closes();
        match self {
            Instant::Wall(start) => start.elapsed(),
            Instant::Cpu(start) => thread_cpu_time().saturating_sub(*start),
        }
    }
}

/// Marks for the profilers: callgrind (`xmpp/callgrind.sh`) dumps its counts before each, so
/// the instructions between an opening and a closing are the timed window's; perf samples only
/// inside the windows when `OLMO_BENCH_PERF_CTL` names its control FIFO (`perf record
/// --delay=-1 --control=fifo:<that path>`: enabled at each opening, disabled at each closing).
#[inline(never)]
fn window_opens() {
    perf_control(b"enable\n");
    std::hint::black_box(());
}

#[inline(never)]
fn window_closes() {
    std::hint::black_box(());
    perf_control(b"disable\n");
}

fn perf_control(command: &[u8]) {
    use std::io::Write;
    use std::sync::Mutex;
    static FIFO: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    let fifo = FIFO.get_or_init(|| {
        let path = std::env::var_os("OLMO_BENCH_PERF_CTL")?;
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        Some(Mutex::new(file))
    });
    if let Some(fifo) = fifo {
        fifo.lock().unwrap().write_all(command).unwrap();
    }
}
