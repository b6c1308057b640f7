//! What a run shows as it goes: the per-epoch line and the progress bar.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::metrics::EpochStats;
use crate::signals;

/// The plain per-epoch line.
pub fn epoch_line(s: &EpochStats, epochs: usize) -> String {
    let width = epochs.to_string().len();
    let val = match &s.val {
        Some(m) => format!(
            "val acc {:>6}%  val loss {}",
            crate::show::percent(m.accuracy()),
            crate::show::loss(m.loss)
        ),
        None => "val -".to_string(),
    };
    let val = match &s.test {
        Some(m) => format!("{val}  test acc {:>6}%", crate::show::percent(m.accuracy())),
        None => val,
    };
    format!(
        "epoch {:>width$}/{epochs}  train loss {:.4}  train acc {:>6}%  {val}  lr {}  {:.2} s  {:.0} samples/s",
        s.epoch,
        s.train_loss,
        crate::show::percent(s.train_accuracy),
        crate::show::rate(s.lr),
        s.seconds,
        s.samples_per_sec,
    )
}

/// Whether standard error is a terminal that says how wide it is. One that
/// says 0 columns (a pseudo-terminal nobody sized: `script` under cron,
/// `docker run -t` from a script) gets no bar: the bar would take it for 79
/// columns, and on a wider window each redraw of its longer line would
/// erase a line above it.
pub(super) fn stderr_is_a_sized_terminal() -> bool {
    std::io::stderr().is_terminal() && (cfg!(not(unix)) || stderr_columns().is_some())
}

/// The terminal's width on standard error, where it says one.
fn stderr_columns() -> Option<usize> {
    #[cfg(unix)]
    {
        rustix::termios::tcgetwinsize(std::io::stderr())
            .ok()
            .map(|w| usize::from(w.ws_col))
            .filter(|&c| c > 0)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The bar's line for a terminal of `columns`, for epochs of `len` steps
/// out of `epochs`: one row, which a line longer than the terminal would
/// not be (each redraw then took two or three rows). The bar takes what
/// the counts and the message leave (indicatif measures the terminal at
/// each draw); below 70 columns the message (`loss 0.1234, 180000
/// samples/s`) goes, below 40 the bar too, then the `epoch E/N` prefix,
/// each as soon as the rest would not fit beside it; on a terminal too
/// narrow for the counts alone there is no line (`None`).
fn bar_template(columns: Option<usize>, len: u64, epochs: usize) -> Option<&'static str> {
    // (template, the fewest columns it is drawn on)
    const TEMPLATES: [(&str, usize); 4] = [
        ("{prefix} [{wide_bar}] {pos}/{len} batches  {msg}", 70),
        ("{prefix} [{wide_bar}] {pos}/{len} batches", 40),
        ("{prefix} {pos}/{len}", 0),
        ("{pos}/{len}", 0),
    ];
    let Some(c) = columns else {
        return Some(TEMPLATES[0].0);
    };
    // A line as wide as the terminal leaves the cursor past its end: one
    // column is spare.
    TEMPLATES
        .into_iter()
        .find(|&(t, least)| c >= least && widest_line(t, len, epochs) < c)
        .map(|(t, _)| t)
}

/// The characters of `template`'s line with a bar of one cell (`[=]`), the
/// counts at their widest and a message of a fast run's width.
fn widest_line(template: &str, len: u64, epochs: usize) -> usize {
    template
        .replace("{prefix}", &format!("epoch {epochs}/{epochs}"))
        .replace("{pos}", &len.to_string())
        .replace("{len}", &len.to_string())
        .replace("{wide_bar}", "=")
        .replace("{msg}", &bar_message(0.0, 1e7))
        .chars()
        .count()
}

/// The bar's message: ASCII only, so that its width is the same in any
/// locale's terminal (a `·` took two columns on a Latin-1 one, and each
/// redraw of the then too-long line left a row behind).
pub(super) fn bar_message(loss: f64, samples_per_sec: f64) -> String {
    format!("loss {loss:.4}, {samples_per_sec:.0} samples/s")
}

/// The epoch's bar, and the width it was fitted to (for [`Bar::refit`]).
pub(super) struct Bar {
    pub bar: ProgressBar,
    columns: Option<usize>,
    len: u64,
    epochs: usize,
}

impl Bar {
    /// Fit the bar to standard error's width now, before an update: a
    /// terminal resized during an epoch gets its width's line at once,
    /// not at the next epoch (the wider line took two or more rows at each
    /// redraw until then), and one that stops saying its width (0
    /// columns) loses the bar, as it gets none at the start.
    pub fn refit(&mut self) {
        if self.columns.is_none() {
            // Not drawn, no width to follow (off unix), or hidden below.
            return;
        }
        let now = stderr_columns();
        if now == self.columns {
            return;
        }
        match now.and_then(|c| bar_template(Some(c), self.len, self.epochs)) {
            Some(template) => {
                self.columns = now;
                self.bar.set_style(style(template));
            }
            // Cleared, and no more draws this epoch (a finished bar's
            // updates would each write the clearing again): the next
            // epoch's bar looks at the terminal afresh.
            None => {
                self.bar.finish_and_clear();
                self.bar.set_draw_target(ProgressDrawTarget::hidden());
                self.columns = None;
            }
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("template is valid")
        .progress_chars("=> ")
}

pub(super) fn progress_bar(show: bool, len: u64, epoch: usize, epochs: usize) -> Bar {
    let columns = stderr_columns();
    // A terminal that says no width gets no bar (see
    // `stderr_is_a_sized_terminal`): it may have lost its size since.
    let template = match show && (cfg!(not(unix)) || columns.is_some()) {
        true => bar_template(columns, len, epochs),
        false => None,
    };
    let Some(template) = template else {
        return Bar {
            bar: ProgressBar::hidden(),
            columns: None,
            len,
            epochs,
        };
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(style(template));
    // Known to the signal handler before its first draw (`set_prefix`
    // draws): a stop's notice then clears the bar rather than run on from
    // the end of its row.
    signals::drawing(&bar);
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    Bar {
        bar,
        columns,
        len,
        epochs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Metrics;

    /// Each template's widest line fits the terminal it is chosen for, with
    /// a column to spare; none is drawn where the counts alone would not fit.
    #[test]
    fn the_bar_line_fits_the_terminal() {
        for (len, epochs) in [(430, 20), (1, 1), (60000, 1000000)] {
            for c in 1..200 {
                match bar_template(Some(c), len, epochs) {
                    Some(t) => assert!(widest_line(t, len, epochs) < c, "{c} columns: {t}"),
                    None => assert!(c <= 2 * len.to_string().len() + 1, "{c} columns"),
                }
            }
        }
        // `430/430` is 7 wide, `epoch 20/20 430/430` 19.
        assert_eq!(bar_template(Some(7), 430, 20), None);
        assert_eq!(bar_template(Some(8), 430, 20), Some("{pos}/{len}"));
        assert_eq!(bar_template(Some(19), 430, 20), Some("{pos}/{len}"));
        assert_eq!(
            bar_template(Some(20), 430, 20),
            Some("{prefix} {pos}/{len}")
        );
        assert!(bar_template(Some(40), 430, 20).is_some_and(|t| t.contains("{wide_bar}")));
        assert!(bar_template(Some(80), 430, 20).is_some_and(|t| t.contains("{msg}")));
        assert!(bar_template(None, 430, 20).is_some_and(|t| t.contains("{msg}")));
    }

    /// The per-epoch line: accuracies as percentages, the test set's only
    /// where it was scored, the epoch number padded to the width of the total.
    #[test]
    fn the_epoch_line_shows_accuracies_as_percentages() {
        let m = Metrics::scored;
        let mut s = EpochStats {
            epoch: 2,
            train_loss: 0.25,
            train_accuracy: 0.5,
            val: Some(m(100, 0.2, 95)),
            test: Some(m(200, 0.1, 150)),
            lr: 0.05,
            seconds: 1.5,
            wall_seconds: 9.0,
            samples_per_sec: 1234.0,
        };
        assert_eq!(
            epoch_line(&s, 10),
            "epoch  2/10  train loss 0.2500  train acc  50.00%  val acc  95.00%  val loss 0.2000  test acc  75.00%  lr 0.0500  1.50 s  1234 samples/s"
        );
        (s.val, s.test) = (None, None);
        assert_eq!(
            epoch_line(&s, 3),
            "epoch 2/3  train loss 0.2500  train acc  50.00%  val -  lr 0.0500  1.50 s  1234 samples/s"
        );
    }
}
