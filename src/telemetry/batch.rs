//! The log writer: lines go into a shared buffer that one background
//! thread writes out in batches, a few milliseconds' worth per write
//! syscall.
//!
//! Why not `tracing_appender::non_blocking`: it sends each line down a
//! channel to a worker that writes whenever the channel runs dry. At
//! tens of thousands of tokens a second that was a `write` syscall for
//! every second line and a `sched_yield` loop each time the worker looked
//! for more: about 1 µs of CPU per token (BENCHMARKS.md, issue 18).
//! Here a line costs a copy under a mutex, and the writer is woken once per
//! batch, not once per line.
//!
//! Nothing is dropped: when [`MAX_PENDING`] bytes wait, a logging thread
//! waits for the writer (as the appender did with `lossy(false)`; the
//! per-token audit line is worth back-pressure rather than loss). Dropping
//! the [`FlushGuard`] writes what is left and stops the thread.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer lets lines gather after the first one of a batch:
/// at rest a line reaches the output at most this late.
const GATHER: Duration = Duration::from_millis(5);

/// Bytes that may wait before logging threads wait for the writer.
const MAX_PENDING: usize = 4 << 20;

/// The logging side: `tracing_subscriber::fmt().with_writer(writer)`.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Keep it alive until exit: dropping it writes out every pending line.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// The writer waits here for a first line, or for the end.
    work: Condvar,
    /// Logging threads wait here while [`MAX_PENDING`] bytes wait.
    room: Condvar,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    /// The writer is waiting on `work` and must be woken for a line.
    idle: bool,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves whole lines behind.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Starts the writer thread over `out`.
pub fn batch_writer<W: Write + Send + 'static>(
    out: W,
) -> std::io::Result<(BatchWriter, FlushGuard)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        work: Condvar::new(),
        room: Condvar::new(),
    });
    let writer_side = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("ficha-log".into())
        .spawn(move || run(&writer_side, out))?;
    Ok((
        BatchWriter {
            shared: Arc::clone(&shared),
        },
        FlushGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

/// The writer thread: waits for a line, lets a batch gather, writes it.
fn run<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::new();
    loop {
        let mut state = shared.lock();
        while state.pending.is_empty() && !state.closed {
            state.idle = true;
            state = shared
                .work
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.idle = false;
        if state.pending.is_empty() && state.closed {
            return;
        }
        if !state.closed {
            drop(state);
            std::thread::sleep(GATHER);
            state = shared.lock();
        }
        std::mem::swap(&mut state.pending, &mut batch);
        drop(state);
        shared.room.notify_all();
        // A log that cannot be written has nowhere to report it.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
    }
}

impl BatchWriter {
    /// Queues one whole line (or several): they reach the output together,
    /// never interleaved with another thread's.
    pub fn write_line(&self, line: &[u8]) {
        let mut state = self.shared.lock();
        while state.pending.len() >= MAX_PENDING && !state.closed {
            state = self
                .shared
                .room
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.pending.extend_from_slice(line);
        if state.idle {
            state.idle = false;
            drop(state);
            self.shared.work.notify_one();
        }
    }
}

impl Write for &BatchWriter {
    /// Takes one whole line (tracing's fmt layer writes each event once).
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.write_line(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = &'a BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_one();
        self.shared.room.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_of_every_thread_arrives_whole_and_in_order() {
        let sink = Sink::default();
        let (writer, guard) = batch_writer(sink.clone()).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let writer = writer.clone();
                s.spawn(move || {
                    for n in 0..5_000 {
                        let line = format!("thread {t} line {n}\n");
                        (&mut writer.make_writer())
                            .write_all(line.as_bytes())
                            .unwrap();
                    }
                });
            }
        });
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let mut next = [0; 4];
        for line in text.lines() {
            let (t, n) = line
                .strip_prefix("thread ")
                .and_then(|l| l.split_once(" line "))
                .unwrap_or_else(|| panic!("a torn line: {line:?}"));
            let t: usize = t.parse().unwrap();
            assert_eq!(
                n.parse::<usize>().unwrap(),
                next[t],
                "thread {t} out of order"
            );
            next[t] += 1;
        }
        assert_eq!(next, [5_000; 4]);
    }

    #[test]
    fn a_lone_line_at_rest_is_written_without_a_flush_or_more_lines() {
        let sink = Sink::default();
        let (writer, _guard) = batch_writer(sink.clone()).unwrap();
        (&mut writer.make_writer()).write_all(b"one\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sink.0.lock().unwrap().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was never written"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(&*sink.0.lock().unwrap(), b"one\n");
    }

    #[test]
    fn a_full_buffer_holds_writers_back_rather_than_dropping_lines() {
        /// An output slow enough that the pending bytes reach the cap.
        #[derive(Clone, Default)]
        struct Slow(Sink);
        impl Write for Slow {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_millis(20));
                self.0.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let slow = Slow::default();
        let (writer, guard) = batch_writer(slow.clone()).unwrap();
        let line = vec![b'x'; 64 << 10];
        let lines = 3 * MAX_PENDING / line.len();
        for _ in 0..lines {
            (&mut writer.make_writer()).write_all(&line).unwrap();
            assert!(writer.shared.lock().pending.len() <= MAX_PENDING + line.len());
        }
        drop(guard);
        assert_eq!(slow.0 .0.lock().unwrap().len(), lines * line.len());
    }
}
