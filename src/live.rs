//! The training loop's window for `train --serve`: a snapshot of the
//! weights and the curve so far, shared between the trainer and the server.
//!
//! The trainer only ever reads its own weights into it: every `every` steps
//! it copies the parameter slab into a buffer allocated once, at the start,
//! under a mutex held for that copy alone, and appends one curve point to a
//! vector whose capacity was reserved at the start too. So serving costs a
//! `memcpy` of the weights every few dozen steps, allocates nothing per
//! step, and cannot change what the run computes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

use crate::eval::Metrics;
use crate::metrics::{EpochRecord, EpochStats};
use crate::model::{Dims, Params};

/// One point of the training curve: the mean loss and accuracy of the
/// batches since the previous point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Point {
    /// Steps done so far in the run.
    pub step: u64,
    /// Epochs done, fractional: `1.5` is half way through the second.
    pub epoch: f64,
    pub loss: f64,
    pub accuracy: f64,
}

/// Where the run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before the first step (data loading, initialisation).
    Starting,
    Training,
    /// Finished: the test set has been scored.
    Done,
    /// Stopped early as `--stop-after` asked (a checkpoint to resume), the
    /// test set scored with the weights it stopped with.
    Stopped,
}

/// What the server reads. Fields are public for the server; only the
/// trainer's hooks write them.
pub struct Snapshot {
    /// The latest weights copied from the trainer; `None` before the run starts.
    pub params: Option<Params>,
    /// Bumped at every copy of the weights.
    pub version: u64,
    pub phase: Phase,
    /// Steps done.
    pub step: u64,
    pub steps_per_epoch: u64,
    pub total_steps: u64,
    pub epochs: usize,
    /// The epoch in progress (1-based), or the last one once done.
    pub epoch: usize,
    pub points: Vec<Point>,
    /// One record per epoch this process finished (as in the `--metrics` log).
    pub records: Vec<EpochRecord>,
    /// Epochs finished before a `--resume` (the records start after them).
    pub epochs_before: usize,
    /// Test-set accuracy at the end.
    pub test_accuracy: Option<f64>,
    /// The epoch's running sums at the previous point, to take differences.
    last_loss_sum: f64,
    last_correct: usize,
    last_seen: usize,
}

/// Shared between the trainer (writer) and the server (reader): hold it in
/// an `Arc`, pass one clone in [`crate::train::RunOptions::live`].
pub struct Live {
    snap: Mutex<Snapshot>,
    /// Steps between copies; fixed at [`Live::start`].
    every: AtomicU64,
    /// Steps done, updated at every step without the lock.
    steps: AtomicU64,
    /// Steps per epoch; fixed at [`Live::start`].
    spe: AtomicU64,
    /// The page's address, written first in the run's header: after the
    /// checks that may refuse the run, so a refused run names no page.
    url: std::sync::OnceLock<String>,
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

/// The threads that answer a page's requests (`crate::serve::HANDLERS`),
/// here where the trainer's memory estimate can count their copies of the
/// weights.
pub const PAGE_HANDLERS: usize = 4;

/// Curve points [`Live::start`] makes room for in a run of `total_steps`
/// steps of `steps_per_epoch` a epoch: one each [`interval`] and one at
/// each epoch's end.
fn curve_points(steps_per_epoch: u64, total_steps: u64, epochs: usize) -> usize {
    (total_steps / interval(steps_per_epoch) + epochs as u64 + 2) as usize
}

/// Bytes [`Live::start`] reserves for the curve and the epochs' records of
/// a run of `total_steps` steps of `steps_per_epoch` a epoch.
pub fn curve_bytes(steps_per_epoch: u64, total_steps: u64, epochs: usize) -> u64 {
    let points = curve_points(steps_per_epoch, total_steps, epochs);
    (points * std::mem::size_of::<Point>() + (epochs + 1) * std::mem::size_of::<EpochRecord>())
        as u64
}

/// Steps between two updates for an epoch of `steps_per_epoch` steps: about
/// ten a epoch, at most every 200 steps, at least every step.
pub fn interval(steps_per_epoch: u64) -> u64 {
    (steps_per_epoch / 10).clamp(1, 200)
}

impl Live {
    /// An empty window: no weights until [`Live::start`].
    pub fn new() -> Self {
        Live {
            snap: Mutex::new(Snapshot {
                params: None,
                version: 0,
                phase: Phase::Starting,
                step: 0,
                steps_per_epoch: 0,
                total_steps: 0,
                epochs: 0,
                epoch: 0,
                points: Vec::new(),
                records: Vec::new(),
                epochs_before: 0,
                test_accuracy: None,
                last_loss_sum: 0.0,
                last_correct: 0,
                last_seen: 0,
            }),
            every: AtomicU64::new(u64::MAX),
            steps: AtomicU64::new(0),
            spe: AtomicU64::new(0),
            url: std::sync::OnceLock::new(),
        }
    }

    /// Where the page is served, for the run's header to say (once).
    pub fn served_at(&self, url: String) {
        let _ = self.url.set(url);
    }

    /// The address given to [`Live::served_at`], if any.
    pub fn url(&self) -> Option<&str> {
        self.url.get().map(String::as_str)
    }

    /// The snapshot, locked. A poisoned lock (a panic while holding it) still
    /// holds plain numbers and weights: keep reading it.
    pub fn lock(&self) -> MutexGuard<'_, Snapshot> {
        self.snap.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The weights' current version and dims, without copying them.
    pub fn version(&self) -> (u64, Option<Dims>) {
        let s = self.lock();
        (s.version, s.params.as_ref().map(|p| p.dims.clone()))
    }

    /// The run starts (or resumes at `steps_done`): allocate the weight copy
    /// and the curve's room once.
    pub fn start(
        &self,
        params: &Params,
        steps_per_epoch: u64,
        total_steps: u64,
        epochs: usize,
        steps_done: u64,
        so_far: Option<crate::checkpoint::EpochSoFar>,
    ) {
        let every = interval(steps_per_epoch);
        self.every.store(every, Ordering::Relaxed);
        self.spe.store(steps_per_epoch, Ordering::Relaxed);
        self.steps.store(steps_done, Ordering::Relaxed);
        let mut s = self.lock();
        s.params = Some(params.clone());
        s.version += 1;
        s.phase = Phase::Training;
        s.step = steps_done;
        s.steps_per_epoch = steps_per_epoch;
        s.total_steps = total_steps;
        s.epochs = epochs;
        s.epoch = (steps_done / steps_per_epoch.max(1)) as usize + 1;
        s.epochs_before = s.epoch - 1;
        // Resumed inside an epoch: its first point covers only the batches
        // run from here, as the next ones do.
        let f = so_far.map_or((0.0, 0, 0), |f| (f.loss_sum, f.correct, f.seen));
        (s.last_loss_sum, s.last_correct, s.last_seen) = f;
        s.points = Vec::with_capacity(curve_points(steps_per_epoch, total_steps, epochs));
        s.records = Vec::with_capacity(epochs + 1);
    }

    /// After each training step: `steps` done in the run, the epoch's
    /// running loss sum, hits and images seen. Every `every` steps (and at
    /// an epoch's last step) copies the weights and adds a curve point;
    /// otherwise returns at once.
    pub fn step(
        &self,
        params: &Params,
        epoch: usize,
        steps: u64,
        loss_sum: f64,
        correct: usize,
        seen: usize,
    ) {
        self.steps.store(steps, Ordering::Relaxed);
        let every = self.every.load(Ordering::Relaxed);
        if !steps.is_multiple_of(every) && !self.epoch_end(steps) {
            return;
        }
        let mut s = self.lock();
        let spe = s.steps_per_epoch.max(1);
        if let Some(p) = &mut s.params {
            if p.data.len() == params.data.len() {
                p.data.copy_from_slice(&params.data);
            }
        }
        s.version += 1;
        s.step = steps;
        s.epoch = epoch;
        if seen < s.last_seen {
            (s.last_loss_sum, s.last_correct, s.last_seen) = (0.0, 0, 0);
        }
        let n = (seen - s.last_seen).max(1) as f64;
        let point = Point {
            step: steps,
            epoch: steps as f64 / spe as f64,
            loss: (loss_sum - s.last_loss_sum) / n,
            accuracy: (correct - s.last_correct) as f64 / n,
        };
        (s.last_loss_sum, s.last_correct, s.last_seen) = (loss_sum, correct, seen);
        // Never grow past the room reserved at the start (a resumed or
        // stretched run keeps its last points instead).
        if s.points.len() < s.points.capacity() {
            s.points.push(point);
        }
    }

    /// Steps done so far (read without the lock).
    pub fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }

    fn epoch_end(&self, steps: u64) -> bool {
        let spe = self.spe.load(Ordering::Relaxed);
        spe > 0 && steps.is_multiple_of(spe)
    }

    /// An epoch ended (validation done).
    pub fn epoch(&self, stats: &EpochStats) {
        let mut s = self.lock();
        if s.records.len() < s.records.capacity() {
            s.records.push(stats.into());
        }
        (s.last_loss_sum, s.last_correct, s.last_seen) = (0.0, 0, 0);
    }

    /// The run is over (`stopped`: early, at `--stop-after`): the last
    /// weights and the test score.
    pub fn done(&self, params: &Params, test: &Metrics, stopped: bool) {
        let mut s = self.lock();
        if let Some(p) = &mut s.params {
            if p.data.len() == params.data.len() {
                p.data.copy_from_slice(&params.data);
            }
        }
        s.version += 1;
        s.phase = if stopped { Phase::Stopped } else { Phase::Done };
        s.test_accuracy = Some(test.accuracy());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Init;

    #[test]
    fn points_every_interval_and_at_epoch_ends() {
        let p = Params::init(Dims::new(4, &[3], 2), Init::He, 1);
        let live = Live::new();
        live.start(&p, 25, 50, 2, 0, None);
        assert_eq!(interval(25), 2);
        // About ten a epoch, but at least every 200 steps (an epoch of
        // batch 16 has 3,750) and at most every step.
        assert_eq!(
            [1_999, 2_000, 2_009, 3_750, 60_000].map(interval),
            [199, 200, 200, 200, 200]
        );
        let mut q = p.clone();
        for step in 1..=25u64 {
            q.data[0] = step as f32;
            live.step(&q, 1, step, step as f64, step as usize, 10 * step as usize);
        }
        // Every step counted, not only those that add a point.
        assert_eq!(live.steps(), 25);
        let s = live.lock();
        // Steps 2, 4, …, 24 and 25 (the epoch's end).
        assert_eq!(s.points.len(), 13);
        assert_eq!(s.points[0].loss, 2.0 / 20.0);
        assert_eq!(s.points.last().unwrap().step, 25);
        assert_eq!(s.params.as_ref().unwrap().data[0], 25.0);
        assert!(s.points.capacity() >= 50 / 2 + 2);
    }

    /// `curve_bytes`, the memory check's figure, is what `start` reserves
    /// for the curve's points and the epochs' records, for short and long
    /// runs.
    #[test]
    fn curve_bytes_is_what_start_reserves() {
        let p = Params::init(Dims::new(4, &[3], 2), Init::He, 1);
        for (spe, total, epochs) in [(25, 50, 2), (469, 469 * 100, 100), (1, 7, 7)] {
            let live = Live::new();
            live.start(&p, spe, total, epochs, 0, None);
            let s = live.lock();
            let reserved = s.points.capacity() * std::mem::size_of::<Point>()
                + s.records.capacity() * std::mem::size_of::<EpochRecord>();
            assert_eq!(
                curve_bytes(spe, total, epochs),
                reserved as u64,
                "{spe} {total} {epochs}"
            );
        }
    }

    /// Resumed at step 30 (epoch 2 done, 5 batches into epoch 3) with the
    /// epoch's sums so far: the first point covers only the batch run here,
    /// and the epochs done count the checkpoint's.
    #[test]
    fn a_resumed_run_counts_its_earlier_epochs_and_sums() {
        let p = Params::init(Dims::new(4, &[3], 2), Init::He, 1);
        let live = Live::new();
        let so_far = crate::checkpoint::EpochSoFar {
            loss_sum: 50.0,
            correct: 40,
            seen: 50,
        };
        live.start(&p, 12, 60, 5, 29, Some(so_far));
        // Step 30 (a multiple of the interval, 1): one batch of 10 images,
        // loss 2 each, 5 right.
        live.step(&p, 3, 30, 70.0, 45, 60);
        let s = live.lock();
        assert_eq!((s.points[0].loss, s.points[0].accuracy), (2.0, 0.5));
        assert_eq!(s.epochs_before, 2);
    }

    /// A point's epoch is fractional (steps over steps per epoch), and the
    /// end of the run says done with the test accuracy.
    #[test]
    fn points_have_fractional_epochs_and_done_reports_the_score() {
        let p = Params::init(Dims::new(4, &[3], 2), Init::He, 1);
        let live = Live::new();
        live.start(&p, 4, 8, 2, 0, None);
        assert_eq!(interval(4), 1);
        live.step(&p, 1, 1, 1.0, 1, 2);
        live.step(&p, 1, 2, 2.0, 2, 4);
        let test = Metrics {
            n: 4,
            loss: 0.5,
            correct: 3,
            confusion: vec![vec![2, 0], vec![1, 1]],
        };
        live.done(&p, &test, false);
        {
            let s = live.lock();
            let epochs: Vec<f64> = s.points.iter().map(|q| q.epoch).collect();
            assert_eq!(epochs, [0.25, 0.5]);
            assert_eq!(s.phase, Phase::Done);
            assert_eq!(s.test_accuracy, Some(0.75));
        }
        // Ended early by --stop-after: stopped, not done.
        live.done(&p, &test, true);
        assert_eq!(live.lock().phase, Phase::Stopped);
    }
}
