//! When test accuracy first reached each milestone (`--test-every-epoch`),
//! across resumes.

use crate::checkpoint::{self, Reach};
use crate::config::Milestones;

/// What a run knows of when its test accuracy first reached each of its
/// [`Milestones`]: the checkpoint's [`Reach`], kept up to date, and the
/// training wall time where this run reached it itself.
#[derive(Clone, Debug)]
pub(super) struct Reached {
    pub(super) milestones: Milestones,
    /// One per milestone.
    pub(super) reach: Vec<Reach>,
    /// Seconds since this run (or its resumed part) started training.
    seconds: Vec<Option<f64>>,
    /// Epochs done before this run started (a resumed checkpoint's).
    before: usize,
}

/// `epoch 3`, or `epochs 3–5`.
fn span(first: usize, last: usize) -> String {
    match first == last {
        true => format!("epoch {first}"),
        false => format!("epochs {first}–{last}"),
    }
}

/// Whether `correct` of `n` is at least `percent` %, exactly: in whole
/// numbers, as a milestone has at most two decimals (98.4 % is 9840 of
/// 10,000, which `9840.0 / 10000.0 >= 0.984` in floating point denies).
fn at_least(correct: usize, n: usize, percent: f64) -> bool {
    let hundredths = (percent * 100.0).round() as u128;
    correct as u128 * 10_000 >= hundredths * n as u128
}

impl Reached {
    /// A new run's.
    pub(super) fn new(milestones: Milestones) -> Self {
        let n = milestones.percents().len();
        Reached {
            milestones,
            reach: vec![Reach::Not; n],
            seconds: vec![None; n],
            before: 0,
        }
    }

    /// A run resumed from a checkpoint that recorded `saved` after
    /// `before` whole epochs. A milestone the checkpoint's run did not
    /// have is known from those it had where they settle it: not reached
    /// where a lower one was not, reached by the epoch a higher one was.
    pub(super) fn resumed(
        milestones: Milestones,
        saved: &checkpoint::Habits,
        before: usize,
    ) -> Self {
        let mut r = Reached::new(milestones);
        r.before = before;
        let had: Vec<(f64, Reach)> = (saved.milestones.percents().iter().copied())
            .zip((saved.test_reached.iter().copied()).chain(std::iter::repeat(Reach::Unknown)))
            .collect();
        for (i, &p) in r.milestones.percents().iter().enumerate() {
            let lower = had.iter().filter(|(q, _)| *q <= p).map(|(_, r)| *r);
            let higher = had.iter().filter(|(q, _)| *q >= p).map(|(_, r)| *r);
            let not_from = lower
                .filter_map(|r| match r {
                    Reach::Not => Some(1),
                    Reach::NotFrom(s) => Some(s),
                    _ => None,
                })
                .min();
            let by = higher.filter_map(Reach::epoch).min();
            r.reach[i] = match had.iter().find(|(q, _)| *q == p) {
                Some(&(_, reach)) => reach,
                // No epoch was scored before the checkpoint.
                None if before == 0 => Reach::Not,
                // Reached by an epoch, though perhaps not since (test
                // accuracy can fall): that answers "first reached" best.
                None => match (not_from, by) {
                    (Some(1), _) => Reach::Not,
                    (_, Some(e)) => Reach::By(e),
                    (Some(s), None) => Reach::NotFrom(s),
                    (None, None) => Reach::Unknown,
                },
            };
        }
        r
    }

    /// Note an epoch: checked (its test set's `(correct, n)`) or not.
    pub(super) fn note(&mut self, epoch: usize, test: Option<(usize, usize)>, wall_seconds: f64) {
        for (i, &p) in self.milestones.percents().iter().enumerate() {
            let r = &mut self.reach[i];
            match test {
                // An epoch not checked: "none" no longer holds.
                None if matches!(r, Reach::Not | Reach::NotFrom(_)) => *r = Reach::Unknown,
                None => {}
                Some((correct, n)) if at_least(correct, n, p) && r.epoch().is_none() => {
                    *r = match r {
                        Reach::Not => Reach::At(epoch),
                        _ => Reach::By(epoch),
                    };
                    self.seconds[i] = Some(wall_seconds);
                }
                // Reached before.
                Some((correct, n)) if at_least(correct, n, p) => {}
                // Not reached: "none" starts here where nothing was known.
                Some(_) if *r == Reach::Unknown => {
                    *r = match epoch {
                        1 => Reach::Not,
                        e => Reach::NotFrom(e),
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// The line `--test-every-epoch` ends with for milestone `i`, after
    /// `epochs` epochs in all; `stopped` where the run stopped before its
    /// last epoch (`--stop-after`), whose later epochs may still reach it.
    pub(super) fn line(&self, i: usize, epochs: usize, stopped: bool) -> String {
        let when = match (self.seconds[i], self.before > 0) {
            (Some(s), false) => format!("{s:.1} s"),
            (Some(s), true) => format!("{s:.1} s after the resume"),
            (None, _) => "before the resume".into(),
        };
        let unchecked = "not every earlier epoch was checked for it";
        let said = match self.reach[i] {
            // By epoch 1 is at epoch 1: there was no earlier one to check.
            Reach::At(e) | Reach::By(e @ 1) => format!("after epoch {e} ({when})"),
            Reach::By(e) => format!("by epoch {e} ({when}; {unchecked})"),
            Reach::Not if stopped => format!(
                "not reached yet (the run stopped after {}, before its last)",
                span(epochs, epochs)
            ),
            Reach::Not => "not reached".into(),
            Reach::NotFrom(s) => format!("not reached in {} ({unchecked})", span(s, epochs)),
            Reach::Unknown => "not known (not every epoch was checked for it)".into(),
        };
        let p = Milestones::show(self.milestones.percents()[i]);
        format!("test accuracy {p}%: {said}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run stopped before its last epoch (`--stop-after`) has not
    /// missed a milestone it has yet to reach, and does not say so.
    #[test]
    fn a_stopped_run_has_not_reached_a_milestone_yet() {
        let mut reached = Reached::new(Milestones::default());
        reached.note(1, Some((979, 1000)), 1.0);
        reached.note(2, Some((985, 1000)), 2.0);
        assert_eq!(
            reached.line(0, 2, true),
            "test accuracy 98%: after epoch 2 (2.0 s)"
        );
        assert_eq!(
            reached.line(1, 2, true),
            "test accuracy 99%: not reached yet (the run stopped after epoch 2, before its last)"
        );
        assert_eq!(reached.line(1, 2, false), "test accuracy 99%: not reached");
    }

    #[test]
    fn the_first_epoch_at_or_above_each_target_is_named_with_its_wall_time() {
        // (epoch, correct of 1000 or not checked); the wall time since
        // training started is 10 s an epoch + 0.3.
        let epoch = |e: usize, correct: Option<usize>| (e, correct);
        let run = [
            epoch(1, Some(979)),
            epoch(2, Some(980)), // exactly 98 %
            epoch(3, Some(989)),
            epoch(4, Some(992)),
            epoch(5, Some(995)),
        ];
        let short = [epoch(1, Some(979)), epoch(2, None), epoch(3, Some(985))];
        let all_lines = |epochs: &[(usize, Option<usize>)], reached: &Reached| {
            let mut reached = reached.clone();
            for &(e, correct) in epochs {
                reached.note(e, correct.map(|c| (c, 1000)), 10.0 * e as f64 + 0.3);
            }
            let last = epochs.last().map_or(reached.before, |s| s.0);
            (0..reached.reach.len())
                .map(|i| reached.line(i, last, false))
                .collect::<Vec<_>>()
        };
        let lines = |epochs: &[(usize, Option<usize>)], reached: &Reached| {
            <[String; 2]>::try_from(all_lines(epochs, reached)).unwrap()
        };
        let said = |s: [&str; 2]| s.map(|s| format!("test accuracy {s}"));
        let standard = Milestones::default;
        let habits = |milestones: &str, test_reached: Vec<Reach>| checkpoint::Habits {
            milestones: Milestones::parse(milestones).unwrap(),
            test_reached,
            ..Default::default()
        };
        let fresh = &Reached::new(standard());
        assert_eq!(
            lines(&run, fresh),
            said(["98%: after epoch 2 (20.3 s)", "99%: after epoch 4 (40.3 s)"])
        );
        // Epoch 2 not checked: 98 % is first known at epoch 3, and so said.
        let unchecked = "not every earlier epoch was checked for it";
        assert_eq!(
            lines(&short, fresh),
            said([
                &format!("98%: by epoch 3 (30.3 s; {unchecked})"),
                &format!("99%: not reached in epoch 3 ({unchecked})"),
            ])
        );
        // Resumed after epoch 1: what the checkpoint's run reached stays
        // its; what this run reaches is timed from the resume.
        let resumed = &Reached::resumed(
            standard(),
            &habits("98,99", vec![Reach::At(1), Reach::Not]),
            1,
        );
        assert_eq!(
            lines(&run[1..], resumed),
            said([
                "98%: after epoch 1 (before the resume)",
                "99%: after epoch 4 (40.3 s after the resume)"
            ])
        );
        // A checkpoint that does not know (an older simplenn's).
        let unknown = &Reached::resumed(standard(), &habits("98,99", vec![]), 1);
        assert_eq!(
            lines(&run[1..3], unknown),
            said([
                &format!("98%: by epoch 2 (20.3 s after the resume; {unchecked})"),
                &format!("99%: not reached in epochs 2–3 ({unchecked})"),
            ])
        );
        assert_eq!(
            lines(&[], unknown)[1],
            "test accuracy 99%: not known (not every epoch was checked for it)"
        );
        // An epoch not checked after others were forgets "none".
        assert_eq!(
            lines(&[epoch(2, Some(979)), epoch(3, None)], unknown)[1],
            "test accuracy 99%: not known (not every epoch was checked for it)"
        );
        // Exact at the milestone, in whole numbers: 9840 of 10,000 is
        // 98.4 % (in f64, 0.984 > 9840.0 / 10000.0), 3 of 7 is below 42.86 %.
        assert!(at_least(9840, 10_000, 98.4) && !at_least(9839, 10_000, 98.4));
        assert!(at_least(9801, 10_000, 98.01) && at_least(9990, 10_000, 99.9));
        assert!(!at_least(3, 7, 42.86) && at_least(3, 7, 42.85));
        assert!(at_least(10, 10, 100.0) && !at_least(9, 10, 100.0));
        let exact = &Reached::new(Milestones::parse("98.4,97.95").unwrap());
        let mut r = exact.clone();
        r.note(1, Some((9840, 10_000)), 1.0);
        assert_eq!(r.reach, [Reach::At(1), Reach::At(1)]);
        // Other milestones, in percent as given: 98.3 % is 983 of 1000.
        let other = &Reached::new(Milestones::parse("98.3,97.95").unwrap());
        assert_eq!(
            all_lines(&run, other),
            said([
                "97.95%: after epoch 2 (20.3 s)",
                "98.3%: after epoch 3 (30.3 s)"
            ])
        );
        // Resumed with milestones the checkpoint's run did not have: what
        // it had is kept, and settles what it can of the others (99 %: not
        // where 98.5 % was not; 96 %: by epoch 1, where 97 % was reached);
        // 98 % is unknown before the resume.
        let saved = habits("97,98.5", vec![Reach::At(1), Reach::Not]);
        let changed = &Reached::resumed(Milestones::parse("96,97,98,99").unwrap(), &saved, 1);
        assert_eq!(
            all_lines(&run[1..3], changed),
            [
                // By epoch 1 is after it: no earlier epoch went unchecked.
                "test accuracy 96%: after epoch 1 (before the resume)".into(),
                "test accuracy 97%: after epoch 1 (before the resume)".into(),
                format!("test accuracy 98%: by epoch 2 (20.3 s after the resume; {unchecked})"),
                "test accuracy 99%: not reached".into(),
            ]
        );
        // What a resumed run learns of a new milestone survives the next
        // resume: none in epochs 2–3, written `none from 2`.
        let saved = habits("97", vec![Reach::At(1)]);
        let changed = &Reached::resumed(Milestones::parse("99").unwrap(), &saved, 1);
        let mut after = changed.clone();
        for &(e, c) in &run[1..3] {
            after.note(e, c.map(|c| (c, 1000)), 0.0);
        }
        assert_eq!(after.reach, [Reach::NotFrom(2)]);
        let saved = habits("99", after.reach.clone());
        let again = &Reached::resumed(Milestones::parse("99").unwrap(), &saved, 3);
        assert_eq!(
            all_lines(&[epoch(4, Some(990))], again),
            [format!(
                "test accuracy 99%: by epoch 4 (40.3 s after the resume; {unchecked})"
            )]
        );
        assert_eq!(
            all_lines(&[epoch(4, Some(989))], again),
            [format!(
                "test accuracy 99%: not reached in epochs 2–4 ({unchecked})"
            )]
        );
        // ...and settles a higher milestone added later.
        let higher = &Reached::resumed(Milestones::parse("99.5").unwrap(), &saved, 3);
        assert_eq!(higher.reach, [Reach::NotFrom(2)]);
        // A milestone between one reached by epoch 1 (and not since: test
        // accuracy can fall) and one not reached from epoch 2 on: by epoch 1.
        let saved = habits("99,99.5", vec![Reach::NotFrom(2), Reach::By(1)]);
        let between = &Reached::resumed(Milestones::parse("99.2").unwrap(), &saved, 3);
        assert_eq!(between.reach, [Reach::By(1)]);
        // The earliest epoch a higher milestone was reached by, and the
        // earliest from which a lower one was not.
        let new =
            |m: &str, saved, before| Reached::resumed(Milestones::parse(m).unwrap(), saved, before);
        let saved = habits("97,98", vec![Reach::At(1), Reach::At(3)]);
        assert_eq!(new("96", &saved, 3).reach, [Reach::By(1)]);
        let saved = habits("90,95", vec![Reach::NotFrom(3), Reach::NotFrom(2)]);
        assert_eq!(new("99", &saved, 3).reach, [Reach::NotFrom(2)]);
        // Hundredths rounded, not cut: 80.1 * 100 is 8009.999… in f64.
        assert!(!at_least(8009, 10_000, 80.1) && at_least(8010, 10_000, 80.1));
        // A checkpoint from inside epoch 1 checked nothing: a milestone
        // reached in epoch 1 is reached after it; none is unknown.
        let saved = habits("97", vec![]);
        let mid = &new("99", &saved, 0);
        assert_eq!(
            all_lines(&[epoch(1, Some(995))], mid),
            ["test accuracy 99%: after epoch 1 (10.3 s)"]
        );
        assert_eq!(
            all_lines(&run[..3], mid),
            ["test accuracy 99%: not reached"]
        );
    }
}
