//! Per-epoch statistics, and the metrics log: one JSON object per epoch, one per line (`--metrics`),
//! read back by `simplenn plot`.
//!
//! The whole file is rewritten atomically after every epoch (it is a few
//! kilobytes), so it is never half-written; a resumed run keeps the records
//! of the epochs its checkpoint had finished and drops any after them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
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
    pub lr: f32,
    pub seconds: f64,
    /// Seconds since the run (or its resumed part) started training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
    pub samples_per_sec: f64,
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

/// Parse a metrics log; errors name the file and the line.
pub fn parse(text: &str, what: &Path) -> Result<Vec<EpochRecord>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: EpochRecord = serde_json::from_str(line).map_err(|e| {
            anyhow::anyhow!(
                "{} line {}: not a simplenn metrics record ({e}); pass a file written by --metrics",
                what.display(),
                i + 1
            )
        })?;
        out.push(r);
    }
    Ok(out)
}

/// Read a metrics log written by `--metrics`.
pub fn read(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read metrics {}", path.display()))?;
    let records = parse(&text, path)?;
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
pub struct MetricsLog {
    path: PathBuf,
    records: Vec<EpochRecord>,
}

impl MetricsLog {
    /// Start a log at `path`. When `resuming`, records of epochs up to
    /// `done_epochs` already in the file are kept and later ones dropped.
    pub fn open(path: &Path, done_epochs: usize, resuming: bool) -> Result<Self> {
        let mut records = Vec::new();
        if resuming && path.exists() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read metrics {}", path.display()))?;
            records = parse(&text, path)?;
            records.retain(|r| r.epoch <= done_epochs);
        }
        let log = MetricsLog {
            path: path.to_owned(),
            records,
        };
        log.write()?; // fail now, not after the first epoch, on a bad path
        Ok(log)
    }

    /// Add an epoch and rewrite the file.
    pub fn push(&mut self, stats: &EpochStats) -> Result<()> {
        self.records.push(stats.into());
        self.write()
    }

    pub fn records(&self) -> &[EpochRecord] {
        &self.records
    }

    fn write(&self) -> Result<()> {
        write_atomic(&self.path, to_jsonl(&self.records).as_bytes())
            .with_context(|| "writing the --metrics log".to_string())
    }
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

    #[test]
    fn round_trip() {
        let rs = vec![rec(1), rec(2), rec(3)];
        let text = to_jsonl(&rs);
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains("\"val_loss\":null"));
        assert_eq!(parse(&text, Path::new("m")).unwrap(), rs);
    }

    #[test]
    fn bad_line_is_named() {
        let text = format!("{}not json\n", to_jsonl(&[rec(1)]));
        let e = parse(&text, Path::new("m.jsonl")).unwrap_err().to_string();
        assert!(
            e.starts_with("m.jsonl line 2: not a simplenn metrics record"),
            "{e}"
        );
    }

    #[test]
    fn resume_keeps_finished_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(&path, to_jsonl(&[rec(1), rec(2), rec(3)])).unwrap();
        let log = MetricsLog::open(&path, 2, true).unwrap();
        assert_eq!(log.records().len(), 2);
        assert_eq!(read(&path).unwrap().len(), 2);
        let log = MetricsLog::open(&path, 2, false).unwrap();
        assert!(log.records().is_empty());
        assert!(read(&path).is_err()); // empty log
    }
}
