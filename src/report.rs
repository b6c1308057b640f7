//! What `simplenn eval` prints: accuracy, per-class precision and recall,
//! and the confusion matrix, as aligned text or as one JSON object.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::classes::ClassNames;
use crate::eval::Metrics;
use crate::model::Dims;

/// Above this many classes the text report lists the most-confused pairs
/// instead of the whole confusion matrix (JSON always has the matrix).
pub const MATRIX_MAX_CLASSES: usize = 20;

/// How many most-confused pairs the text report lists.
pub const CONFUSED_PAIRS: usize = 10;

/// Per-class scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassScore {
    pub class: usize,
    /// The class's name, where the model or `--class-names` gives names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
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
    /// The widths, `784-256-10`.
    pub network: String,
    /// Hidden widths (empty for softmax regression).
    pub hidden: Vec<usize>,
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
    /// The report of `m`, the metrics of `model` (`dims`) on the data in `data`.
    pub fn new(model: &Path, dims: &Dims, data: &Path, m: &Metrics) -> Self {
        let k = m.classes();
        EvalReport {
            model: model.display().to_string(),
            network: dims.name(),
            hidden: dims.hidden().to_vec(),
            data: data.display().to_string(),
            images: m.n,
            correct: m.correct,
            accuracy: m.accuracy(),
            loss: m.loss,
            classes: (0..k)
                .map(|c| ClassScore {
                    class: c,
                    name: None,
                    precision: m.precision(c),
                    recall: m.recall(c),
                    support: m.confusion[c].iter().sum(),
                    predicted: (0..k).map(|t| m.confusion[t][c]).sum(),
                })
                .collect(),
            confusion: m.confusion.clone(),
        }
    }

    /// The same report with each class's name beside its number.
    pub fn with_names(mut self, names: Option<&ClassNames>) -> Self {
        if let Some(n) = names {
            for c in &mut self.classes {
                c.name = n.name(c.class).map(str::to_string);
            }
        }
        self
    }

    /// Whether the classes have names (which may take no columns: a name
    /// of combining marks alone).
    fn named(&self) -> bool {
        self.classes.iter().any(|c| c.name.is_some())
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
            "model {} ({}) on the test set in {}: {}",
            crate::show::one_line(&self.model),
            self.network,
            crate::show::one_line(&self.data),
            crate::show::count(self.images, "image")
        );
        let _ = writeln!(
            s,
            "accuracy {}% ({} / {}), loss {}",
            crate::show::percent(self.accuracy),
            self.correct,
            self.images,
            crate::show::loss(self.loss)
        );
        let _ = writeln!(s);
        // Past the full matrix's size, a class with no images and no
        // predictions (EMNIST's unused label 0, a model of 256 classes on
        // data of 3) is a row of nothing: such rows are named in one line.
        let many = self.confusion.len() > MATRIX_MAX_CLASSES;
        let folded = |c: &ClassScore| many && c.support == 0 && c.predicted == 0;
        // Names (when given) beside the numbers, padded to the longest of
        // the rows shown (and to the column's heading).
        // Padded by the columns a terminal gives each name, not by its
        // characters: a wide script's character (Kuzushiji-MNIST's
        // hiragana) takes two, a zero-width joiner none.
        let shown = || self.classes.iter().filter(|c| !folded(c));
        let nw = match shown().any(|c| c.name.is_some()) {
            true => shown()
                .map(|c| c.name.as_deref().map_or(0, columns))
                .fold("name".len(), usize::max),
            false => 0,
        };
        let name = |c: &ClassScore| match &c.name {
            Some(n) => format!("{n}{:pad$}  ", "", pad = nw.saturating_sub(columns(n))),
            None => String::new(),
        };
        let head = if nw > 0 {
            format!("{:<nw$}  ", "name")
        } else {
            String::new()
        };
        let _ = writeln!(s, "class  {head}precision   recall  images  predicted");
        // A share of nothing (a class never predicted, or absent from the
        // set) is no score: `n/a` here, 0 in the JSON as scikit-learn's
        // default has it.
        let pct = |v: f64, of: u64, width: usize| match of {
            0 => format!("{:>w$}", "n/a", w = width + 1),
            _ => format!("{:>width$}%", crate::show::percent(v)),
        };
        let mut empty = Vec::new();
        for c in &self.classes {
            if folded(c) {
                empty.push(c.class);
                continue;
            }
            let _ = writeln!(
                s,
                "{:>5}  {}{}  {}  {:>6}  {:>9}",
                c.class,
                name(c),
                pct(c.precision, c.predicted, 8),
                pct(c.recall, c.support, 6),
                c.support,
                c.predicted
            );
        }
        match empty.len() {
            0 => {}
            1 => {
                let _ = writeln!(s, "(class {}: no images, none predicted)", empty[0]);
            }
            n => {
                let _ = writeln!(
                    s,
                    "({n} classes with no images and none predicted: {})",
                    crate::show::ranges(&empty)
                );
            }
        }
        let _ = writeln!(s);
        if self.confusion.len() > MATRIX_MAX_CLASSES {
            self.confused_pairs(&mut s);
            return s;
        }
        let _ = writeln!(
            s,
            "confusion matrix: rows are true classes, columns predicted"
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

    /// The largest off-diagonal cells of the confusion matrix.
    fn confused_pairs(&self, s: &mut String) {
        let mut pairs: Vec<(u64, usize, usize)> = self
            .confusion
            .iter()
            .enumerate()
            .flat_map(|(t, row)| row.iter().enumerate().map(move |(p, &v)| (v, t, p)))
            .filter(|&(v, t, p)| t != p && v > 0)
            .collect();
        // Most first; ties in (true, predicted) order.
        pairs.sort_by(|a, b| b.0.cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        pairs.truncate(CONFUSED_PAIRS);
        let _ = writeln!(
            s,
            "most confused ({} classes: the full matrix is in --json)",
            self.confusion.len()
        );
        if pairs.is_empty() {
            let _ = writeln!(s, "none: every image was classified correctly");
            return;
        }
        let named = self.named();
        let _ = writeln!(
            s,
            " true  predicted  images  of true{}",
            if named { "  names" } else { "" }
        );
        for (v, t, p) in pairs {
            let share = v as f64 / self.classes[t].support.max(1) as f64;
            let _ = write!(
                s,
                "{t:>5}  {p:>9}  {v:>6}  {:>6}%",
                crate::show::percent(share)
            );
            if let (Some(tn), Some(pn)) = (&self.classes[t].name, &self.classes[p].name) {
                let _ = write!(s, "  {tn} read as {pn}");
            }
            let _ = writeln!(s);
        }
    }
}

/// The terminal columns `text` takes (East Asian wide characters two,
/// combining and zero-width ones none).
fn columns(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        let mut confusion = vec![vec![0u64; 10]; 10];
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

    /// The text report's table whose heading starts `head`: the heading
    /// and its rows, up to the blank line after them.
    fn table<'a>(text: &'a str, head: &str) -> Vec<&'a str> {
        text.lines()
            .skip_while(|l| !l.starts_with(head))
            .take_while(|l| !l.is_empty())
            .collect()
    }

    /// [`metrics`]'s report as text, with the ten `names` read from a
    /// names file as `--class-names` reads them.
    fn named_text(names: &[String]) -> String {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), names.join("\n")).unwrap();
        let names = ClassNames::read(f.path(), 10).unwrap();
        let m = metrics();
        let r = EvalReport::new(Path::new("m"), &Dims::mnist(&[32]), Path::new("d"), &m);
        r.with_names(Some(&names)).to_text()
    }

    /// Names shorter than their column's heading still line up.
    #[test]
    fn short_names_are_aligned() {
        let names: Vec<String> = (0..10).map(|c| format!("{}", (b'a' + c) as char)).collect();
        let text = named_text(&names);
        let rows = table(&text, "class");
        assert_eq!(rows.len(), 11, "{text}");
        assert_eq!(
            rows[0],
            "class  name  precision   recall  images  predicted"
        );
        assert!(rows[1].starts_with("    0  a     "), "{text}");
        assert!(rows.iter().all(|l| l.len() == rows[0].len()), "{text}");
    }

    /// Names in a wide script (two columns a character) or with a
    /// zero-width joiner line up as a terminal shows them.
    #[test]
    fn names_line_up_by_the_columns_they_take() {
        let mut names: Vec<String> = (0..10).map(|c| format!("n{c}")).collect();
        names[3] = "を (wo)".into();
        names[4] = "a\u{200d}b".into();
        // The table's rows, after checking its heading and that every row
        // takes as many columns as the heading.
        let aligned = |names: &[String], heading: &str| -> Vec<String> {
            let text = named_text(names);
            let rows = table(&text, "class");
            assert_eq!(rows[0], heading);
            assert!(
                rows.iter().all(|l| columns(l) == columns(rows[0])),
                "{text}"
            );
            rows.iter().map(|r| r.to_string()).collect()
        };
        // "を (wo)" takes 7 columns, the widest name.
        let rows = aligned(
            &names,
            "class  name     precision   recall  images  predicted",
        );
        assert!(rows[4].starts_with("    3  を (wo)  "), "{rows:?}");
        assert!(rows[5].starts_with("    4  a\u{200d}b      "), "{rows:?}");
        // Names that take no columns at all (combining marks alone) still
        // have their column and its heading.
        let marks: Vec<String> = (0..10)
            .map(|c| char::from_u32(0x300 + c).unwrap().to_string())
            .collect();
        aligned(&marks, "class  name  precision   recall  images  predicted");
    }

    #[test]
    fn text_is_aligned() {
        let r = EvalReport::new(
            Path::new("m"),
            &Dims::mnist(&[32]),
            Path::new("d"),
            &metrics(),
        );
        let text = r.to_text();
        let rows = table(&text, "true");
        assert_eq!(rows.len(), 11);
        assert!(rows.iter().all(|l| l.len() == rows[0].len()), "{text}");
        assert!(rows[4].contains("  7 "), "{}", rows[4]);
        let class_rows = &table(&text, "class")[1..];
        assert_eq!(class_rows.len(), 10);
        assert!(class_rows.iter().all(|l| l.len() == class_rows[0].len()));
    }

    #[test]
    fn json_has_everything() {
        let m = metrics();
        let r = EvalReport::new(Path::new("m"), &Dims::mnist(&[32]), Path::new("d"), &m);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["images"], m.n);
        assert_eq!(v["confusion"][3][5], 7);
        assert_eq!(v["classes"].as_array().unwrap().len(), 10);
        // By hand: seven 3s read as 5 lower 5's precision and 3's recall.
        let c = |class: usize, field: &str| v["classes"][class][field].as_f64().unwrap();
        assert_eq!(c(5, "precision"), 105.0 / 112.0);
        assert_eq!(c(3, "recall"), 103.0 / 110.0);
        assert_eq!((c(3, "precision"), c(5, "recall")), (1.0, 1.0));
        assert_eq!(v["network"], "784-32-10");
    }

    /// A class absent from the set and never predicted has no precision
    /// and no recall: `n/a` in the table, whose columns stay aligned, and
    /// 0 in the JSON.
    #[test]
    fn shares_of_nothing_read_n_a() {
        let confusion = vec![vec![5, 0, 0], vec![1, 4, 0], vec![0, 0, 0]];
        let m = Metrics {
            n: 10,
            loss: 0.3,
            correct: 9,
            confusion,
        };
        let r = EvalReport::new(Path::new("m"), &Dims::new(4, &[], 3), Path::new("d"), &m);
        let text = r.to_text();
        let rows = &table(&text, "class")[1..];
        assert!(
            rows[2].starts_with("    2        n/a      n/a       0          0"),
            "{text}"
        );
        assert!(
            !rows[0].contains("n/a") && rows[0].contains("83.33%"),
            "{text}"
        );
        assert!(rows.iter().all(|l| l.len() == rows[0].len()), "{text}");
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["classes"][2]["precision"], 0.0);
    }

    #[test]
    fn many_classes_list_the_most_confused_pairs() {
        let k = 26;
        let mut confusion = vec![vec![0u64; k]; k];
        for (c, row) in confusion.iter_mut().enumerate() {
            row[c] = 50;
        }
        confusion[8][1] = 9; // the largest confusion
        confusion[2][25] = 4;
        let n = confusion.iter().flatten().sum::<u64>() as usize;
        let m = Metrics {
            n,
            loss: 0.3,
            correct: 50 * k,
            confusion,
        };
        let r = EvalReport::new(Path::new("m"), &Dims::new(64, &[], k), Path::new("d"), &m);
        let text = r.to_text();
        assert!(!text.contains("confusion matrix"), "{text}");
        let pairs: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with(" true"))
            .skip(1)
            .collect();
        assert_eq!(pairs.len(), 2, "{text}");
        assert!(
            pairs[0].split_whitespace().eq(["8", "1", "9", "15.25%"]),
            "{}",
            pairs[0]
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["confusion"].as_array().unwrap().len(), k);
        assert_eq!(v["confusion"][2][25], 4);
    }

    /// The name column fits the rows shown: names of the classes folded
    /// into one line (no images, none predicted) do not widen it.
    #[test]
    fn folded_classes_do_not_widen_the_name_column() {
        let k = 256;
        let mut confusion = vec![vec![0u64; k]; k];
        confusion[0][0] = 25;
        confusion[255][255] = 25;
        let m = Metrics {
            n: 50,
            loss: 0.1,
            correct: 50,
            confusion,
        };
        let f = tempfile::NamedTempFile::new().unwrap();
        let names: Vec<String> = (0..k)
            .map(|c| match c {
                0 | 255 => format!("c{c}"),
                _ => format!("unused class number {c:>20}"),
            })
            .collect();
        std::fs::write(f.path(), names.join("\n")).unwrap();
        let names = ClassNames::read(f.path(), k).unwrap();
        let r = EvalReport::new(Path::new("m"), &Dims::new(64, &[], k), Path::new("d"), &m);
        let text = r.with_names(Some(&names)).to_text();
        let rows = table(&text, "class");
        assert_eq!(
            rows[0], "class  name  precision   recall  images  predicted",
            "{text}"
        );
        assert!(rows[1].starts_with("    0  c0    "), "{text}");
        assert!(rows[2].starts_with("  255  c255  "), "{text}");
    }

    /// The `predicted` column counts the images predicted as each class (a
    /// column sum of the matrix), `images` those of the class (a row sum).
    #[test]
    fn support_and_predicted_count_rows_and_columns() {
        let m = metrics();
        let r = EvalReport::new(Path::new("m"), &Dims::mnist(&[32]), Path::new("d"), &m);
        let (three, five) = (&r.classes[3], &r.classes[5]);
        assert_eq!((three.support, three.predicted), (110, 103));
        assert_eq!((five.support, five.predicted), (105, 112));
    }

    /// Twenty classes still show the whole matrix; above that, at most ten
    /// pairs are listed, the largest first and ties in (true, predicted) order.
    #[test]
    fn the_matrix_up_to_twenty_classes_then_ten_pairs_in_order() {
        let report = |k: usize, confusion: Vec<Vec<u64>>| {
            let n = confusion.iter().flatten().sum::<u64>() as usize;
            let m = Metrics {
                n,
                loss: 0.3,
                correct: (0..k).map(|c| confusion[c][c] as usize).sum(),
                confusion,
            };
            EvalReport::new(Path::new("m"), &Dims::new(64, &[], k), Path::new("d"), &m).to_text()
        };
        let diagonal = |k: usize| {
            (0..k)
                .map(|c| (0..k).map(|p| if p == c { 50 } else { 0 }).collect())
                .collect::<Vec<Vec<u64>>>()
        };
        let text = report(MATRIX_MAX_CLASSES, diagonal(MATRIX_MAX_CLASSES));
        assert!(text.contains("confusion matrix"), "{text}");
        // Thirteen confused pairs of 21 classes: one of 5 images, twelve
        // tied at 3, listed from the true class 0 up.
        let k = MATRIX_MAX_CLASSES + 1;
        let mut confusion = diagonal(k);
        for (t, row) in confusion.iter_mut().enumerate().take(12) {
            row[t + 1] = 3;
        }
        confusion[19][1] = 5;
        let text = report(k, confusion);
        let pairs: Vec<Vec<&str>> = text
            .lines()
            .skip_while(|l| !l.starts_with(" true"))
            .skip(1)
            .map(|l| l.split_whitespace().take(3).collect())
            .collect();
        assert_eq!(pairs.len(), CONFUSED_PAIRS, "{text}");
        assert_eq!(pairs[0], ["19", "1", "5"]);
        assert_eq!(pairs[1], ["0", "1", "3"]);
        assert_eq!(pairs[9], ["8", "9", "3"]);

        // Classes with no images and none predicted: one line, not rows,
        // past the full matrix's size; rows up to it.
        let mut confusion = diagonal(30);
        for c in [0, 21, 22, 23, 29] {
            confusion[c][c] = 0;
        }
        confusion[29][3] = 2;
        let text = report(30, confusion);
        let rows = |t: &str| t.lines().filter(|l| l.ends_with(" 0          0")).count();
        assert_eq!(rows(&text), 0, "{text}");
        assert!(
            text.contains("(4 classes with no images and none predicted: 0, 21–23)\n"),
            "{text}"
        );
        let row = |c: &str| {
            text.lines()
                .find(|l| l.split_whitespace().next() == Some(c))
        };
        let words = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(words(row("29").unwrap()), ["29", "n/a", "0.00%", "2", "0"]);
        let mut confusion = diagonal(MATRIX_MAX_CLASSES);
        confusion[7][7] = 0;
        let text = report(MATRIX_MAX_CLASSES, confusion);
        assert!(
            !text.contains("none predicted") && rows(&text) == 1,
            "{text}"
        );
        // One such class is named as one.
        let mut confusion = diagonal(30);
        confusion[5][5] = 0;
        let text = report(30, confusion);
        assert!(
            text.contains("\n(class 5: no images, none predicted)\n"),
            "{text}"
        );
        // The matrix's columns are two wide at the least: one-digit counts
        // line up under class numbers up to 19.
        let text = report(3, vec![vec![1, 0, 0], vec![0, 2, 0], vec![0, 0, 3]]);
        assert!(text.contains("\ntrue\\pred  0  1  2\n"), "{text}");
        assert!(text.contains("\n        1  0  2  0\n"), "{text}");
    }
}
