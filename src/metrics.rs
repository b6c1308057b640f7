//! Per-epoch statistics, and the metrics log: one JSON object per epoch, one per line (`--metrics`),
//! read back by `simplenn plot`.
//!
//! The whole file is rewritten atomically after every epoch (it is a few
//! kilobytes), so it is never half-written; a resumed run keeps the records
//! of the epochs its checkpoint had finished and drops any after them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::atomic::{write_guarded, Guard};
use crate::error::UsageError;
use crate::eval::Metrics;

/// What one epoch did.
#[derive(Clone, Debug)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val: Option<Metrics>,
    /// The test set after this epoch (`--test-every-epoch` only: a report,
    /// never used to choose anything).
    pub test: Option<Metrics>,
    /// Learning rate at the epoch's last step.
    pub lr: f32,
    pub seconds: f64,
    /// Seconds since this run started training, up to the end of this
    /// epoch's validation (per-epoch test evaluations not counted).
    pub wall_seconds: f64,
    pub samples_per_sec: f64,
}

/// One epoch, as written to the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// `null` when no images were held out (`--val 0`).
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    /// Only with `--test-every-epoch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// Learning rate at the epoch's last step.
    #[serde(serialize_with = "f32_as_written")]
    pub lr: f32,
    pub seconds: f64,
    /// Seconds since the run (or its resumed part) started training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
    pub samples_per_sec: f64,
}

/// `x` as the shortest decimal that reads back as it, as an `f32` is
/// written, also where the record goes through a `serde_json::Value`
/// (`serve`'s answers), which holds every number as an `f64`: there the
/// `f32` itself, widened, printed as `0.08541985601186752` what the log
/// holds as `0.085419856`. The log's bytes are the same either way.
fn f32_as_written<S: serde::Serializer>(x: &f32, s: S) -> Result<S::Ok, S::Error> {
    // A finite f32's shortest decimal always parses as an f64.
    s.serialize_f64(x.to_string().parse().unwrap_or(f64::from(*x)))
}

impl From<&EpochStats> for EpochRecord {
    fn from(s: &EpochStats) -> Self {
        EpochRecord {
            epoch: s.epoch,
            train_loss: s.train_loss,
            train_accuracy: s.train_accuracy,
            val_loss: s.val.as_ref().map(|m| m.loss),
            val_accuracy: s.val.as_ref().map(|m| m.accuracy()),
            test_loss: s.test.as_ref().map(|m| m.loss),
            test_accuracy: s.test.as_ref().map(|m| m.accuracy()),
            lr: s.lr,
            seconds: s.seconds,
            wall_seconds: Some(s.wall_seconds),
            samples_per_sec: s.samples_per_sec,
        }
    }
}

/// What is wrong with one line of a log, in the log's terms: serde's
/// message without its own "line 1" (each line is parsed alone, and the
/// caller names the file's line) or the type it was reading into.
fn record_fault(e: &serde_json::Error, line: &str) -> String {
    use serde_json::error::Category;
    let text = e.to_string();
    let text = text.rsplit_once(" at line ").map_or(&*text, |(t, _)| t);
    let column = e.column();
    match e.classify() {
        Category::Eof => format!("it ends at column {column}, cut short"),
        // Valid JSON (`1e300`) too large for its field: no run writes it.
        Category::Syntax if text == "number out of range" => {
            format!(
                "the number before column {column} is too large for its field, which no run writes"
            )
        }
        Category::Syntax => format!("not JSON at column {column}: {text}"),
        // The records of a log as one JSON array (`[{...},{...}]`): serde
        // reads it as the record's fields in order, and names a type.
        Category::Data if line.trim_start().starts_with("[{") => {
            "a JSON array of records, where a log has one record (a JSON object) a line".into()
        }
        // `[1,2,3]`, `"x"`, `7`: serde names the struct it expected.
        Category::Data if text.contains("EpochRecord") => {
            "not a JSON object of a record's fields (epoch, train_loss, …)".into()
        }
        // A field of the wrong type: serde names the type, not the field.
        Category::Data => field_fault(line).unwrap_or_else(|| text.to_string()),
        _ => text.to_string(),
    }
}

/// The first field of a record `line` that does not hold what a log holds
/// there: `epoch` a whole number, the others numbers (those that may be
/// absent, `null` too).
fn field_fault(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let record = v.as_object()?;
    let fields: [(&str, bool); 11] = [
        ("epoch", false),
        ("train_loss", false),
        ("train_accuracy", false),
        ("val_loss", true),
        ("val_accuracy", true),
        ("test_loss", true),
        ("test_accuracy", true),
        ("wall_seconds", true),
        ("lr", false),
        ("seconds", false),
        ("samples_per_sec", false),
    ];
    fields.iter().find_map(|&(name, optional)| {
        let x = record.get(name);
        let fits = match (name, x) {
            (_, None) => optional,
            ("epoch", Some(x)) => x.as_u64().is_some(),
            (_, Some(x)) => x.is_number() || (optional && x.is_null()),
        };
        let what = match name {
            "epoch" => "a whole number from 1",
            _ if optional => "a number or null",
            _ => "a number",
        };
        (!fits).then(|| match x {
            None => format!("{name} is missing"),
            Some(x) => format!(
                "{name} is {}, where a log has {what}",
                crate::atomic::cut(&x.to_string(), 40)
            ),
        })
    })
}

/// Parse a metrics log; errors name the file and the line. A byte-order
/// mark before the first record is skipped: editors that save UTF-8 with
/// one (Notepad does) leave the log otherwise as written, and it is read
/// as it is shown, as a log with CRLF line ends is.
pub fn parse(text: &str, what: &Path) -> Result<Vec<EpochRecord>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: EpochRecord = serde_json::from_str(line).map_err(|e| {
            anyhow::anyhow!(
                "{} line {}: not a simplenn metrics record ({}); pass a file written by --metrics",
                what.display(),
                i + 1,
                record_fault(&e, line)
            )
        })?;
        // Values no run writes (a loss of 1e308 would also make the plot's
        // axis range overflow to infinity, where the plotting crate loops).
        let fields = [
            ("train_loss", Some(r.train_loss), MAX_LOSS),
            ("val_loss", r.val_loss, MAX_LOSS),
            ("test_loss", r.test_loss, MAX_LOSS),
            ("train_accuracy", Some(r.train_accuracy), 1.0),
            ("val_accuracy", r.val_accuracy, 1.0),
            ("test_accuracy", r.test_accuracy, 1.0),
            ("lr", Some(f64::from(r.lr)), crate::config::MAX_LR),
            ("seconds", Some(r.seconds), MAX_SECONDS),
            ("wall_seconds", r.wall_seconds, MAX_SECONDS),
        ];
        for (name, v, hi) in fields {
            if let Some(v) = v.filter(|v| !(0.0..=hi).contains(v)) {
                let show = |x: f64| {
                    if x.abs() < 1e6 {
                        // An f32 field (lr) as it was written: -0.1, not
                        // -0.10000000149011612.
                        match f64::from(x as f32) == x {
                            true => (x as f32).to_string(),
                            false => x.to_string(),
                        }
                    } else {
                        format!("{x:e}")
                    }
                };
                // A loss this high means the run had diverged; a negative
                // one, or an accuracy outside 0 to 1, no run can have.
                let why = match name.ends_with("loss") && v > hi {
                    true => " (a run whose loss got this far had diverged)",
                    false => "",
                };
                bail!(
                    "{} line {}: {name} {} is outside 0 to {}: not a log to plot or resume{why}; pass a file written by --metrics",
                    what.display(),
                    i + 1,
                    show(v),
                    show(hi)
                );
            }
        }
        // A run writes its epochs in order, each once, numbered as --epochs
        // allows; two runs in one file, or a hand-edited one, would draw
        // lines that run backwards (and an epoch near 2^64 broke the axis).
        let last = out.last().map(|p: &EpochRecord| p.epoch);
        if r.epoch == 0 || r.epoch > crate::config::MAX_EPOCHS || last.is_some_and(|p| r.epoch <= p)
        {
            // Out of order only where it is in range (an epoch past the
            // limit was blamed on the one before it).
            let in_range = (1..=crate::config::MAX_EPOCHS).contains(&r.epoch);
            let after = match last.filter(|_| in_range) {
                Some(p) => format!(" after epoch {p}"),
                None => String::new(),
            };
            bail!(
                "{} line {}: epoch {}{after}: a log written by --metrics numbers its epochs 1 to {} in increasing order, each once; pass one run's log",
                what.display(),
                i + 1,
                r.epoch,
                crate::config::MAX_EPOCHS
            );
        }
        out.push(r);
    }
    Ok(out)
}

/// The largest loss (nats) a metrics record may hold: a mean of f32
/// per-image losses (one past f32's range is written as `null`). Training
/// stops at a batch mean of [`crate::train::DIVERGED_LOSS`], but an epoch's
/// validation and test losses have no bound below this: a run's last
/// epoch before it diverges may score 1e9 there, and its log is then the
/// one most worth plotting.
const MAX_LOSS: f64 = f32::MAX as f64;

/// The longest log read: a record (one epoch) is under 400 bytes even
/// with every field at its longest, and a run has at most
/// [`crate::config::MAX_EPOCHS`] epochs.
const MAX_LOG_BYTES: u64 = 1024 * crate::config::MAX_EPOCHS as u64;

/// The longest time (s) a record may give: an epoch, or a run, of 30 years.
const MAX_SECONDS: f64 = 1e9;

/// Read a metrics log written by `--metrics`, which may hold no epochs.
fn read_any(path: &Path) -> Result<Vec<EpochRecord>> {
    // Where the first byte that is not UTF-8 is, by line and column, as
    // every other fault of a log is named.
    let not_text = |bytes: &[u8], e: std::str::Utf8Error| {
        let at = e.valid_up_to();
        let line_start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        anyhow::anyhow!(
            "{} line {line}: not text (byte 0x{:02x} at column {} is not UTF-8); pass a file written by --metrics",
            path.display(),
            bytes[at],
            at - line_start + 1
        )
    };
    let first_line = |line: &[u8]| {
        let line = std::str::from_utf8(line).map_err(|e| not_text(line, e))?;
        parse(line, path).map(drop)
    };
    let bytes = crate::atomic::read_input_checked(path, "metrics", MAX_LOG_BYTES, first_line)?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(e) => return Err(not_text(&bytes, e)),
    };
    parse(text, path)
}

/// Read a metrics log written by `--metrics`.
pub fn read(path: &Path) -> Result<Vec<EpochRecord>> {
    let records = read_any(path)?;
    if records.is_empty() {
        bail!(
            "{}: no epochs in this metrics log; train with --metrics {} first",
            path.display(),
            path.display()
        );
    }
    Ok(records)
}

/// Records as JSON lines.
pub fn to_jsonl(records: &[EpochRecord]) -> String {
    let mut s = String::new();
    for r in records {
        // Serializing plain numbers cannot fail; non-finite floats become null.
        s.push_str(&serde_json::to_string(r).unwrap_or_else(|_| "{}".into()));
        s.push('\n');
    }
    s
}

/// The log of a run in progress.
///
/// Each write replaces the whole file (atomically, with fsyncs), so its cost
/// grows with the run. Writing after every epoch would make a run of many
/// short epochs quadratic (a million 0.3 ms epochs: hours of fsyncs and
/// ~10^14 bytes written), so after an epoch the file is rewritten only when
/// the time since the last write is at least [`REWRITE_GAP`] times what that
/// write took: at most ~1/`REWRITE_GAP` of the run goes to the log, and
/// MNIST-sized epochs (hundreds of ms against a few ms a write) still get a
/// write each. [`MetricsLog::flush`] writes the rest; the trainer calls it
/// before every checkpoint and at the end, and dropping the log (a run that
/// stops with an error) flushes too.
pub struct MetricsLog {
    path: PathBuf,
    records: Vec<EpochRecord>,
    /// Records the file holds.
    written: usize,
    /// When the last write ended, and how long it took.
    last_write: Option<(Instant, Duration)>,
    /// Why the last write failed, while no later one has succeeded: the
    /// run trains on (its weights matter more than its log) and writes the
    /// log again at the next chance.
    failed: Option<String>,
    /// The file as this run last saw it (at the start, then after each of
    /// its writes): one changed since was written by another process, most
    /// likely a run given the same `--metrics`, and is not replaced.
    seen: Option<crate::atomic::Stamp>,
    /// Whether a write of this run has succeeded.
    wrote: bool,
}

/// See [`MetricsLog`]: a write follows an epoch only after this many times
/// the previous write's duration.
pub const REWRITE_GAP: u32 = 10;

/// Set by a trainer's unit test to its log's path: every rewrite of that
/// log after the first waits for a flush, as if each write had taken
/// forever. By path, not for every log (the tests beside it write theirs
/// as usual), and not per thread (the run writes its log from a thread of
/// its own pool).
#[cfg(test)]
pub(crate) static HOLD_REWRITES: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

#[cfg(test)]
fn held(path: &Path) -> bool {
    let held = HOLD_REWRITES.lock().unwrap_or_else(|e| e.into_inner());
    held.as_deref() == Some(path)
}

#[cfg(not(test))]
fn held(_: &Path) -> bool {
    false
}

/// Whether the log is due a rewrite, `since` after a write that took `took`.
pub fn rewrite_due(since: Duration, took: Duration) -> bool {
    since >= took * REWRITE_GAP
}

impl MetricsLog {
    /// Start a log at `path`. When `resuming`, records of epochs up to
    /// `done_epochs` already in the file are kept and later ones dropped;
    /// where the checkpoint knows its last whole epoch's training loss
    /// (`last_loss`), a log whose record of that epoch says otherwise, or
    /// that has none, is another run's, and refused; so is any log with
    /// records when the checkpoint is from inside epoch 1. But where the
    /// checkpoint names `path` as its run's log (`named`), a log that
    /// stops before that epoch (a write that failed, on a full disk) is
    /// taken as the run's, its later epochs missing; and from inside
    /// epoch 1, whatever the file holds is what the stopped run was to
    /// replace at its first epoch, as a run not stopped would have.
    pub fn open(
        path: &Path,
        done_epochs: usize,
        resuming: bool,
        last_loss: Option<f64>,
        named: bool,
    ) -> Result<Self> {
        let mut records = Vec::new();
        if resuming && path.exists() {
            // Whose log it is, judged before anything is dropped: a log of
            // another run may hold only epochs after the checkpoint's.
            let all = read_any(path)?;
            let at_done = all.iter().find(|r| r.epoch == done_epochs);
            let other = match (last_loss, at_done) {
                (Some(want), Some(r)) if r.train_loss != want => Some(format!(
                    "its epoch {done_epochs} has train loss {}, the checkpoint's run {want}",
                    r.train_loss
                )),
                // The file the checkpoint names, cut short before its
                // epoch: the stopped run's log, whose last writes failed.
                (Some(_), None) if named && all.iter().all(|r| r.epoch < done_epochs) => None,
                // Its own run's, maybe, with that epoch logged elsewhere
                // (an earlier resume given another file): nothing tells.
                (Some(_), None) if !all.is_empty() => {
                    return Err(UsageError(format!(
                        "--metrics {}: cannot tell that this is the run's log: it has no epoch {done_epochs}, where the checkpoint is, to compare losses with; give --metrics a new file, or the log that holds the run's epoch {done_epochs}",
                        path.display()
                    ))
                    .into())
                }
                // A checkpoint from inside epoch 1 has no loss to compare,
                // and its own run has written no epoch yet. Unless it is
                // the file that run named: that run was to replace it at
                // its first epoch, and so does this one.
                (None, _) if done_epochs == 0 && !all.is_empty() && !named => Some(format!(
                    "it holds {}, and the checkpoint, from inside epoch 1, is of a run that has logged none",
                    epochs(all.len())
                )),
                // A checkpoint past epoch 1 with no loss is an older
                // simplenn's: nothing tells whose log this is. One that
                // ends by the checkpoint's epoch loses nothing and goes on;
                // one past it would lose those epochs, maybe another run's.
                (None, _) if done_epochs > 0 && all.iter().any(|r| r.epoch > done_epochs) => {
                    return Err(UsageError(format!(
                        "--metrics {}: cannot tell that this is the run's log: the checkpoint, from an older simplenn, holds no loss to compare with, and the log's epochs after {done_epochs} would be replaced; give --metrics a new file, or a copy of the log that ends at epoch {done_epochs}",
                        path.display()
                    ))
                    .into())
                }
                _ => None,
            };
            if let Some(why) = other {
                // The path the stopped run logged to (kept from its
                // checkpoint where --metrics was not given): its log is
                // gone, written over since.
                let (whose, fix) = match named {
                    true => (
                        " (the stopped run's log, as its checkpoint records): another run's log now",
                        "give --metrics a new file, or --no-metrics",
                    ),
                    false => (
                        ": another run's log",
                        "give --metrics a new file, or the log this run wrote",
                    ),
                };
                return Err(UsageError(format!(
                    "--metrics {}{whose} ({why}); {fix}",
                    path.display()
                ))
                .into());
            }
            records = all;
            records.retain(|r| r.epoch <= done_epochs);
        }
        let written = records.len();
        let log = MetricsLog {
            path: path.to_owned(),
            records,
            written,
            last_write: None,
            failed: None,
            seen: crate::atomic::stamp(path),
            wrote: false,
        };
        // Fail now, not after the first epoch, on a bad path; but leave the
        // file as it is until an epoch is done, so that a run that fails
        // before then (bad flags, divergence) does not erase an earlier log.
        crate::atomic::check_dir_named(path, "metrics.jsonl").context("--metrics")?;
        Ok(log)
    }

    /// Add an epoch, and rewrite the file if that is due (see [`MetricsLog`]).
    ///
    /// A write that fails (a full disk) does not stop the run: it is said
    /// once on stderr, and tried again as later epochs end, with the gap a
    /// rewrite keeps (each try serialises the whole log), until one works;
    /// [`MetricsLog::failure`] tells the trainer at the end.
    pub fn push(&mut self, stats: &EpochStats) {
        self.push_record(stats.into())
    }

    fn push_record(&mut self, record: EpochRecord) {
        self.records.push(record);
        match self.last_write {
            Some((end, took)) if held(&self.path) || !rewrite_due(end.elapsed(), took) => {}
            _ => self.try_write(),
        }
    }

    /// Write the records the file does not hold yet, if any, or all of
    /// them where the file is no longer the one this run last saw (another
    /// process wrote or removed it): a checkpoint names [`MetricsLog::path`]
    /// right after, and that file must hold this run's epochs (a failure
    /// as in [`MetricsLog::push`]).
    pub fn flush(&mut self) {
        let gone = !self.records.is_empty() && crate::atomic::stamp(&self.path) != self.seen;
        if self.written < self.records.len() || gone {
            self.try_write();
        }
    }

    /// Why the log could not be written, if its last write failed.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Why the log could not be written, if its last write failed, and
    /// what its file holds ([`MetricsLog::what_it_holds`]).
    pub fn failure_and_holds(&self) -> Option<(&str, String)> {
        Some((self.failure()?, self.what_it_holds()))
    }

    /// What the file holds after a failed write, in words: nothing of
    /// this run (the file as it was before it), its epochs up to the last
    /// written, or, where the file is no longer the one this run wrote
    /// (removed, or written by another process), that it is not.
    pub fn what_it_holds(&self) -> String {
        let path = self.path.display();
        let total = self.records.last().map_or(0, |r| r.epoch);
        match (self.wrote, self.records[..self.written].last()) {
            (true, Some(last)) if crate::atomic::stamp(&self.path) == self.seen => {
                format!("{path} holds its epochs up to {} of {total}", last.epoch)
            }
            // Its directory was removed, say: "holds" would send the user
            // to a file that is not there.
            (true, Some(last)) => format!(
                "{path}, written with its epochs up to {} of {total}, was removed or replaced during the run",
                last.epoch
            ),
            _ => format!("{path} was never written by this run and is as it was before it"),
        }
    }

    fn try_write(&mut self) {
        match self.write() {
            Ok(()) => self.failed = None,
            Err(e) => {
                let e = format!("{e:#}");
                if self.failed.is_none() {
                    // eprint_line: a closed stderr must not cost the run.
                    crate::error::eprint_line(&format!(
                        "simplenn: warning: {e}; training goes on, the log is tried again as epochs end, and unless that works the run will end with exit status 1"
                    ));
                }
                self.failed = Some(e);
            }
        }
    }

    pub fn records(&self) -> &[EpochRecord] {
        &self.records
    }

    /// Where the log goes: the `--metrics` path, or `NAME.PID.EXT` beside
    /// it once another process wrote that path during the run.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self) -> Result<()> {
        let start = Instant::now();
        // Not over a log another process wrote at the path meanwhile:
        // this run's goes beside it from then on.
        let guard = Guard {
            seen: Some(self.seen),
            what: "--metrics",
            goes: "log goes",
            from_checkpoint: false,
        };
        let bytes = to_jsonl(&self.records);
        let written = write_guarded(&self.path, bytes.as_bytes(), Some(guard))
            .with_context(|| "writing the --metrics log".to_string());
        // Failed or not, the next try keeps the gap: a failed one after
        // every short epoch, each serialising the whole log, made a long
        // run quadratic.
        self.last_write = Some((Instant::now(), start.elapsed()));
        let (path, stamp) = match written {
            Ok(w) => w,
            Err(e) => {
                // Beside the path from now on, as after a write that
                // worked there; that file holds nothing of this run yet.
                if let Some(r) = e.downcast_ref::<crate::atomic::Redirected>() {
                    (self.path, self.seen) = (r.own.clone(), crate::atomic::stamp(&r.own));
                    (self.written, self.wrote) = (0, false);
                }
                return Err(e);
            }
        };
        (self.path, self.seen) = (path, Some(stamp));
        self.written = self.records.len();
        self.wrote = true;
        Ok(())
    }
}

impl Drop for MetricsLog {
    /// A run that ends with an error (divergence, a failed save) still
    /// leaves every epoch it finished in the log; the error itself is what
    /// the user is told, so a failure to write here is not reported.
    fn drop(&mut self) {
        if self.written < self.records.len() {
            let _ = self.write();
        }
    }
}

/// `1 epoch`, `2 epochs`.
pub fn epochs(n: usize) -> String {
    crate::show::count(n, "epoch")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(epoch: usize) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 0.5 / epoch as f64,
            train_accuracy: 0.9,
            val_loss: if epoch == 2 { None } else { Some(0.25) },
            val_accuracy: Some(0.95),
            test_loss: None,
            test_accuracy: None,
            wall_seconds: None,
            lr: 0.1,
            seconds: 1.5,
            samples_per_sec: 40_000.0,
        }
    }

    /// The learning rate reads as the log writes it, also through a
    /// `serde_json::Value` (as `serve`'s `/api/curve` sends the records),
    /// and reads back as the same `f32`.
    #[test]
    fn the_learning_rate_is_written_as_its_f32() {
        let r = EpochRecord {
            lr: 0.085419856,
            ..rec(1)
        };
        let line = serde_json::to_string(&r).unwrap();
        let through_value = serde_json::to_string(&serde_json::json!({ "epochs": [&r] })).unwrap();
        for text in [&line, &through_value] {
            assert!(text.contains("\"lr\":0.085419856,"), "{text}");
        }
        let back: EpochRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back.lr.to_bits(), r.lr.to_bits());
        let whole = EpochRecord { lr: 1.0, ..rec(1) };
        assert!(serde_json::to_string(&whole)
            .unwrap()
            .contains("\"lr\":1.0,"));
    }

    #[test]
    fn the_log_is_rewritten_when_due_and_flushed_before_it_goes() {
        assert!(rewrite_due(
            Duration::from_millis(50),
            Duration::from_millis(5)
        ));
        assert!(!rewrite_due(
            Duration::from_millis(49),
            Duration::from_millis(5)
        ));
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("m.jsonl");
        let lines = || std::fs::read_to_string(&path).map_or(0, |s| s.lines().count());
        let mut log = MetricsLog::open(&path, 0, false, None, false).unwrap();
        assert_eq!(lines(), 0, "nothing is written before an epoch ends");
        log.push_record(rec(1));
        assert_eq!(lines(), 1, "the first epoch is written at once");
        // As if the last write had taken an hour: the next is not due.
        log.last_write = Some((Instant::now(), Duration::from_secs(3600)));
        log.push_record(rec(2));
        assert_eq!(lines(), 1);
        log.flush();
        assert!(log.failure().is_none());
        assert_eq!(lines(), 2);
        log.last_write = Some((Instant::now(), Duration::from_secs(3600)));
        log.push_record(rec(3));
        assert_eq!(lines(), 2);
        drop(log);
        assert_eq!(lines(), 3, "dropping the log writes what it held");
        assert_eq!(read(&path).unwrap(), vec![rec(1), rec(2), rec(3)]);
    }

    /// A log with nothing new is not written again when it goes: every
    /// write replaces the file (a new inode), so a needless one would show.
    #[cfg(unix)]
    #[test]
    fn dropping_a_log_with_nothing_new_leaves_the_file_alone() {
        use std::os::unix::fs::MetadataExt;
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("m.jsonl");
        let ino = || std::fs::metadata(&path).unwrap().ino();
        let mut log = MetricsLog::open(&path, 0, false, None, false).unwrap();
        log.push_record(rec(1));
        let first = ino();
        log.push_record(rec(2));
        log.flush();
        let second = ino();
        assert_ne!(first, second, "each write replaces the file");
        drop(log);
        assert_eq!(ino(), second);
        assert_eq!(read(&path).unwrap(), vec![rec(1), rec(2)]);
    }

    /// A log replaced by another process after its last write, with no
    /// epoch pending (a checkpoint mid-epoch, after Ctrl-C): the flush
    /// before the checkpoint moves it to `NAME.PID.EXT` with all its
    /// records, so the checkpoint never names the other process's file.
    #[test]
    fn a_flush_moves_a_log_replaced_meanwhile() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("m.jsonl");
        let mut log = MetricsLog::open(&path, 0, false, None, false).unwrap();
        log.push_record(rec(1));
        assert_eq!(log.path(), path);
        let other = t.path().join("other");
        std::fs::write(&other, "another run's log\n").unwrap();
        std::fs::rename(&other, &path).unwrap();
        log.flush();
        let own = t.path().join(format!("m.{}.jsonl", std::process::id()));
        assert_eq!(log.path(), own);
        assert_eq!(read(&own).unwrap(), vec![rec(1)]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "another run's log\n"
        );
        // Removed: written again where it was.
        std::fs::remove_file(&own).unwrap();
        log.flush();
        assert_eq!(read(&own).unwrap(), vec![rec(1)]);
    }

    /// A log that goes beside its path (another process wrote the path)
    /// and cannot be written there either goes on beside it: the next try
    /// does not find the path changed again, to warn once more, and what
    /// the run's end says the files hold is true of them.
    #[test]
    fn a_log_moved_beside_its_path_stays_there_when_that_write_fails() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("m.jsonl");
        let mut log = MetricsLog::open(&path, 0, false, None, false).unwrap();
        log.push_record(rec(1));
        std::fs::write(&path, "another run's log\n").unwrap();
        // Where this run's log would go: a directory, which no save replaces.
        let own = t.path().join(format!("m.{}.jsonl", std::process::id()));
        std::fs::create_dir(&own).unwrap();
        log.push_record(rec(2));
        log.flush();
        assert_eq!(log.path(), own);
        let why = log.failure().unwrap().to_string();
        assert!(why.contains("it is a directory"), "{why}");
        let holds = log.what_it_holds();
        assert!(
            holds.ends_with(".jsonl was never written by this run and is as it was before it"),
            "{holds}"
        );
        // The directory goes: the next try writes every record there.
        std::fs::remove_dir(&own).unwrap();
        log.flush();
        assert!(log.failure().is_none());
        assert_eq!(read(&own).unwrap(), vec![rec(1), rec(2)]);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "another run's log\n"
        );
    }

    /// A write that fails does not stop the run: the log says why, and
    /// the next due write puts every record in the file.
    #[test]
    fn a_failed_write_is_tried_again_after_the_next_epoch() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("logs");
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("m.jsonl");
        let mut log = MetricsLog::open(&path, 0, false, None, false).unwrap();
        log.push_record(rec(1));
        assert!(log.failure().is_none());
        // An epoch not written yet, the file as this run left it.
        log.last_write = Some((Instant::now(), Duration::from_secs(3600)));
        log.push_record(rec(2));
        let holds = log.what_it_holds();
        assert!(
            holds.ends_with("m.jsonl holds its epochs up to 1 of 2"),
            "{holds}"
        );
        log.records.pop();
        // The directory goes: the writes fail, and each failed try starts
        // the gap as a write does (else every epoch after the gap from the
        // last success would try again, each serialising the whole log).
        std::fs::remove_dir_all(&dir).unwrap();
        let before = Instant::now();
        log.push_record(rec(2));
        log.flush();
        assert!(log.last_write.is_some_and(|(end, _)| end >= before));
        let why = log.failure().unwrap().to_string();
        assert!(
            why.contains("writing the --metrics log") && why.contains("m.jsonl"),
            "{why}"
        );
        // The file it wrote went with the directory: not "holds".
        let holds = log.what_it_holds();
        assert!(
            holds.ends_with(
                "m.jsonl, written with its epochs up to 1 of 2, was removed or replaced during the run"
            ),
            "{holds}"
        );
        // It comes back. A failed write is retried after the gap a rewrite
        // keeps, not after every epoch: before then, nothing is tried...
        std::fs::create_dir(&dir).unwrap();
        log.last_write = Some((Instant::now(), Duration::from_secs(3600)));
        log.push_record(rec(3));
        assert!(log.failure().is_some());
        assert!(!path.exists());
        // ...and the next epoch after it writes all four.
        log.last_write = Some((Instant::now(), Duration::ZERO));
        log.push_record(rec(4));
        assert!(log.failure().is_none());
        assert_eq!(read(&path).unwrap(), vec![rec(1), rec(2), rec(3), rec(4)]);
    }

    /// A log none of whose writes worked is said to be as it was.
    #[test]
    fn a_log_never_written_is_said_to_be_as_it_was() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("logs");
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("m.jsonl");
        let mut log = MetricsLog::open(&path, 0, false, None, false).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        log.push_record(rec(1));
        assert!(log.failure().is_some());
        let holds = log.what_it_holds();
        assert!(
            holds.ends_with("m.jsonl was never written by this run and is as it was before it"),
            "{holds}"
        );
    }

    /// A byte that is not UTF-8 is named by line and column, as other
    /// faults are, on the first line or a later one.
    #[test]
    fn a_log_that_is_not_text_is_named_by_line() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("m.jsonl");
        let first = to_jsonl(&[rec(1)]);
        for (bytes, says) in [
            (
                [first.as_bytes(), b"\xff\xfe garbage\n"].concat(),
                "line 2: not text (byte 0xff at column 1 is not UTF-8)",
            ),
            (
                b"{\"epoch\xc3\x28\n".to_vec(),
                "line 1: not text (byte 0xc3 at column 8 is not UTF-8)",
            ),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let e = format!("{:#}", read(&path).unwrap_err());
            assert!(
                e.starts_with(&format!(
                    "{} {says}; pass a file written by --metrics",
                    path.display()
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn round_trip() {
        let rs = vec![rec(1), rec(2), rec(3)];
        let text = to_jsonl(&rs);
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains("\"val_loss\":null"));
        assert_eq!(parse(&text, Path::new("m")).unwrap(), rs);
    }

    #[test]
    fn values_no_run_writes_are_refused_by_line() {
        // Each value and bound as a log would write it: short below a
        // million (an f32 lr as typed, not its f64 widening), else with an
        // exponent.
        for (field, v, says) in [
            (
                "train_loss",
                "1.7e308",
                "1.7e308 is outside 0 to 3.4028234663852886e38",
            ),
            (
                "train_loss",
                "-1.0",
                "-1 is outside 0 to 3.4028234663852886e38",
            ),
            (
                "val_loss",
                "-1e308",
                "-1e308 is outside 0 to 3.4028234663852886e38",
            ),
            ("train_accuracy", "1.5", "1.5 is outside 0 to 1:"),
            ("val_accuracy", "-0.1", "-0.1 is outside 0 to 1:"),
            (
                "test_loss",
                "-1.0",
                "-1 is outside 0 to 3.4028234663852886e38",
            ),
            ("test_accuracy", "1.5", "1.5 is outside 0 to 1:"),
            ("lr", "-1", "-1 is outside 0 to 100:"),
            ("lr", "-0.1", "-0.1 is outside 0 to 100:"),
            ("lr", "1000", "1000 is outside 0 to 100:"),
            ("seconds", "-5", "-5 is outside 0 to 1e9:"),
            ("wall_seconds", "-5", "-5 is outside 0 to 1e9:"),
            ("wall_seconds", "5e9", "5e9 is outside 0 to 1e9:"),
        ] {
            let mut text = to_jsonl(&[rec(1), rec(2)]);
            let line = text.lines().nth(1).unwrap().to_string();
            let json: serde_json::Value = serde_json::from_str(&line).unwrap();
            let mut json = json.as_object().unwrap().clone();
            json.insert(field.into(), serde_json::from_str(v).unwrap());
            text = text.replace(&line, &serde_json::to_string(&json).unwrap());
            let e = parse(&text, Path::new("m")).unwrap_err().to_string();
            assert!(e.starts_with(&format!("m line 2: {field} {says}")), "{e}");
            // Only a loss past its bound can have got there by diverging.
            let high = !v.starts_with('-');
            assert_eq!(
                e.contains("diverged"),
                field.ends_with("loss") && high,
                "{e}"
            );
        }
        // The plot of a valid but odd log still draws (a huge but possible
        // loss, up to the largest a run writes), and reads back.
        for loss in [5e8, 1.03e9, f64::from(f32::MAX)] {
            let mut r = rec(1);
            r.val_loss = Some(loss);
            let rs = [r, rec(2)];
            assert_eq!(parse(&to_jsonl(&rs), Path::new("m")).unwrap(), rs);
            assert!(crate::plot::svg(&rs, "t").is_ok());
        }
    }

    #[test]
    fn epochs_out_of_order_or_out_of_range_are_refused_by_line() {
        let cases: [(&[usize], &str); 4] = [
            (&[1, 2, 3, 1, 2, 3], "line 4: epoch 1 after epoch 3"),
            (&[1, 3, 3], "line 3: epoch 3 after epoch 3"),
            (&[0, 1], "line 1: epoch 0:"),
            // Past the limit, not out of order: the one before is not blamed.
            (&[1, 1_000_001], "line 2: epoch 1000001: a log"),
        ];
        for (epochs, says) in cases {
            let records: Vec<EpochRecord> = epochs.iter().map(|&e| rec(e.max(1))).collect();
            let mut text = to_jsonl(&records);
            if epochs[0] == 0 {
                text = text.replacen("\"epoch\":1", "\"epoch\":0", 1);
            }
            let e = parse(&text, Path::new("m")).unwrap_err().to_string();
            assert!(e.contains(says), "{epochs:?}: {e}");
        }
        // Epochs may start past 1 (a log begun on a resumed run) and skip none.
        assert!(parse(&to_jsonl(&[rec(4), rec(5)]), Path::new("m")).is_ok());
        // The last epoch --epochs allows is a valid record.
        let last = [
            rec(crate::config::MAX_EPOCHS - 1),
            rec(crate::config::MAX_EPOCHS),
        ];
        assert!(parse(&to_jsonl(&last), Path::new("m")).is_ok());
    }

    /// A resumed run reads its log and writes it back: the epochs it keeps
    /// must come out byte for byte (serde_json's default float parser is
    /// off in the last digit for values such as 51701 / 55000).
    #[test]
    fn a_log_read_back_is_written_out_unchanged() {
        let mut r = rec(1);
        r.train_accuracy = 51701.0 / 55000.0;
        r.samples_per_sec = 1.0 / 3.0 * 1e5;
        let text = to_jsonl(&[r, rec(2)]);
        assert!(text.contains("0.9400181818181819"), "{text}");
        assert_eq!(to_jsonl(&parse(&text, Path::new("m")).unwrap()), text);
    }

    /// A log an editor saved with a byte-order mark, or with CRLF line
    /// ends, reads as the log it shows; a mark anywhere else is a fault.
    #[test]
    fn a_byte_order_mark_and_crlf_are_read_past() {
        let rs = [rec(1), rec(2)];
        let text = to_jsonl(&rs);
        for edited in [
            format!("\u{feff}{text}"),
            text.replace('\n', "\r\n"),
            format!("\u{feff}{}", text.replace('\n', "\r\n")),
        ] {
            assert_eq!(parse(&edited, Path::new("m")).unwrap(), rs, "{edited:?}");
        }
        let inside = text.replacen('\n', "\n\u{feff}", 1);
        let e = parse(&inside, Path::new("m")).unwrap_err().to_string();
        assert!(
            e.starts_with("m line 2: not a simplenn metrics record"),
            "{e}"
        );
    }

    #[test]
    fn bad_line_is_named() {
        let text = format!("{}not json\n", to_jsonl(&[rec(1)]));
        let e = parse(&text, Path::new("m.jsonl")).unwrap_err().to_string();
        assert!(
            e.starts_with("m.jsonl line 2: not a simplenn metrics record (not JSON at column 2: "),
            "{e}"
        );
        // Said in the log's terms: no "line 1" of serde's own, no type name.
        for (line, says) in [
            (
                "[1,2,3]",
                "(not a JSON object of a record's fields (epoch, train_loss, …))",
            ),
            (
                &format!(
                    "[{}]",
                    to_jsonl(&[rec(1), rec(2)]).trim().replace('\n', ",")
                ),
                "(a JSON array of records, where a log has one record (a JSON object) a line)",
            ),
            ("{\"epoch\":1", "(it ends at column 10, cut short)"),
            ("{\"epoch\":1}", "(train_loss is missing)"),
            // The field named, not serde's "expected usize".
            (
                &to_jsonl(&[rec(1)]).replace("\"epoch\":1", "\"epoch\":1.5"),
                "(epoch is 1.5, where a log has a whole number from 1)",
            ),
            (
                &to_jsonl(&[rec(1)]).replace("\"lr\":0.1", "\"lr\":null"),
                "(lr is null, where a log has a number)",
            ),
            // A field a run may leave out takes null too, and says so.
            (
                &to_jsonl(&[rec(1)]).replace("\"val_loss\":0.25", "\"val_loss\":\"0.25\""),
                "(val_loss is \"0.25\", where a log has a number or null)",
            ),
            // JSON, but past an f32 (or an f64): no run's value.
            (
                "{\"epoch\":1,\"lr\":1e300}",
                "(the number before column 21 is too large for its field, which no run writes)",
            ),
            (
                "{\"epoch\":1,\"seconds\":1e400}",
                "(the number before column 26 is too large for its field, which no run writes)",
            ),
        ] {
            let e = parse(line, Path::new("m.jsonl")).unwrap_err().to_string();
            assert!(e.contains(says) && !e.contains("at line"), "{e}");
        }
    }

    #[test]
    fn resume_keeps_finished_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(&path, to_jsonl(&[rec(1), rec(2), rec(3)])).unwrap();
        let log = MetricsLog::open(&path, 2, true, Some(rec(2).train_loss), false).unwrap();
        assert_eq!(log.records().len(), 2);
        let log = MetricsLog::open(&path, 2, false, None, false).unwrap();
        assert!(log.records().is_empty());
        // Opening writes nothing: the file changes with the first epoch.
        assert_eq!(read(&path).unwrap().len(), 3);
    }

    /// An older simplenn's checkpoint has no loss to compare: a log that
    /// goes past its epoch (maybe another run's, whose later epochs would
    /// be replaced) is refused, with a way that works; one that ends there
    /// is continued.
    #[test]
    fn an_older_checkpoint_takes_only_a_log_that_ends_at_its_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(&path, to_jsonl(&[rec(1), rec(2), rec(3)])).unwrap();
        let e = MetricsLog::open(&path, 2, true, None, false).err().unwrap();
        assert_eq!(
            format!("{e}"),
            format!("--metrics {}: cannot tell that this is the run's log: the checkpoint, from an older simplenn, holds no loss to compare with, and the log's epochs after 2 would be replaced; give --metrics a new file, or a copy of the log that ends at epoch 2", path.display())
        );
        assert_eq!(read(&path).unwrap().len(), 3, "a refused log is left alone");
        std::fs::write(&path, to_jsonl(&[rec(1), rec(2)])).unwrap();
        let log = MetricsLog::open(&path, 2, true, None, false).unwrap();
        assert_eq!(log.records(), [rec(1), rec(2)]);
    }

    /// A log that stops before the checkpoint's epoch is the stopped run's
    /// where the checkpoint names it (its last writes failed on a full
    /// disk), and kept; any other such log is refused, as is one that goes
    /// past the checkpoint's epoch without it.
    #[test]
    fn a_log_cut_short_is_kept_where_the_checkpoint_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(&path, to_jsonl(&[rec(1), rec(2)])).unwrap();
        let loss = Some(0.5 / 4.0);
        let log = MetricsLog::open(&path, 4, true, loss, true).unwrap();
        assert_eq!(log.records(), [rec(1), rec(2)]);
        let e = MetricsLog::open(&path, 4, true, loss, false).err().unwrap();
        assert!(
            format!("{e}").contains("cannot tell that this is the run's log"),
            "{e}"
        );
        std::fs::write(&path, to_jsonl(&[rec(1), rec(2), rec(5)])).unwrap();
        let e = MetricsLog::open(&path, 4, true, loss, true).err().unwrap();
        assert!(
            format!("{e}").contains("cannot tell that this is the run's log"),
            "{e}"
        );
        assert_eq!(read(&path).unwrap().len(), 3, "a refused log is left alone");
    }

    /// Each epoch statistic goes to its own field of the record: the
    /// validation loss is the validation set's (not the test set's), and
    /// the epoch's own seconds and the wall time since the start both go in.
    #[test]
    fn a_record_carries_each_stat_to_its_own_field() {
        let m = Metrics::scored;
        let s = EpochStats {
            epoch: 3,
            train_loss: 0.5,
            train_accuracy: 0.75,
            val: Some(m(100, 0.25, 90)),
            test: Some(m(200, 0.125, 150)),
            lr: 0.05,
            seconds: 2.5,
            wall_seconds: 7.5,
            samples_per_sec: 400.0,
        };
        let r = EpochRecord::from(&s);
        assert_eq!(
            r,
            EpochRecord {
                epoch: 3,
                train_loss: 0.5,
                train_accuracy: 0.75,
                val_loss: Some(0.25),
                val_accuracy: Some(0.9),
                test_loss: Some(0.125),
                test_accuracy: Some(0.75),
                lr: 0.05,
                seconds: 2.5,
                wall_seconds: Some(7.5),
                samples_per_sec: 400.0,
            }
        );
    }

    /// A resumed run may log to a path that holds no log yet (a new
    /// `--metrics` file): it starts empty, and is not read.
    #[test]
    fn a_resumed_run_may_start_a_new_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.jsonl");
        let mut log = MetricsLog::open(&path, 2, true, None, false).unwrap();
        assert!(log.records().is_empty());
        log.push_record(rec(3));
        assert_eq!(read(&path).unwrap(), vec![rec(3)]);
    }
}
