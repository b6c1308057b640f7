//! `simplenn plot`: loss and accuracy against epoch, from a `--metrics` log,
//! as an SVG (plotters; text is SVG `<text>`, so no font files are needed).

use std::path::Path;

use anyhow::{bail, Result};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::metrics::EpochRecord;

/// Size of the picture, in SVG pixels.
pub const SIZE: (u32, u32) = (1100, 480);

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VAL: RGBColor = RGBColor(214, 39, 40);
/// The test set's, where the log has it (`--test-every-epoch`).
const TEST: RGBColor = RGBColor(44, 160, 44);

/// Most points of a line drawn with a dot at each: at 3 px a dot, this
/// many fill a panel's ~480 px of width.
const MARKED: usize = 150;

/// Columns a line is thinned to: about two per pixel of a panel's width.
const COLUMNS: usize = 1000;

/// `pts` (ascending `x`) as at most about `2 · COLUMNS` points: in each of
/// [`COLUMNS`] equal spans of `x`, its lowest and highest point, in the
/// order of their epochs. The line keeps its envelope (every spike and
/// dip), which is all that shows of more points than there are pixels,
/// and a long log's picture stays small. Shorter lines are drawn whole.
fn thinned(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if pts.len() <= 2 * COLUMNS {
        return pts.to_vec();
    }
    let (x0, x1) = (pts[0].0, pts[pts.len() - 1].0);
    let column = |x: f64| (((x - x0) / (x1 - x0) * COLUMNS as f64) as usize).min(COLUMNS - 1);
    let mut out = Vec::with_capacity(2 * COLUMNS);
    for run in pts.chunk_by(|a, b| column(a.0) == column(b.0)) {
        let lo = run.iter().min_by(|a, b| a.1.total_cmp(&b.1)).copied();
        let hi = run.iter().max_by(|a, b| a.1.total_cmp(&b.1)).copied();
        let (Some(lo), Some(hi)) = (lo, hi) else {
            continue;
        };
        match lo.0.total_cmp(&hi.0) {
            std::cmp::Ordering::Less => out.extend([lo, hi]),
            std::cmp::Ordering::Greater => out.extend([hi, lo]),
            std::cmp::Ordering::Equal => out.push(lo),
        }
    }
    out
}

/// Draw `records` as an SVG document: loss on the left, accuracy on the right.
pub fn svg(records: &[EpochRecord], title: &str) -> Result<String> {
    if records.is_empty() {
        bail!("no epochs to plot");
    }
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root.titled(title, ("sans-serif", 22)).map_err(plot_err)?;
        let (left, right) = root.split_horizontally(SIZE.0 / 2);
        let series = |f: fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
            records
                .iter()
                .filter_map(|r| f(r).filter(|v| v.is_finite()).map(|v| (r.epoch as f64, v)))
                .collect()
        };
        panel(
            &left,
            "loss",
            "cross-entropy loss",
            &[
                ("train loss", TRAIN, series(|r| Some(r.train_loss))),
                ("validation loss", VAL, series(|r| r.val_loss)),
                ("test loss", TEST, series(|r| r.test_loss)),
            ],
            records,
        )?;
        panel(
            &right,
            "accuracy",
            "accuracy (%)",
            &[
                (
                    "train accuracy",
                    TRAIN,
                    series(|r| Some(100.0 * r.train_accuracy)),
                ),
                (
                    "validation accuracy",
                    VAL,
                    series(|r| r.val_accuracy.map(|a| 100.0 * a)),
                ),
                (
                    "test accuracy",
                    TEST,
                    series(|r| r.test_accuracy.map(|a| 100.0 * a)),
                ),
            ],
            records,
        )?;
        root.present().map_err(plot_err)?;
    }
    Ok(text)
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("cannot draw the plot: {e:?}")
}

/// A named, coloured line of `(epoch, value)` points.
type Line<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// The legend's places: (position, on the right, at the top).
const CORNERS: [(SeriesLabelPosition, bool, bool); 4] = [
    (SeriesLabelPosition::UpperRight, true, true),
    (SeriesLabelPosition::LowerRight, true, false),
    (SeriesLabelPosition::UpperLeft, false, true),
    (SeriesLabelPosition::LowerLeft, false, false),
];

/// The index in [`CORNERS`] whose corner of the chart (about what the
/// legend covers) the `lines` cross least, counting each point and each
/// segment's midpoint; on a tie, `preferred` (loss's upper right,
/// accuracy's lower right, where their curves usually leave room), then
/// the others in order.
fn legend_corner(
    lines: &[Line<'_>],
    (x0, x1): (f64, f64),
    fy: &dyn Fn(f64) -> f64,
    preferred: usize,
) -> usize {
    let marks: Vec<(f64, f64)> = lines
        .iter()
        .flat_map(|(_, _, pts)| {
            let mids = pts
                .windows(2)
                .map(|w| ((w[0].0 + w[1].0) / 2.0, (w[0].1 + w[1].1) / 2.0));
            pts.iter().copied().chain(mids)
        })
        .collect();
    let under = |&(_, right, upper): &(SeriesLabelPosition, bool, bool)| {
        marks
            .iter()
            .filter(|&&(x, y)| {
                let fx = (x - x0) / (x1 - x0);
                let fy = fy(y);
                (if right { fx > 0.55 } else { fx < 0.45 })
                    && (if upper { fy > 0.7 } else { fy < 0.3 })
            })
            .count()
    };
    std::iter::once(preferred)
        .chain((0..CORNERS.len()).filter(|&i| i != preferred))
        .min_by_key(|&i| under(&CORNERS[i]))
        .unwrap_or(preferred)
}

fn panel(
    area: &Area<'_>,
    caption: &str,
    y_label: &str,
    lines: &[Line<'_>],
    records: &[EpochRecord],
) -> Result<()> {
    let first = records.iter().map(|r| r.epoch).min().unwrap_or(1) as f64;
    let last = records.iter().map(|r| r.epoch).max().unwrap_or(1) as f64;
    let (x0, x1) = if last > first {
        (first, last)
    } else {
        (first - 0.5, last + 0.5)
    };
    let ys = lines.iter().flat_map(|(_, _, pts)| pts.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    let accuracy = y_label.starts_with("acc");
    // Losses over more than two orders of magnitude (a train loss that
    // falls to 1e-4 beside a validation loss of 0.1, a run that diverged)
    // on a log scale: on a linear one all but the largest lie on its 0.
    // (Not below LOG_FLOOR: plotters labels no tick under f64's epsilon,
    // and a span past f64's range, 1e-308 to 1, never ends its ticks.)
    if !accuracy && lo >= LOG_FLOOR && hi / lo > LOG_RATIO {
        let (y0, y1) = (lo / 1.5, hi * 1.5);
        let label = format!("{y_label} (log scale)");
        let chart = builder(area, caption, 75)
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(plot_err)?;
        let fy = |y: f64| (y.log10() - y0.log10()) / (y1.log10() - y0.log10());
        let at = Axes {
            x: (x0, x1),
            fy: &fy,
            label: &label,
            decimals: None,
        };
        return draw(chart, at, caption, lines, (first, last));
    }
    // A flat curve still gets a readable span: half a percentage point of
    // accuracy, or a twentieth of the loss; neither axis goes past what its
    // quantity can be (a loss below 0, an accuracy above 100 %).
    let least = if accuracy {
        0.5
    } else {
        (hi.abs() * 0.05).max(1e-6)
    };
    let pad = ((hi - lo) * 0.08).max(least);
    let (y0, y1) = if lo.is_finite() {
        let top = if accuracy { 100.0 } else { f64::INFINITY };
        ((lo - pad).max(0.0), (hi + pad).min(top))
    } else {
        (0.0, 1.0)
    };
    // Enough decimals that ticks about a tenth of the span apart read
    // differently (and the usual 1 for percent, 3 for loss at least).
    let needed = -((y1 - y0) / 10.0).log10().floor() as i32;
    // (Losses in the hundreds and up, as a diverging run logs, need none:
    // `1000000000.000` says nothing more than `1000000000`.)
    let fewest = match (accuracy, y1 >= 100.0) {
        (true, _) => 1,
        (false, false) => 3,
        (false, true) => 0,
    };
    // Past a million, ticks as a log scale's, `3.25e38`: written out, a
    // loss near f32's largest made a label of 39 digits.
    let decimals = (y1 < 1e6).then(|| needed.clamp(fewest, 12) as usize);
    // Room for the longest tick label beside the axis's title (13-px
    // digits are under 8 px wide), and past the right edge for half of the
    // last epoch's label (seven digits at a million epochs).
    let widest = [y0, y1]
        .iter()
        .map(|v| tick_label(*v, decimals).len() as u32)
        .max()
        .unwrap_or(5);
    let chart = builder(area, caption, 65.max(25 + 8 * widest))
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(plot_err)?;
    let fy = |y: f64| (y - y0) / (y1 - y0);
    let at = Axes {
        x: (x0, x1),
        fy: &fy,
        label: y_label,
        decimals,
    };
    draw(chart, at, caption, lines, (first, last))
}

/// A panel's chart with its caption and margins, `y_labels` pixels left
/// of its vertical axis; its coordinates (a linear or a log axis) are the
/// caller's.
fn builder<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    y_labels: u32,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(area);
    b.caption(caption, ("sans-serif", 18))
        .margin(12)
        .margin_right(30)
        .x_label_area_size(45)
        .y_label_area_size(y_labels);
    b
}

/// Past this ratio of the largest to the smallest loss, the loss axis is
/// logarithmic.
const LOG_RATIO: f64 = 100.0;
/// The smallest loss a log axis reaches (an f32 loss is seldom below
/// 1e-8); a smaller one is drawn on a linear axis.
const LOG_FLOOR: f64 = 1e-15;

/// What [`draw`] needs of a panel's axes: the epochs' span, where a value
/// falls on the vertical axis (0 at its foot, 1 at its top), its title,
/// and the decimals of its ticks (`None`: as a log scale's, each as short
/// as it can be written).
struct Axes<'a> {
    x: (f64, f64),
    fy: &'a dyn Fn(f64) -> f64,
    label: &'a str,
    decimals: Option<usize>,
}

/// A log scale's tick: `0.05`, `2`, `1e-5`, to 6 significant digits (the
/// scale's powers of ten come out as `9.99999999999e-5`).
fn log_tick(v: f64) -> String {
    let v: f64 = format!("{v:.5e}").parse().unwrap_or(v);
    match v {
        v if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) => format!("{v:e}"),
        v => format!("{v}"),
    }
}

/// A tick's label: with `decimals` decimals, or as a log scale's.
fn tick_label(v: f64, decimals: Option<usize>) -> String {
    match decimals {
        Some(d) => format!("{v:.d$}"),
        None => log_tick(v),
    }
}

/// Draw the mesh, `lines` and the legend on `chart`, of a linear or a log
/// vertical axis.
fn draw<'a, Y>(
    mut chart: ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    at: Axes<'_>,
    caption: &str,
    lines: &[Line<'_>],
    (first, last): (f64, f64),
) -> Result<()>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let integer_epochs = (last - first) as usize + 1;
    let tick = |v: &f64| tick_label(*v, at.decimals);
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(at.label)
        .x_labels(integer_epochs.min(12))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&tick)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(plot_err)?;
    for (name, colour, pts) in lines {
        if pts.is_empty() {
            continue;
        }
        let colour = *colour;
        let pts = &thinned(pts);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(plot_err)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        // A dot an epoch while the dots stay apart; past that they would
        // merge into a band (and 100,000 epochs made a 40 MB file).
        if pts.len() <= MARKED {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(plot_err)?;
        }
    }
    let preferred = if caption == "loss" { 0 } else { 1 };
    let legend_pos = CORNERS[legend_corner(lines, at.x, at.fy, preferred)]
        .0
        .clone();
    chart
        .configure_series_labels()
        .position(legend_pos)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(plot_err)?;
    Ok(())
}

/// The most characters of the log's name the title shows whole.
const MAX_TITLE_NAME: usize = 50;

/// Read `metrics` and draw it: the SVG and the number of epochs.
pub fn plot_svg(metrics: &Path) -> Result<(String, usize)> {
    let records = crate::metrics::read(metrics)?;
    let name = metrics.file_name().map_or_else(
        || metrics.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    // XML has no place for control characters, even escaped.
    let name: String = name
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    // A long name ran off both edges of the centred title (190 characters
    // did): its middle gives way to an ellipsis, leaving a title that fits
    // the picture even in the widest letters.
    let chars: Vec<char> = name.chars().collect();
    let name = match chars.len() > MAX_TITLE_NAME {
        true => {
            let half = MAX_TITLE_NAME / 2;
            let (head, tail) = (&chars[..half], &chars[chars.len() - half..]);
            format!(
                "{}…{}",
                head.iter().collect::<String>(),
                tail.iter().collect::<String>()
            )
        }
        false => name,
    };
    let title = format!(
        "simplenn: {} from {name}",
        crate::metrics::epochs(records.len()),
    );
    let text = svg(&records, &title)?;
    Ok((text, records.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(epoch: usize) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 1.0 / epoch as f64,
            train_accuracy: 0.9 + 0.01 * epoch as f64,
            val_loss: Some(1.2 / epoch as f64),
            val_accuracy: Some(0.88 + 0.01 * epoch as f64),
            test_loss: None,
            test_accuracy: None,
            wall_seconds: None,
            lr: 0.1,
            seconds: 1.0,
            samples_per_sec: 1000.0,
        }
    }

    /// The texts the picture writes, each trimmed: what lies between a
    /// tag's `>` and the next `<`.
    fn texts(s: &str) -> impl Iterator<Item = &str> {
        s.split('>')
            .filter_map(|t| t.split('<').next().map(str::trim))
    }

    /// Accuracies (0.89–0.95 here) are drawn in percent: every accuracy
    /// tick lies in [85, 100].
    #[test]
    fn accuracy_axis_is_in_percent() {
        let s = svg(&(1..=5).map(rec).collect::<Vec<_>>(), "t").unwrap();
        // Accuracy ticks are written with one decimal ({:.1}), loss ticks with three.
        let ticks: Vec<f64> = texts(&s)
            .filter(|t| {
                t.len() >= 3 && t.as_bytes()[t.len() - 2] == b'.' && t.parse::<f64>().is_ok()
            })
            .map(|t| t.parse().unwrap())
            .collect();
        assert!(!ticks.is_empty(), "no accuracy ticks");
        assert!(
            ticks.iter().all(|&v| (85.0..=100.0).contains(&v)),
            "{ticks:?}"
        );
    }

    /// The test set's curves appear where the log has them
    /// (`--test-every-epoch`), and nowhere else: a log without them draws
    /// the picture it drew before they were added.
    #[test]
    fn test_curves_only_where_logged() {
        let plain: Vec<EpochRecord> = (1..=4).map(rec).collect();
        let s = svg(&plain, "t").unwrap();
        assert!(!s.contains("test accuracy") && !s.contains("test loss"));
        let tested: Vec<EpochRecord> = (1..=4)
            .map(|e| EpochRecord {
                test_loss: Some(1.1 / e as f64),
                test_accuracy: Some(0.87 + 0.01 * e as f64),
                ..rec(e)
            })
            .collect();
        let t = svg(&tested, "t").unwrap();
        assert!(
            t.contains("test accuracy") && t.contains("test loss"),
            "{t}"
        );
        // Its colour, in its legend and its four points per panel.
        assert!(t.matches("#2CA02C").count() >= 10, "{t}");
    }

    /// A long log (100,000 epochs) is drawn without dots and with its
    /// lines thinned to their envelope: a small file whose lines still
    /// reach the highest and lowest loss logged.
    #[test]
    fn long_logs_are_thinned_to_their_envelope() {
        let long: Vec<EpochRecord> = (1..=100_000)
            .map(|e| EpochRecord {
                // A spike at one epoch, which the picture must keep.
                train_loss: if e == 55_555 { 7.0 } else { 1.0 / e as f64 },
                ..rec(e)
            })
            .collect();
        let s = svg(&long, "t").unwrap();
        assert!(s.len() < 1_000_000, "{} bytes", s.len());
        assert!(!s.contains("<circle"), "no dots on 100,000 epochs");
        let few = svg(&long[..MARKED], "t").unwrap();
        assert!(few.contains("<circle"));
        let pts = thinned(
            &(1..=100_000)
                .map(|e| (e as f64, if e == 55_555 { 7.0 } else { 0.0 }))
                .collect::<Vec<_>>(),
        );
        assert!(pts.len() <= 2 * COLUMNS, "{}", pts.len());
        assert!(pts.contains(&(55_555.0, 7.0)) && pts.contains(&(1.0, 0.0)));
        assert!(pts.windows(2).all(|w| w[0].0 < w[1].0), "in epoch order");
    }

    /// The numbers written on the axes (those with a decimal point).
    fn ticks(s: &str) -> Vec<f64> {
        texts(s)
            .filter(|t| t.contains('.'))
            .filter_map(|t| t.parse().ok())
            .collect()
    }

    /// A flat curve (a loss of 0.0001 throughout, accuracy 100 %) still
    /// gets ticks that read differently, with no loss below 0 and no
    /// accuracy above 100 %.
    #[test]
    fn flat_curves_get_distinct_ticks_within_their_range() {
        let flat: Vec<EpochRecord> = (1..=3)
            .map(|e| EpochRecord {
                train_loss: 1e-4,
                val_loss: Some(1e-4),
                train_accuracy: 1.0,
                val_accuracy: Some(1.0),
                ..rec(e)
            })
            .collect();
        let all = ticks(&svg(&flat, "t").unwrap());
        let (loss, acc): (Vec<f64>, Vec<f64>) = all.iter().partition(|&&v| v < 1.0);
        for (axis, t) in [("loss", &loss), ("accuracy", &acc)] {
            assert!(t.len() >= 3, "{axis}: {all:?}");
            assert!(t.windows(2).all(|w| w[0] != w[1]), "{axis}: {t:?}");
        }
        assert!(loss.iter().all(|&v| v >= 0.0), "{loss:?}");
        assert!(acc.iter().all(|&v| v <= 100.0), "{acc:?}");
    }

    /// A log whose name holds control characters still makes a valid SVG:
    /// XML cannot hold them at all.
    #[test]
    fn control_characters_in_the_log_name_are_replaced() {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("run\u{1}\u{1b}.jsonl");
        std::fs::write(&log, crate::metrics::to_jsonl(&[rec(1), rec(2)])).unwrap();
        let (text, _) = plot_svg(&log).unwrap();
        assert!(
            text.chars()
                .all(|c| !c.is_control() || "\n\r\t".contains(c)),
            "a control character in the SVG"
        );
        assert!(text.contains("run\u{fffd}\u{fffd}.jsonl"));
    }

    /// A long log name gives the title's middle to an ellipsis rather than
    /// run off the picture's edges.
    #[test]
    fn a_long_log_name_is_shortened_in_the_title() {
        let t = tempfile::tempdir().unwrap();
        let stem = format!("a{}z", "m".repeat(180));
        let log = t.path().join(format!("{stem}.jsonl"));
        std::fs::write(&log, crate::metrics::to_jsonl(&[rec(1), rec(2)])).unwrap();
        let (text, _) = plot_svg(&log).unwrap();
        assert!(!text.contains(&stem), "the whole name is in the title");
        let shown = format!("from a{}…{}z.jsonl", "m".repeat(24), "m".repeat(18));
        assert!(text.contains(&shown), "{text}");
        // Fifty characters, `.jsonl` counted, fit whole.
        let name = format!("{}.jsonl", "n".repeat(44));
        let log = t.path().join(&name);
        std::fs::write(&log, crate::metrics::to_jsonl(&[rec(1), rec(2)])).unwrap();
        let (text, _) = plot_svg(&log).unwrap();
        assert!(text.contains(&format!("from {name}")), "{text}");
    }

    /// The legend goes where the curves leave room: a falling loss leaves
    /// the upper right; accuracy that falls at the end fills the lower
    /// right, and the legend moves to the lower left.
    #[test]
    fn the_legend_takes_the_emptiest_corner() {
        // `ys` of the epochs from `first` on.
        let corner = |ys: &[f64], first: usize, preferred| {
            let line = ys
                .iter()
                .enumerate()
                .map(|(i, &y)| ((first + i) as f64, y))
                .collect();
            let lines = [("a", TRAIN, line)];
            let (lo, hi) = ys
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
            let fy = |y: f64| (y - lo) / (hi - lo);
            let span = (first as f64, (first + ys.len() - 1) as f64);
            legend_corner(&lines, span, &fy, preferred)
        };
        assert_eq!(
            corner(&[0.5, 0.25, 0.16, 0.12, 0.1, 0.08, 0.07, 0.06], 1, 0),
            0
        );
        assert_eq!(
            corner(&[91.0, 95.0, 97.0, 98.0, 98.5, 99.0, 99.2, 99.3], 1, 1),
            1
        );
        let falls = [91.0, 92.0, 93.0, 94.0, 92.0, 90.0, 88.0, 86.0];
        assert!(matches!(
            CORNERS[corner(&falls, 1, 1)].0,
            SeriesLabelPosition::LowerLeft
        ));
        // The same run resumed at epoch 101: where a point falls is
        // measured from the panel's first epoch, not from 0.
        assert!(matches!(
            CORNERS[corner(&falls, 101, 1)].0,
            SeriesLabelPosition::LowerLeft
        ));
    }

    /// Series of equal values are drawn through the same points: the
    /// training figures go through the same scale as the validation ones
    /// (accuracy in percent for both).
    #[test]
    fn equal_series_are_drawn_alike() {
        let records: Vec<EpochRecord> = (1..=5)
            .map(|e| EpochRecord {
                val_loss: Some(1.0 / e as f64),
                val_accuracy: Some(0.9 + 0.01 * e as f64),
                ..rec(e)
            })
            .collect();
        let drawn = lines(&svg(&records, "t").unwrap());
        assert_eq!(drawn.len(), 4, "{drawn:?}");
        // The loss panel's train and validation lines, then accuracy's.
        assert_eq!(drawn[0], drawn[1], "loss");
        assert_eq!(drawn[2], drawn[3], "accuracy");
    }

    /// The points of the `n`th polyline of `stroke` in `s`.
    fn polyline(s: &str, stroke: &str, n: usize) -> Vec<(f64, f64)> {
        let pts = s
            .split("<polyline")
            .skip(1)
            .filter(|p| p.contains(&format!("stroke=\"{stroke}\"")))
            .nth(n)
            .and_then(|p| p.split("points=\"").nth(1)?.split('"').next())
            .unwrap_or_else(|| panic!("no polyline {n} of {stroke}"));
        pts.split_whitespace()
            .map(|xy| {
                let (x, y) = xy.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    /// A log's curves span each panel's horizontal axis, from its first
    /// epoch to its last, and a single epoch's dot stands in the middle.
    #[test]
    fn curves_span_the_epoch_axis() {
        for n in [1, 5] {
            let s = svg(&(1..=n).map(rec).collect::<Vec<_>>(), "t").unwrap();
            // The loss panel's horizontal axis: its first long level black line.
            let axis = (0..)
                .map(|i| polyline(&s, "#000000", i))
                .find(|p| p.len() == 2 && p[0].1 == p[1].1 && p[1].0 - p[0].0 > 100.0)
                .unwrap();
            let (left, right) = (axis[0].0, axis[1].0);
            // The first line of the training colour is the train loss's
            // (its legend sample comes after).
            let train = polyline(&s, "#1F77B4", 0);
            assert_eq!(train.len(), n, "{train:?}");
            if n == 1 {
                assert!(
                    (train[0].0 - (left + right) / 2.0).abs() <= 1.0,
                    "{train:?} on {axis:?}"
                );
            } else {
                assert_eq!((train[0].0, train[n - 1].0), (left, right), "{axis:?}");
            }
        }
    }

    /// The whole numbers written in `s`: the epochs on the axes (all the
    /// other ticks here have a decimal point).
    fn whole_labels(s: &str) -> Vec<usize> {
        texts(s).filter_map(|t| t.parse().ok()).collect()
    }

    /// Each epoch of a short log is labelled once on each panel, a resumed
    /// run's (epochs 11 to 15) as well as one from the start.
    #[test]
    fn each_epoch_of_a_short_log_is_labelled_once() {
        for first in [1, 11] {
            let records: Vec<EpochRecord> = (first..first + 5).map(rec).collect();
            let mut labels = whole_labels(&svg(&records, "t").unwrap());
            labels.sort();
            let want: Vec<usize> = (first..first + 5).flat_map(|e| [e, e]).collect();
            assert_eq!(labels, want, "epochs {first} to {}", first + 4);
        }
    }

    #[test]
    fn svg_has_axes_and_legend() {
        let s = svg(&(1..=5).map(rec).collect::<Vec<_>>(), "t").unwrap();
        assert!(s.starts_with("<svg"));
        for text in [
            "epoch",
            "cross-entropy loss",
            "accuracy (%)",
            "train loss",
            "validation accuracy",
        ] {
            // plotters writes a text element's text on a line of its own.
            assert!(s.contains(&format!(">\n{text}\n</text>")), "no {text:?}");
        }
        // One epoch, and no validation, still draw.
        let mut one = rec(1);
        one.val_loss = None;
        one.val_accuracy = None;
        assert!(svg(&[one], "t").is_ok());
        assert!(svg(&[], "t").is_err());
    }

    /// Losses over more than two orders of magnitude are drawn on a log
    /// scale, its ticks written short; within two, on a linear one.
    #[test]
    fn losses_spanning_decades_get_a_log_scale() {
        let falling: Vec<EpochRecord> = (1..=8)
            .map(|e| EpochRecord {
                train_loss: 10f64.powi(1 - e as i32),
                val_loss: Some(2.0 * 10f64.powi(1 - e as i32)),
                ..rec(e)
            })
            .collect();
        let s = svg(&falling, "t").unwrap();
        assert!(
            s.contains(">\ncross-entropy loss (log scale)\n</text>"),
            "no log scale"
        );
        for tick in ["1e-6", "0.001", "0.1", "1"] {
            assert!(s.contains(&format!(">\n{tick}\n</text>")), "no tick {tick}");
        }
        assert!(!s.contains("9999"), "an unrounded tick");
        // 1 down to 0.2 (rec's): linear, as before.
        let s = svg(&(1..=5).map(rec).collect::<Vec<_>>(), "t").unwrap();
        assert!(!s.contains("log scale"));
        // README: "over 100 times the smallest". Exactly 100 times stays
        // linear; a little over is logarithmic.
        for (hi, log) in [(100.0, false), (100.5, true)] {
            let pair: Vec<EpochRecord> = (1..=2)
                .map(|e| EpochRecord {
                    train_loss: if e == 1 { hi } else { 1.0 },
                    val_loss: Some(1.0),
                    ..rec(e)
                })
                .collect();
            let s = svg(&pair, "t").unwrap();
            assert_eq!(s.contains("(log scale)"), log, "largest {hi}, smallest 1");
        }
        // Losses down to 1e-308 (which the log allows): linear, not a
        // log axis whose ticks never end.
        let mut tiny = falling.clone();
        tiny[7].train_loss = 1e-308;
        let s = svg(&tiny, "t").unwrap();
        assert!(!s.contains("log scale"));
        assert_eq!(log_tick(9.99999999999e-5), "1e-4");
        assert_eq!(log_tick(0.05), "0.05");
        assert_eq!(log_tick(2.0), "2");
    }

    /// Losses past a million on a linear axis are ticked as a log scale's,
    /// `3.4e38`, not 39 digits; under it, as before, with decimals.
    #[test]
    fn huge_losses_get_short_ticks() {
        let huge = EpochRecord {
            train_loss: 3.4e38,
            val_loss: Some(3.4e38),
            ..rec(1)
        };
        let s = svg(&[huge], "t").unwrap();
        assert!(s.contains(">\n3.4e38\n</text>"), "no tick 3.4e38");
        let longest = s
            .split("</text>")
            .filter_map(|t| t.rsplit('>').next())
            .map(str::trim)
            .filter(|t| t.parse::<f64>().is_ok())
            .map(str::len)
            .max();
        assert!(longest < Some(12), "a tick of {longest:?} characters");
        let s = svg(&(1..=5).map(rec).collect::<Vec<_>>(), "t").unwrap();
        assert!(s.contains(">\n0.500\n</text>"), "no tick 0.500");
    }

    /// The points of every line of five or more points, as drawn.
    fn lines(s: &str) -> Vec<String> {
        s.split("<polyline")
            .skip(1)
            .filter_map(|p| p.split("points=\"").nth(1)?.split('"').next())
            .filter(|pts| pts.split_whitespace().count() >= 5)
            .map(str::to_string)
            .collect()
    }

    /// Each of the four series is drawn from its own values: the
    /// validation loss is not the training loss.
    #[test]
    fn every_series_draws_its_own_values() {
        let records: Vec<EpochRecord> = (1..=5)
            .map(|e| EpochRecord {
                val_loss: Some(0.3 + 0.05 * e as f64),
                ..rec(e)
            })
            .collect();
        let s = svg(&records, "t").unwrap();
        let mut drawn = lines(&s);
        assert_eq!(drawn.len(), 4, "{drawn:?}");
        drawn.sort();
        drawn.dedup();
        assert_eq!(drawn.len(), 4, "two series drawn alike: {drawn:?}");
    }

    /// A line of exactly `2 · COLUMNS` points is drawn whole, however its
    /// epochs are spaced: the 2000 points a log of 3000 epochs gives when
    /// the thousand in its middle are not finite lose none of themselves
    /// (some columns then hold three, which a thinning would cut).
    #[test]
    fn a_line_of_exactly_2000_points_is_drawn_whole() {
        let pts: Vec<(f64, f64)> = (1..=1000)
            .chain(2001..=3000)
            .map(|e| (e as f64, 1.0 / e as f64))
            .collect();
        assert_eq!(pts.len(), 2 * COLUMNS);
        assert_eq!(thinned(&pts), pts);
    }

    /// A loss axis that reaches exactly 100 (losses of 94 and 19, padded
    /// by 6) is ticked in whole numbers, as losses in the hundreds are:
    /// `20`, not `20.000`.
    #[test]
    fn a_loss_axis_reaching_exactly_100_has_whole_ticks() {
        let records: Vec<EpochRecord> = [94.0, 19.0]
            .iter()
            .enumerate()
            .map(|(i, &loss)| EpochRecord {
                train_loss: loss,
                val_loss: None,
                ..rec(i + 1)
            })
            .collect();
        let s = svg(&records, "t").unwrap();
        let decimal: Vec<&str> = texts(&s).filter(|t| t.ends_with(".000")).collect();
        assert!(decimal.is_empty(), "{decimal:?}");
        let whole = whole_labels(&s);
        assert!(whole.iter().any(|&v| v >= 20), "{whole:?}");
    }
}
