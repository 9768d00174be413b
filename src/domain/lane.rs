//! The feed's fast lane: streams of every event that have delivered all there is wait
//! here, and each new batch is written to all of them by a few walkers, one per worker
//! thread, each through its share of the lane's shards.
//!
//! A stream waiting on its own task costs, per event, a wake-up, a turn of the
//! scheduler, a look at the tail under its lock and the registration of its waits
//! again: at thousands of streams that, not the socket writes, is most of what a
//! change costs the server beyond the kernel. A stream parked here instead costs one
//! non-blocking write to its socket, made by a walker (`http::events::lane`), and the
//! stream's task sleeps on through it. Anything that is not the plain case (the
//! socket does not take the whole batch, the token has expired, the stream is not
//! exactly where the batch starts) is not decided here: the stream is handed back
//! to its task, woken, which takes from the tail at its own cursor as it always did.
//!
//! A parked stream's socket is written by the walkers only; once handed back (or
//! unparked by its task, for its timer or its slot) by its task only. The lock of the
//! stream's shard is the boundary: a write happens under it, and a stream is taken off
//! the lane under it.

use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio::net::TcpStream;

use super::reach::Progress;

/// Where a parked stream's bytes go: a write that never waits.
pub trait Outlet: Send + Sync {
    /// Writes what the socket takes now of `wire`; `WouldBlock` if nothing.
    fn offer(&self, wire: &[u8]) -> io::Result<usize>;
}

impl Outlet for TcpStream {
    fn offer(&self, wire: &[u8]) -> io::Result<usize> {
        self.try_write(wire)
    }
}

/// One stream's place on the lane, shared by its task and (while parked) the lane.
/// Once attached it holds the stream's socket (an idle stream costs its server this
/// one allocation more than a stream on its own task).
pub struct Seat<O = TcpStream> {
    /// Set by the connection once it writes the stream's response itself (a stream
    /// served by hyper has none and never parks).
    socket: OnceLock<O>,
    /// The stream's token expires then (Unix seconds, by the server's clock): the lane
    /// delivers nothing at or after it, so the task ends the stream as before.
    exp: i64,
    /// The stream's reach entry: what it delivered.
    progress: Progress,
    state: Mutex<SeatState>,
    /// The task, while it waits parked.
    waker: AtomicWaker,
}

#[derive(Default)]
struct SeatState {
    /// The id up to which the stream has delivered (or looked through) the log.
    cursor: i64,
    /// When the lane last wrote to the stream.
    sent: Option<tokio::time::Instant>,
    /// What the socket did not take of the lane's last write: the task writes it first.
    rest: Option<Box<[u8]>>,
    /// The seat's shard and slot on the lane while parked.
    slot: Option<(u8, u32)>,
    /// The lane handed the stream back: its task has something to do.
    released: bool,
}

/// What a stream finds when it leaves the lane (and, until its task takes it,
/// [`Seat::take_rest`]).
pub struct Unparked {
    /// Its cursor, moved on by what the lane delivered.
    pub cursor: i64,
    /// When the lane last wrote to it, if it did.
    pub sent: Option<tokio::time::Instant>,
}

impl<O: Outlet> Seat<O> {
    /// A seat for a stream whose token expires at `exp` (Unix seconds).
    pub fn new(exp: i64, progress: Progress) -> Arc<Self> {
        Arc::new(Self {
            socket: OnceLock::new(),
            exp,
            progress,
            state: Mutex::default(),
            waker: AtomicWaker::new(),
        })
    }

    /// The connection hands the stream's socket over: the stream may park, and the
    /// connection writes through [`Seat::socket`].
    pub fn attach(&self, socket: O) {
        let _ = self.socket.set(socket);
    }

    /// The stream's socket, once attached.
    pub fn socket(&self) -> Option<&O> {
        self.socket.get()
    }

    /// Whether the stream's bytes go straight to its connection (see [`Seat::attach`]).
    pub fn attached(&self) -> bool {
        self.socket.get().is_some()
    }

    /// The socket back, once nothing else holds the seat (the stream has ended).
    pub fn into_socket(self: Arc<Self>) -> Option<O> {
        Arc::into_inner(self)?.socket.into_inner()
    }

    /// What the lane's last write left unwritten, to be written before anything else.
    pub fn take_rest(&self) -> Option<Box<[u8]>> {
        self.state.lock().expect("seat").rest.take()
    }

    /// Whether the lane's last write left something unwritten.
    pub fn has_rest(&self) -> bool {
        self.state.lock().expect("seat").rest.is_some()
    }

    /// Ready once the lane handed the stream back.
    pub fn poll_released(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.waker.register(cx.waker());
        if self.state.lock().expect("seat").released {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Independent parts of the lane: parked streams are spread over them in turn, and
/// each part is walked by one walker, so that a batch is written on every worker
/// thread at once (see [`Lane::park`]).
pub const SHARDS: usize = 16;

/// The parked streams of one instance.
pub struct Lane<O = TcpStream> {
    shards: [Mutex<Seats<O>>; SHARDS],
    /// The shard the next stream parks in.
    next: AtomicUsize,
    /// Loops running (one per listener): without one a parked stream would wait
    /// forever, so none parks.
    running: AtomicUsize,
    /// Batches written whole to a parked stream, since start.
    writes: AtomicU64,
    /// Streams handed back to their task by a walk (not taken whole, expired, or
    /// elsewhere in the log), since start.
    handbacks: AtomicU64,
}

impl<O> Default for Lane<O> {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Seats::default())),
            next: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            writes: AtomicU64::new(0),
            handbacks: AtomicU64::new(0),
        }
    }
}

struct Seats<O> {
    /// Slots keep their index while the loop walks them a few at a time.
    slots: Vec<Option<Arc<Seat<O>>>>,
    free: Vec<usize>,
}

impl<O> Default for Seats<O> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

/// Marks a seat taken off the lane by the lane: its task has something to do.
fn hand_back(state: &mut SeatState) {
    state.slot = None;
    state.released = true;
}

/// What one walk did, for the loop's counters and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    /// Streams the batch was written to whole.
    pub written: usize,
    /// Streams handed back to their task.
    pub released: usize,
}

impl<O: Outlet> Lane<O> {
    /// A loop writes to the lane from now on: streams may park.
    pub fn start(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
    }

    /// A loop stopped; once none runs, every stream is handed back and none parks.
    pub fn stop(&self) {
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.release_all();
        }
    }

    /// Parks `seat`, whose stream has delivered everything up to `cursor`, if that is
    /// the tail's newest event (`last`, read under the shard's lock: a batch after it
    /// is read from the tail after the seat is in its slot, so walked with it). False
    /// if it may not park: the stream then waits on its task as before.
    pub fn park(&self, seat: &Arc<Seat<O>>, cursor: i64, last: impl FnOnce() -> i64) -> bool {
        if !seat.attached() || self.running.load(Ordering::Acquire) == 0 {
            return false;
        }
        let shard = self.next.fetch_add(1, Ordering::Relaxed) % SHARDS;
        self.park_in(shard, seat, cursor, last)
    }

    fn park_in(
        &self,
        shard: usize,
        seat: &Arc<Seat<O>>,
        cursor: i64,
        last: impl FnOnce() -> i64,
    ) -> bool {
        let mut seats = self.shards[shard].lock().expect("lane");
        if last() != cursor {
            return false;
        }
        let mut state = seat.state.lock().expect("seat");
        debug_assert!(state.slot.is_none(), "parked twice");
        *state = SeatState {
            cursor,
            ..SeatState::default()
        };
        let slot = match seats.free.pop() {
            Some(i) => {
                seats.slots[i] = Some(seat.clone());
                i
            }
            None => {
                seats.slots.push(Some(seat.clone()));
                seats.slots.len() - 1
            }
        };
        let slot = u32::try_from(slot).expect("fewer parked streams than open files");
        state.slot = Some((shard as u8, slot));
        true
    }

    /// Takes `seat` off the lane, if it is still there, and says where the lane left
    /// it. After this the lane no longer writes to the stream.
    pub fn unpark(&self, seat: &Seat<O>) -> Unparked {
        // Only the seat's own task parks it, and it is here: its shard cannot change
        // meanwhile, only its slot be emptied by a walk.
        let parked = seat.state.lock().expect("seat").slot;
        let _seats = parked.map(|(shard, _)| {
            let mut seats = self.shards[usize::from(shard)].lock().expect("lane");
            let mut state = seat.state.lock().expect("seat");
            if let Some((_, i)) = state.slot.take() {
                seats.slots[i as usize] = None;
                seats.free.push(i as usize);
            }
            seats
        });
        let mut state = seat.state.lock().expect("seat");
        state.released = false;
        Unparked {
            cursor: state.cursor,
            sent: state.sent.take(),
        }
    }

    /// How many slots `shard` has (parked or free): a walk goes through `0..slots()`.
    pub fn slots(&self, shard: usize) -> usize {
        self.shards[shard].lock().expect("lane").slots.len()
    }

    /// Writes `batch` (the events `(from, through]`, the last of them `last_id`) to the
    /// streams parked in slots `range` of `shard`, at `now` (and `wall`, by the server's
    /// clock).
    /// A stream exactly at `from` whose socket takes it all moves to `through`; one
    /// parked at or after `through` (after the batch was read) is left alone; any
    /// other is handed back to its task.
    pub fn deliver(
        &self,
        shard: usize,
        range: std::ops::Range<usize>,
        batch: &Batch,
        now: tokio::time::Instant,
        wall: Duration,
    ) -> Walked {
        let mut walked = Walked::default();
        let mut woken = Vec::new();
        {
            let mut seats = self.shards[shard].lock().expect("lane");
            let Seats { slots, free } = &mut *seats;
            for (i, slot) in slots
                .iter_mut()
                .enumerate()
                .take(range.end)
                .skip(range.start)
            {
                let Some(seat) = slot.as_ref() else {
                    continue;
                };
                let mut state = seat.state.lock().expect("seat");
                if state.cursor >= batch.through {
                    continue;
                }
                let socket = seat.socket().expect("a parked seat has its socket");
                let expired = i64::try_from(wall.as_secs()).unwrap_or(i64::MAX) >= seat.exp;
                let written = if state.cursor == batch.from && !expired {
                    socket.offer(&batch.wire).ok()
                } else {
                    None
                };
                match written {
                    Some(n) if n == batch.wire.len() => {
                        state.cursor = batch.through;
                        state.sent = Some(now);
                        seat.progress.delivered(batch.last_id);
                        walked.written += 1;
                        continue;
                    }
                    // Part of it: the task writes the rest before anything else.
                    Some(n) if n > 0 => {
                        state.cursor = batch.through;
                        state.sent = Some(now);
                        state.rest = Some(batch.wire[n..].into());
                        seat.progress.delivered(batch.last_id);
                    }
                    // Nothing written: the task takes the events at its own cursor.
                    _ => {}
                }
                hand_back(&mut state);
                drop(state);
                free.push(i);
                woken.extend(slot.take());
                walked.released += 1;
            }
        }
        for seat in woken {
            seat.waker.wake();
        }
        self.writes
            .fetch_add(walked.written as u64, Ordering::Relaxed);
        self.handbacks
            .fetch_add(walked.released as u64, Ordering::Relaxed);
        walked
    }

    /// Batches written whole to parked streams since start (see [`Lane::deliver`]).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Streams a walk handed back to their task since start.
    pub fn handbacks(&self) -> u64 {
        self.handbacks.load(Ordering::Relaxed)
    }

    /// Hands every parked stream back (the shutdown, a key event, a lane that fell
    /// behind the tail).
    pub fn release_all(&self) -> usize {
        let mut woken = Vec::new();
        for shard in &self.shards {
            let mut seats = shard.lock().expect("lane");
            let Seats { slots, free } = &mut *seats;
            for (i, slot) in slots.iter_mut().enumerate() {
                if let Some(seat) = slot.take() {
                    hand_back(&mut seat.state.lock().expect("seat"));
                    free.push(i);
                    woken.push(seat);
                }
            }
        }
        let n = woken.len();
        for seat in woken {
            seat.waker.wake();
        }
        n
    }

    /// Streams parked now.
    pub fn parked(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let seats = shard.lock().expect("lane");
                seats.slots.len() - seats.free.len()
            })
            .sum()
    }
}

/// A batch of new events as the lane writes it.
pub struct Batch {
    /// The events follow this id...
    pub from: i64,
    /// ...up to this one: a stream that takes them moves its cursor here.
    pub through: i64,
    /// The id of the last event in the batch (its reach).
    pub last_id: i64,
    /// The events as the stream's connection carries them.
    pub wire: bytes::Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reach::Reach;
    use bytes::Bytes;

    /// Takes at most `room` bytes per offer (`None`: fails), and keeps what it took.
    struct Socket {
        room: Option<usize>,
        got: Mutex<Vec<u8>>,
    }

    impl Socket {
        fn new(room: Option<usize>) -> Self {
            Self {
                room,
                got: Mutex::default(),
            }
        }
    }

    impl Outlet for Socket {
        fn offer(&self, wire: &[u8]) -> io::Result<usize> {
            let room = self.room.ok_or(io::ErrorKind::BrokenPipe)?;
            if room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = room.min(wire.len());
            self.got.lock().unwrap().extend_from_slice(&wire[..n]);
            Ok(n)
        }
    }

    type Lane = super::Lane<Socket>;
    type Seat = super::Seat<Socket>;

    fn got(seat: &Seat) -> Vec<u8> {
        seat.socket().unwrap().got.lock().unwrap().clone()
    }

    fn seat(
        reach: &Reach,
        exp: i64,
        outlet: Option<Socket>,
    ) -> (Arc<Seat>, crate::domain::reach::Reached) {
        let reached = reach.open("c".into(), None, 0, 10);
        let seat = Seat::new(exp, reached.progress());
        if let Some(o) = outlet {
            seat.attach(o);
        }
        (seat, reached)
    }

    fn running() -> Lane {
        let lane = Lane::default();
        lane.start();
        lane
    }

    const WIRE: &[u8] = b"0123456789";

    fn batch() -> Batch {
        Batch {
            from: 10,
            through: 12,
            last_id: 12,
            wire: Bytes::from_static(WIRE),
        }
    }

    /// Walks every shard, at 100 s by the server's clock.
    fn walk(lane: &Lane) -> Walked {
        let mut all = Walked::default();
        for shard in 0..SHARDS {
            let w = lane.deliver(
                shard,
                0..lane.slots(shard),
                &batch(),
                tokio::time::Instant::now(),
                Duration::from_secs(100),
            );
            all.written += w.written;
            all.released += w.released;
        }
        all
    }

    fn released(seat: &Seat) -> bool {
        seat.state.lock().unwrap().released
    }

    #[test]
    fn a_stream_parks_only_at_the_tails_newest_event_with_its_connection_attached() {
        let reach = Reach::default();
        let lane = running();
        let (bare, _r1) = seat(&reach, 200, None);
        assert!(!lane.park(&bare, 10, || 10), "no outlet: hyper serves it");
        let (s, _r2) = seat(&reach, 200, Some(Socket::new(Some(100))));
        assert!(!lane.park(&s, 9, || 10), "behind the tail");
        let stopped = Lane::default();
        assert!(!stopped.park(&s, 10, || 10), "no loop to write to it");
        assert!(lane.park(&s, 10, || 10));
        assert_eq!(lane.parked(), 1);
        let back = lane.unpark(&s);
        assert_eq!((back.cursor, back.sent.is_none()), (10, true));
        assert!(s.take_rest().is_none());
        assert_eq!(lane.parked(), 0);
    }

    #[test]
    fn a_whole_write_moves_the_stream_on_and_keeps_it_parked() {
        let reach = Reach::default();
        let lane = running();
        let (s, _r) = seat(&reach, 200, Some(Socket::new(Some(100))));
        assert!(lane.park(&s, 10, || 10));
        assert_eq!(
            walk(&lane),
            Walked {
                written: 1,
                released: 0
            }
        );
        assert_eq!(got(&s), WIRE);
        assert!(!released(&s));
        assert_eq!(reach.local()[0].last_event_id, 12);
        // Walked again (a seat parked after the batch was read): left alone.
        assert_eq!(walk(&lane), Walked::default());
        assert_eq!(got(&s).len(), WIRE.len());
        let back = lane.unpark(&s);
        assert_eq!(back.cursor, 12);
        assert!(back.sent.is_some() && !s.has_rest());
    }

    #[test]
    fn a_partial_write_hands_the_rest_to_the_task() {
        let reach = Reach::default();
        let lane = running();
        let (s, _r) = seat(&reach, 200, Some(Socket::new(Some(4))));
        assert!(lane.park(&s, 10, || 10));
        assert_eq!(
            walk(&lane),
            Walked {
                written: 0,
                released: 1
            }
        );
        assert!(released(&s));
        assert_eq!(lane.parked(), 0);
        let back = lane.unpark(&s);
        assert_eq!(
            back.cursor, 12,
            "the batch is the stream's: part sent, the rest to write"
        );
        assert_eq!(s.take_rest().as_deref(), Some(&WIRE[4..]));
        assert_eq!(got(&s), &WIRE[..4]);
    }

    #[test]
    fn nothing_written_an_expired_token_or_another_cursor_hand_the_stream_back_untouched() {
        let reach = Reach::default();
        let lane = running();
        let (a, _ra) = seat(&reach, 200, Some(Socket::new(Some(0))));
        let (b, _rb) = seat(&reach, 200, Some(Socket::new(None)));
        // Expired by the clock the walk is given (100 s).
        let (c, _rc) = seat(&reach, 100, Some(Socket::new(Some(100))));
        let (d, _rd) = seat(&reach, 200, Some(Socket::new(Some(100))));
        for s in [&a, &b, &c] {
            assert!(lane.park(s, 10, || 10));
        }
        // Parked between `from` and `through`: it needs only part of the batch.
        assert!(lane.park(&d, 11, || 11));
        assert_eq!(
            walk(&lane),
            Walked {
                written: 0,
                released: 4
            }
        );
        for (s, cursor) in [(&a, 10), (&b, 10), (&c, 10), (&d, 11)] {
            assert!(released(s));
            assert!(got(s).is_empty());
            let back = lane.unpark(s);
            assert_eq!((back.cursor, back.sent), (cursor, None));
            assert!(s.take_rest().is_none());
        }
        assert_eq!(
            reach.local().iter().map(|s| s.last_event_id).max(),
            Some(10)
        );
    }

    #[test]
    fn slots_keep_their_place_and_are_reused() {
        let reach = Reach::default();
        let lane = running();
        let seats: Vec<_> = (0..3)
            .map(|_| seat(&reach, 200, Some(Socket::new(Some(100)))))
            .collect();
        for (s, _) in &seats {
            assert!(lane.park_in(0, s, 10, || 10));
        }
        lane.unpark(&seats[0].0);
        // A walk of slots 1..3 still finds the other two where they were.
        let w = lane.deliver(
            0,
            1..3,
            &batch(),
            tokio::time::Instant::now(),
            Duration::ZERO,
        );
        assert_eq!(w.written, 2);
        assert!(lane.park_in(0, &seats[0].0, 12, || 12));
        assert_eq!(lane.slots(0), 3, "the freed slot is reused");
        assert_eq!(lane.release_all(), 3);
        assert!(seats.iter().all(|(s, _)| released(s)));
        assert!(lane.park(&seats[1].0, 12, || 12));
        lane.stop();
        assert!(
            released(&seats[1].0),
            "a stopped lane hands its streams back"
        );
        assert!(!lane.park(&seats[0].0, 12, || 12));
    }

    #[test]
    fn streams_are_spread_over_the_shards_in_turn() {
        let reach = Reach::default();
        let lane = running();
        let seats: Vec<_> = (0..2 * SHARDS)
            .map(|_| seat(&reach, 200, Some(Socket::new(Some(100)))))
            .collect();
        for (s, _) in &seats {
            assert!(lane.park(s, 10, || 10));
        }
        assert!((0..SHARDS).all(|shard| lane.slots(shard) == 2));
        assert_eq!(lane.parked(), 2 * SHARDS);
        assert_eq!(walk(&lane).written, 2 * SHARDS);
        for (s, _) in &seats {
            assert_eq!(lane.unpark(s).cursor, 12);
        }
        assert_eq!(lane.parked(), 0);
    }
}
