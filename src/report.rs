//! What `simplenn eval` prints: accuracy, per-class precision and recall,
//! and the confusion matrix, as aligned text or as one JSON object.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::data::CLASSES;
use crate::eval::Metrics;

/// Per-class scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassScore {
    pub class: usize,
    pub precision: f64,
    pub recall: f64,
    /// Images of this class in the set.
    pub support: u64,
    /// Images predicted as this class.
    pub predicted: u64,
}

/// An evaluation, ready to print or serialize.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub hidden: usize,
    pub data: String,
    pub images: usize,
    pub correct: usize,
    pub accuracy: f64,
    pub loss: f64,
    pub classes: Vec<ClassScore>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
}

impl EvalReport {
    pub fn new(model: &Path, hidden: usize, data: &Path, m: &Metrics) -> Self {
        EvalReport {
            model: model.display().to_string(),
            hidden,
            data: data.display().to_string(),
            images: m.n,
            correct: m.correct,
            accuracy: m.accuracy(),
            loss: m.loss,
            classes: (0..CLASSES)
                .map(|c| ClassScore {
                    class: c,
                    precision: m.precision(c),
                    recall: m.recall(c),
                    support: m.confusion[c].iter().sum(),
                    predicted: (0..CLASSES).map(|t| m.confusion[t][c]).sum(),
                })
                .collect(),
            confusion: m.confusion.iter().map(|r| r.to_vec()).collect(),
        }
    }

    /// One JSON object on one line.
    pub fn to_json(&self) -> String {
        // A struct of numbers and strings always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Aligned tables for a terminal.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "model {} (784-{}-10) on the test set in {}: {} images",
            self.model, self.hidden, self.data, self.images
        );
        let _ = writeln!(
            s,
            "accuracy {:.2}% ({} / {}), loss {:.4}",
            100.0 * self.accuracy,
            self.correct,
            self.images,
            self.loss
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "digit  precision   recall  images  predicted");
        for c in &self.classes {
            let _ = writeln!(
                s,
                "{:>5}  {:>8.2}%  {:>6.2}%  {:>6}  {:>9}",
                c.class,
                100.0 * c.precision,
                100.0 * c.recall,
                c.support,
                c.predicted
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "confusion matrix: rows are true digits, columns predicted"
        );
        let width = self
            .confusion
            .iter()
            .flatten()
            .map(|v| v.to_string().len())
            .max()
            .unwrap_or(1)
            .max(2);
        let _ = write!(s, "true\\pred");
        for c in 0..self.confusion.len() {
            let _ = write!(s, " {c:>width$}");
        }
        let _ = writeln!(s);
        for (t, row) in self.confusion.iter().enumerate() {
            let _ = write!(s, "{t:>9}");
            for v in row {
                let _ = write!(s, " {v:>width$}");
            }
            let _ = writeln!(s);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        let mut confusion = [[0u64; CLASSES]; CLASSES];
        for (c, row) in confusion.iter_mut().enumerate() {
            row[c] = 100 + c as u64;
        }
        confusion[3][5] = 7; // seven 3s read as 5
        let n = confusion.iter().flatten().sum::<u64>() as usize;
        Metrics {
            n,
            loss: 0.1,
            correct: n - 7,
            confusion,
        }
    }

    #[test]
    fn text_is_aligned() {
        let r = EvalReport::new(Path::new("m"), 32, Path::new("d"), &metrics());
        let text = r.to_text();
        let rows: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("true"))
            .collect();
        assert_eq!(rows.len(), 11);
        assert!(rows.iter().all(|l| l.len() == rows[0].len()), "{text}");
        assert!(rows[4].contains("  7 "), "{}", rows[4]);
        let class_rows: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("digit"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(class_rows.len(), 10);
        assert!(class_rows.iter().all(|l| l.len() == class_rows[0].len()));
    }

    #[test]
    fn json_has_everything() {
        let m = metrics();
        let r = EvalReport::new(Path::new("m"), 32, Path::new("d"), &m);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["images"], m.n);
        assert_eq!(v["confusion"][3][5], 7);
        assert_eq!(v["classes"].as_array().unwrap().len(), 10);
        assert_eq!(v["classes"][5]["precision"], m.precision(5));
        assert_eq!(v["classes"][3]["recall"], m.recall(3));
    }
}
