//! Checks before a run starts: a hand-built config, memory enough for the
//! network, a checkpoint that fits the run, classes no image has.

use anyhow::Result;

use crate::augment::Augment;
use crate::config::TrainConfig;
use crate::data::Mnist;
use crate::error::UsageError;
use crate::eval::SameOutput;
use crate::model::{Dims, Workspace};

use super::{block_rows, Regularisers};

/// A note naming the classes of `0..k` that none of the first `n_train`
/// images of `train` (the training split) has, which the model cannot
/// learn to predict: class 0 of labels numbered from 1, or a `--classes`
/// above the labels. `None` when every class has an image.
pub fn unseen_classes(train: &crate::data::Dataset, n_train: usize, k: usize) -> Option<String> {
    unseen_in(&class_counts(train, n_train, k))
}

/// How many of the first `n_train` images of `train` each class of `0..k`
/// has (labels at or past `k` not counted).
pub(super) fn class_counts(train: &crate::data::Dataset, n_train: usize, k: usize) -> Vec<usize> {
    let mut images = vec![0usize; k];
    for i in 0..n_train {
        if let Some(n) = images.get_mut(usize::from(train.label(i))) {
            *n += 1;
        }
    }
    images
}

/// [`unseen_classes`]' note, from each class's count of training images.
pub(super) fn unseen_in(images: &[usize]) -> Option<String> {
    let k = images.len();
    let unseen: Vec<usize> = (0..k).filter(|&c| images[c] == 0).collect();
    const SHOWN: usize = 8;
    let mut list: Vec<String> = unseen.iter().take(SHOWN).map(|c| c.to_string()).collect();
    if unseen.len() > SHOWN {
        list.push("…".into());
    }
    match unseen.len() {
        0 => None,
        1 => Some(format!(
            "note: class {} of the {k} has no training images; the model cannot learn it",
            unseen[0]
        )),
        n => Some(format!(
            "note: {n} of the {k} classes have no training images ({}); the model cannot learn them",
            list.join(", ")
        )),
    }
}

/// A note naming the classes that a mapping of class names leaves
/// unnamed (`unused C`, see [`crate::classes::NamesFile::for_classes`])
/// although the training split has images of them (`images[c]`, from
/// [`class_counts`]): most likely a mapping of another numbering (EMNIST
/// letters' labels start at 1), which shifts every name by one. `None`
/// where every class with images is named.
pub(super) fn unnamed_classes_seen(
    images: &[usize],
    names: Option<&crate::classes::ClassNames>,
) -> Option<String> {
    let names = names?;
    let unnamed = |c: usize| names.name(c) == Some(format!("unused {c}").as_str());
    let seen: Vec<usize> = (0..images.len())
        .filter(|&c| images[c] > 0 && unnamed(c))
        .collect();
    let first = *seen.first()?;
    let which = match seen.len() {
        1 => format!(
            "class {first} has {}, but the names call it unused {first}",
            crate::show::count(images[first], "training image")
        ),
        n => format!(
            "{n} classes the names call unused have training images (class {first}: {})",
            images[first]
        ),
    };
    Some(format!(
        "note: {which}; a mapping of another numbering (EMNIST letters' labels start at 1) puts every name on the wrong class: give --class-names the mapping of this data set"
    ))
}

/// Bytes a run of `dims` holds at its peak with plain SGD: the parameters
/// and the momentum buffer, three slabs for the file-layout copies made
/// when initialising or saving (a checkpoint's file holds two), and the
/// buffers of steps of `batch` images and of evaluations of at most
/// `scored` images at a time ([`Evaluator::for_ranges_of`](crate::eval::Evaluator::for_ranges_of)). Other
/// optimisers add [`Optimizer::extra_slabs`](crate::optim::Optimizer::extra_slabs)` − 1` slabs of the parameters'
/// size.
pub fn training_bytes(dims: &Dims, parts: usize, batch: usize, scored: usize) -> u64 {
    let params = 4 * dims.param_count() as u64;
    5 * params
        + Workspace::bytes(dims, block_rows(batch), true)
        + crate::eval::eval_parts(parts, scored) as u64
            * Workspace::bytes(dims, crate::eval::eval_rows(scored), false)
}

/// Bytes `train --serve`'s page adds to a run of `dims` whose test set has
/// `n_test` images: the trainer's snapshot of the weights and a copy of it
/// for each of the page's answering threads (each may hold another
/// version while training steps on), the test set's scoring (one thread's
/// evaluation buffers, each image's guess and probability, the confusion
/// matrix; two of those while one replaces the other), and `curve` bytes
/// for the learning curve ([`crate::live::curve_bytes`]).
pub fn page_bytes(dims: &Dims, n_test: usize, curve: u64) -> u64 {
    let k = dims.k() as u64;
    (1 + crate::live::PAGE_HANDLERS as u64) * 4 * dims.param_count() as u64
        + Workspace::bytes(dims, crate::eval::eval_rows(n_test), false)
        + 2 * (5 * n_test as u64 + 8 * k * k)
        + curve
}

/// Bytes a run of `dims` under `cfg` holds at its peak, as the memory check
/// counts them before allocating anything (a distortion's per-thread
/// scratch, [`Augment::bytes`], aside): [`training_bytes`], the slabs of
/// the parameters' size that its optimiser, a checkpoint of Adam's two
/// moments, or the thinned network of batchwise dropout adds, `page`'s
/// [`page_bytes`] and the epoch's shuffle order of `n_train` images.
/// `scored`: the most images scored at once; `checkpoint`: the run may
/// write a checkpoint.
pub fn run_bytes(
    cfg: &TrainConfig,
    dims: &Dims,
    parts: usize,
    (n_train, scored): (usize, usize),
    page: Option<(usize, u64)>,
    checkpoint: bool,
) -> u64 {
    let mut extra = cfg.optimizer().extra_slabs() as u64 - 1;
    // A save holds its file's bytes beside everything else: a model's
    // (one slab) or a checkpoint's (the weights and the optimiser's
    // state) fit the slabs `training_bytes` leaves spare, but for
    // Adam's two moments, one slab more.
    if checkpoint && cfg.optimizer.is_adam() {
        extra += 1;
    }
    if Regularisers::of(cfg).thins(dims) {
        // The thinned network's parameters and gradient, and a gradient
        // slab where fused SGD would have none.
        extra += 2 + cfg.optimizer().fused() as u64;
    }
    // The images are mapped, not held; their order is (4 bytes each).
    training_bytes(dims, parts, cfg.batch_size, scored)
        + extra * 4 * dims.param_count() as u64
        + page.map_or(0, |(n_test, curve)| page_bytes(dims, n_test, curve))
        + 4 * n_train as u64
}

/// Refuse, before anything is allocated, a network that would not fit in
/// the memory available (where the system says how much that is), with
/// the epoch's shuffle order of `n_train` images, `page` bytes for
/// `train --serve`'s page ([`page_bytes`]) where it has one, and the
/// bytes of a checkpoint's file where the run may write one; `resumed`: the
/// network is a checkpoint's, which no flag may change. A new run's
/// refusal is a [`UsageError`] (its flags chose the network); a resumed
/// run's is a run-time error (exit status 1), as the checkpoint's own read
/// gives where memory is short, so that one command gets one exit status
/// whichever of the two estimates refuses it.
pub(super) fn check_memory(
    cfg: &TrainConfig,
    dims: &Dims,
    parts: usize,
    (rows, cols): (usize, usize),
    (n_train, scored): (usize, usize),
    page: Option<(usize, u64)>,
    (checkpoint, resumed): (bool, bool),
) -> anyhow::Result<()> {
    // The shuffle order's share of `run_bytes`.
    let order = 4 * n_train as u64;
    // Scratch for each of the pool's threads (one per part).
    let augment = cfg.augment.bytes(rows, cols, parts);
    let need = |dims: &Dims| run_bytes(cfg, dims, parts, (n_train, scored), page, checkpoint);
    // What the page's copies add to the network's share, in its name.
    let weights = match page {
        Some(_) => "weights (with train --serve's copies of them)",
        None => "weights",
    };
    let Some(avail) = crate::memory::available_memory() else {
        return Ok(());
    };
    let n = need(dims);
    if n + augment <= avail {
        return Ok(());
    }
    let (limit, raise) = (
        crate::memory::memory_limit_note(),
        crate::memory::limit_fix(),
    );
    // In one unit, with as many decimals as keep what is refused from
    // reading as what fits, and any part from reading as none.
    let said = crate::show::sizes_told_apart;
    // Neither the network nor its distortion may change on a resume.
    if resumed {
        let s = said(&[n + augment, avail]);
        anyhow::bail!(
            "resuming: the checkpoint's network {} needs {} for its {weights}, optimiser state and buffers, more than the {} of memory available{}; {}, or resume on a machine with more (a resumed run keeps its checkpoint's network)",
            dims.name(),
            s[0],
            s[1],
            limit,
            match limit.is_empty() {
                true => "free some memory",
                false => "raise the limit",
            }
        );
    }
    // A smaller batch, where one fits: its buffers may be what tips the
    // run over, whatever else the refusal below names.
    let smaller_batch = {
        let fits = |batch: usize| {
            let cfg = TrainConfig {
                batch_size: batch,
                ..cfg.clone()
            };
            run_bytes(&cfg, dims, parts, (n_train, scored), page, checkpoint) + augment <= avail
        };
        // The largest batch below this run's that fits (the need grows
        // with the batch up to a block's rows, then stays).
        let (mut lo, mut hi) = (0, cfg.batch_size.min(super::MAX_BLOCK + 1));
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match fits(mid) {
                true => lo = mid,
                false => hi = mid,
            }
        }
        match lo {
            0 => String::new(),
            b => format!(", or a smaller --batch-size ({b} or less fits)"),
        }
    };
    // The distortion's buffers alone, or what tips the network over.
    if n <= avail {
        let other = match cfg.augment {
            Augment::Elastic { .. } => "affine or shift:N (or none)",
            _ => "none",
        };
        // Each thread has its own scratch; the smoothing matrices are shared.
        let fewer = match parts > 1 && n + cfg.augment.bytes(rows, cols, 1) <= avail {
            true => ", fewer --threads",
            false => "",
        };
        // Their sum too: "0.1 MB, which with the network's 58.0 MB is more
        // than the 58.1 MB" would not add up.
        let s = said(&[augment, n, avail, augment + n]);
        return Err(UsageError(format!(
            "--augment {}: on images of {rows} × {cols} pixels its buffers need {} ({} thread{}), which with the network's {} is more than the {} of memory available{}; use --augment {other}{fewer}, or smaller images{smaller_batch}{raise}",
            cfg.augment.name(),
            s[0],
            parts,
            crate::show::plural(parts),
            s[1],
            s[2],
            limit
        )).into());
    }
    // Blame the hidden layers only where fewer of them would help: not
    // where this network is the smallest already (hidden layers narrower
    // than the classes need less than none: 784-8-10 against 784-10).
    let no_hidden = Dims::new(dims.d(), &[], dims.k());
    let (smallest, m) = match need(&no_hidden) {
        m if m <= n => (no_hidden, m),
        _ => (dims.clone(), n),
    };
    let premise = match smallest.layers() {
        1 => format!("even with no hidden layer the network {}", smallest.name()),
        _ => format!(
            "the network {} (none without hidden layers needs less)",
            smallest.name()
        ),
    };
    if m > avail && order > m - order {
        let s = said(&[order, m, avail]);
        return Err(UsageError(format!(
            "{n_train} training images: their shuffle order alone needs {}, which with the network {} (the smaller of this run's and one with no hidden layer) is more than the {} of memory available{}; use a smaller training set{smaller_batch}{raise}",
            s[0],
            smallest.name(),
            s[2],
            limit
        )).into());
    }
    if m > avail {
        let s = said(&[m, avail]);
        return Err(UsageError(format!(
            "the images have {} pixels each: {premise} needs {} for its {weights}, optimiser state and buffers, more than the {} of memory available{}; use smaller images{smaller_batch}{raise}",
            dims.d(),
            s[0],
            s[1],
            limit
        )).into());
    }
    let s = said(&[n, avail]);
    Err(UsageError(format!(
        "--hidden {}: the network {} needs {} for its {weights}, optimiser state and buffers, more than the {} of memory available{}; use fewer or narrower hidden layers{smaller_batch}{raise}",
        crate::model::hidden_name(&cfg.hidden),
        dims.name(),
        s[0],
        s[1],
        limit
    ))
    .into())
}

/// The refusal of a run that differs from the checkpoint it resumes, in
/// `diff` ([`crate::checkpoint::RunShape::differences`]); `data_dir` is
/// where this run's data came from (the checkpoint does not record where
/// its data was).
pub fn cannot_resume(diff: &[String], data_dir: &std::path::Path) -> UsageError {
    let data_differs = diff.iter().any(|d| {
        ["train_images ", "data_md5 ", "data_image "]
            .iter()
            .any(|k| d.starts_with(k))
    });
    let fix = match data_differs {
        true => format!(
            "the data now is {}: pass --data naming the checkpoint's data set, and its flags, or start a new run",
            data_dir.display()
        ),
        false => "resume with the checkpoint's flags, or start a new run".into(),
    };
    UsageError(format!(
        "cannot resume: this run differs from the checkpoint's (checkpoint vs now: {}); {fix}",
        diff.join(", ")
    ))
}

/// A [`TrainConfig`] built by hand (a library caller's, where the flags'
/// checks never ran) refused where the loop could not run it: one error
/// naming the field, never a panic, a wrapped subtraction or a
/// "diverged" that blames the learning rate. A config from the flags
/// ([`crate::cli::Args::into_config`], then [`crate::cli::fit_to_data`])
/// passes by construction.
pub(super) fn check_config(
    cfg: &TrainConfig,
    data: &Mnist,
    resumed: bool,
) -> Result<(), UsageError> {
    let refuse = |field: &str, why: String| {
        Err(UsageError(format!(
            "TrainConfig.{field} {why}; a config built from flags (cli::Args::into_config, then cli::fit_to_data) has every value checked and resolved"
        )))
    };
    let n = data.train.len();
    for (field, v) in [("threads", cfg.threads), ("epochs", cfg.epochs)] {
        if v == 0 {
            return refuse(field, "is 0: give at least 1".into());
        }
    }
    if cfg.epochs > crate::config::MAX_EPOCHS {
        let most = crate::config::MAX_EPOCHS;
        return refuse("epochs", format!("is {}: give at most {most}", cfg.epochs));
    }
    if let Some(k) = cfg.classes.filter(|&k| k != data.classes) {
        return refuse(
            "classes",
            format!("is {k}, but the data opened has {} (open it with Mnist::open_with_classes and the same classes)", data.classes),
        );
    }
    if let crate::model::Init::Normal(sd) = cfg.init {
        if !sd.is_finite() || sd < 0.0 {
            return refuse(
                "init",
                format!("is Normal({sd}): its σ must be a finite number, 0 or more"),
            );
        }
    }
    // The data's public fields, which `Mnist::open_with_classes` sets and
    // checks, where a caller built or changed them by hand.
    let k = data.classes;
    let top = data.train.max_label().max(data.test.max_label());
    let why = match top {
        // `open_with_classes` takes any count it is given: the flags'
        // --classes is what keeps it in range.
        _ if !(2..=crate::modelfile::MAX_CLASSES).contains(&k) => Some(format!(
            "is {k}: a model has 2 to {0} classes; open the data with Mnist::open_with_classes and a count from 2 to {0} (or None)",
            crate::modelfile::MAX_CLASSES
        )),
        Some(top) if usize::from(top) >= k => Some(format!(
            "is {k}, but a label is {top}; open the data with Mnist::open_with_classes, which sets it"
        )),
        _ => None,
    };
    if let Some(why) = why {
        return Err(UsageError(format!("Mnist.classes {why}")));
    }
    if data.test.side() != data.train.side() {
        let ((tr, tc), (er, ec)) = (data.train.side(), data.test.side());
        return Err(UsageError(format!(
            "Mnist.test holds {er} × {ec} images, Mnist.train {tr} × {tc}: a model takes one size; open both with Mnist::open_with_classes"
        )));
    }
    let (rows, cols) = data.train.side();
    // As `cli::fit_to_data` checks it: a resumed run keeps what it can.
    match resumed {
        false => cfg.augment.check_size(rows, cols, true)?,
        true => cfg.augment.check_fits(rows, cols, true)?,
    }
    use crate::model::{MAX_LAYERS, MAX_WIDTH};
    if let Some(i) = cfg.hidden.iter().position(|&w| w == 0 || w > MAX_WIDTH) {
        return refuse(
            &format!("hidden[{i}]"),
            format!(
                "is {}: every hidden width is between 1 and {MAX_WIDTH}",
                cfg.hidden[i]
            ),
        );
    }
    // `Dims::new` asserts it: the flags' parser refuses more, a config
    // built by hand would have met the assertion.
    if cfg.hidden.len() >= MAX_LAYERS {
        return refuse(
            "hidden",
            format!(
                "has {} widths: at most {} (a network has at most {MAX_LAYERS} linear layers)",
                cfg.hidden.len(),
                MAX_LAYERS - 1
            ),
        );
    }
    if cfg.val >= n {
        return refuse(
            "val",
            format!("is {}: the training file has only {n} images", cfg.val),
        );
    }
    if cfg.batch_size == 0 || cfg.batch_size > n - cfg.val {
        return refuse(
            "batch_size",
            format!(
                "is {}: give 1 to {} (the training split; the flags' 0 for all of it is resolved by cli::fit_to_data)",
                cfg.batch_size,
                n - cfg.val
            ),
        );
    }
    let unit = [
        ("dropout", cfg.dropout),
        ("input_dropout", cfg.input_dropout),
        ("momentum", cfg.momentum),
        ("beta1", cfg.beta1),
        ("beta2", cfg.beta2),
    ];
    for (field, v) in unit {
        if !(0.0..1.0).contains(&v) {
            return refuse(field, format!("is {v}: must be in [0, 1)"));
        }
    }
    let positive = [("eps", cfg.eps), ("max_norm", cfg.max_norm.unwrap_or(1.0))];
    for (field, v) in positive {
        // (An infinite eps stops Adam's steps; an infinite norm is no norm.)
        if !v.is_finite() || v <= 0.0 {
            return refuse(field, format!("is {v}: must be a finite number above 0"));
        }
    }
    // Past the flags' 100, infinity too, the run trains and diverges as
    // such, which names the learning rate (tests reach a divergence so).
    if cfg.lr.is_nan() || cfg.lr <= 0.0 {
        return refuse("lr", format!("is {}: must be a number above 0", cfg.lr));
    }
    use crate::optim::Kind;
    if cfg.optimizer.is_adam() && cfg.momentum != 0.0 {
        return refuse(
            "momentum",
            format!(
                "is {} with {}, which has no momentum (its β1 is beta1): set it to 0",
                cfg.momentum,
                cfg.optimizer.name()
            ),
        );
    }
    if cfg.optimizer == Kind::Nesterov && cfg.momentum == 0.0 {
        return refuse(
            "momentum",
            "is 0 with nesterov, which needs momentum above 0 (e.g. 0.9), or use Kind::Sgd".into(),
        );
    }
    if cfg.hidden.is_empty() && cfg.dropout > 0.0 {
        return refuse(
            "dropout",
            format!(
                "is {} with no hidden layer to drop units from: set it to 0 (input_dropout drops pixels)",
                cfg.dropout
            ),
        );
    }
    // As `--augment` and its flags refuse them: the distortion would be
    // NaN, none or off the image, and the run would train on noise.
    match cfg.augment {
        Augment::Shift(0) => {
            return refuse(
                "augment",
                "is Shift(0): shift by at least 1 pixel, or use Augment::None".into(),
            )
        }
        Augment::Elastic { sigma, alpha } => {
            if let Err(e) = Augment::parse("elastic", sigma, alpha) {
                return refuse(
                    "augment",
                    format!("is Elastic {{ sigma: {sigma}, alpha: {alpha} }}: {}", e.0),
                );
            }
        }
        _ => {}
    }
    if !cfg.weight_decay.is_finite() || cfg.weight_decay < 0.0 {
        return refuse(
            "weight_decay",
            format!(
                "is {}: must be a finite number, 0 or more",
                cfg.weight_decay
            ),
        );
    }
    // As the flags refuse it for a new run: the decay alone would zero or
    // flip the weights every step (an older build's checkpoint resumes).
    let (kind, lr, wd, mu) = (cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum);
    if !resumed && crate::optim::decay_zeroes(kind, lr, wd, mu) {
        return refuse(
            "weight_decay",
            format!(
                "is {wd} with lr {lr}: {} scales the weights by {} a step, which zeroes or flips them; lower either",
                kind.name(),
                crate::show::number(crate::optim::decay_factor(kind, lr, wd, mu) as f32)
            ),
        );
    }
    let drops = (!cfg.hidden.is_empty() && cfg.dropout > 0.0) || cfg.input_dropout > 0.0;
    if cfg.dropout_mask == crate::config::DropoutMask::Batch && !drops {
        return refuse(
            "dropout_mask",
            "is Batch with no dropout to draw masks for: set dropout or input_dropout, or use DropoutMask::Image".into(),
        );
    }
    Ok(())
}

/// A note for a trained model that is [`crate::eval::unresponsive`] on
/// the test set (`outputs(true)`, [`crate::eval::Evaluator::same_output`]
/// on it): a model that learned nothing from the images, most often after
/// a learning rate too high for the network (its ReLUs stop firing for
/// every image). Said otherwise where the test images are all the same,
/// and where the model's outputs differ on images of the training file
/// (`outputs(false)`, asked only then: the validation images, or some
/// training images where none are held out), which it did learn to tell
/// apart. `None` for any other model, and for a test set of one class,
/// on which a model that learned answers one class too. `confusion[true][predicted]` is
/// the test set's ([`crate::eval::Metrics`]); `name(c)`, class `c`'s name
/// if the run has names; `narrowest`, the width of its narrowest hidden
/// layer, `None` where it has none (softmax regression, with no ReLUs).
pub fn learned_nothing(
    confusion: &[Vec<u64>],
    mut outputs: impl FnMut(bool) -> SameOutput,
    name: &dyn Fn(usize) -> Option<String>,
    lr: f32,
    narrowest: Option<usize>,
) -> Option<String> {
    let (only, why) = crate::eval::unresponsive(confusion, || outputs(true))?;
    let class = crate::eval::class_label(only, name(only).as_deref());
    let n: u64 = confusion.iter().flatten().sum();
    let right = crate::show::percent(confusion[only][only] as f64 / n as f64);
    if why == SameOutput::SameImages {
        // No learning rate would change that: the score, not the model,
        // is what says nothing.
        return Some(format!(
            "note: {}, right for {right}% of them: the test set cannot show what it learned; train with --data on a data set whose test images differ",
            crate::eval::same_images_note(&class)
        ));
    }
    let same = format!(
        "note: the model gives every test image the same output, answering class {class}, right for {right}% of them"
    );
    if outputs(false) == SameOutput::No {
        // It learned: what tells the test images apart is not what it
        // learned to look at.
        return Some(format!(
            "{same}, though its outputs differ on the training file's images: none of the ways the test images differ reach its outputs; check that the test files belong with the training files"
        ));
    }
    let lr = crate::show::number(lr);
    let cause = match narrowest {
        // A linear model's output ignores a pixel only where its weights
        // on it are 0: nothing a learning rate did, and nothing training
        // alone does (they start random; an unlit pixel keeps its own).
        None => "its weights on the pixels where the images differ are all 0, worn away by its --weight-decay: try a new run with a smaller --weight-decay".to_string(),
        Some(w) if w > NARROW => format!(
            "a learning rate too high for the network often does this (its ReLUs stop firing for every image): try a new run with a smaller --lr than {lr}"
        ),
        // So few units all stop firing at almost any rate (a smaller one
        // only delays it), and they carry too little to tell the classes
        // apart anyway.
        Some(w) => format!(
            "a hidden layer of only {} often does this ({} firing, for every image), as does a learning rate too high for the network: try a new run with wider hidden layers, or a smaller --lr than {lr}",
            crate::show::count(w, "unit"),
            match w {
                1 => "its unit stops",
                _ => "its units all stop",
            }
        ),
    };
    Some(format!(
        "{same}: it learned nothing from the images; {cause}"
    ))
}

/// Hidden layers this narrow or narrower are named in [`learned_nothing`]'s
/// note: all their units stopping together is likely at any learning rate.
const NARROW: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory available, or `None` (said on stderr, past the test
    /// harness's capture, so that a skip is never a quiet "ok") where the
    /// machine does not say (no `/proc/meminfo`).
    fn available_or_skip(test: &str) -> Option<u64> {
        let avail = crate::memory::available_memory();
        if avail.is_none() {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "*** SKIPPED: train::checks::tests::{test}: no /proc/meminfo here ***"
            );
        }
        avail
    }

    /// The training configuration `simplenn FLAGS` makes.
    fn train_config(flags: &[&str]) -> TrainConfig {
        use clap::Parser;
        let argv = ["simplenn", "--no-progress"].iter().chain(flags);
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        let crate::cli::Command::Train(args) = cli.into_command() else {
            panic!("not train");
        };
        args.into_config().unwrap()
    }

    /// The note comes for a model that gives every test image the same
    /// output, on a test set of more than one class; one answer from
    /// varying outputs, or varying answers, get none.
    #[test]
    fn a_model_that_gives_every_image_the_same_output_is_told_so() {
        let none = |_: usize| None;
        let asked = std::cell::Cell::new(0);
        // What `outputs` answers for the test set (counted) and for the
        // validation split.
        let outputs = |test: SameOutput, val: SameOutput| {
            let asked = &asked;
            move |is_test: bool| match is_test {
                true => {
                    asked.set(asked.get() + 1);
                    test
                }
                false => val,
            }
        };
        let same = |v: bool| {
            let test = match v {
                true => SameOutput::Unresponsive,
                false => SameOutput::No,
            };
            outputs(test, SameOutput::Unresponsive)
        };
        const WIDE: Option<usize> = Some(256);
        // every image answered 1 (right for 5 of 10)
        let one_answer = vec![vec![0, 3, 0], vec![0, 5, 0], vec![0, 2, 0]];
        let note = learned_nothing(&one_answer, same(true), &none, 2.0, WIDE).unwrap();
        assert_eq!(
            note,
            "note: the model gives every test image the same output, answering class 1, right for 50.00% of them: it learned nothing from the images; a learning rate too high for the network often does this (its ReLUs stop firing for every image): try a new run with a smaller --lr than 2"
        );
        // the same answer from outputs that differ: a model that may have
        // learned (an imbalanced test set), so nothing is said
        assert_eq!(
            learned_nothing(&one_answer, same(false), &none, 2.0, WIDE),
            None
        );
        assert_eq!(asked.get(), 2);
        // answers that vary: the outputs are not asked about
        let scattered = vec![vec![1, 1, 1], vec![1, 1, 1], vec![0, 1, 3]];
        assert_eq!(
            learned_nothing(&scattered, same(true), &none, 0.1, WIDE),
            None
        );
        // an empty test set, or one of a single class (every image right
        // or none): nothing to tell
        for one_class in [[[0, 0], [0, 0]], [[0, 0], [0, 7]], [[0, 0], [7, 0]]] {
            let confusion = one_class.map(|row| row.to_vec());
            assert_eq!(
                learned_nothing(&confusion, same(true), &none, 0.1, WIDE),
                None
            );
        }
        assert_eq!(asked.get(), 2);
        // a hidden layer of 4 units or fewer is named as the likelier
        // cause, wider ones are not
        let note = learned_nothing(&one_answer, same(true), &none, 0.1, Some(1)).unwrap();
        assert!(
            note.ends_with("it learned nothing from the images; a hidden layer of only 1 unit often does this (its unit stops firing, for every image), as does a learning rate too high for the network: try a new run with wider hidden layers, or a smaller --lr than 0.1"),
            "{note}"
        );
        let note = learned_nothing(&one_answer, same(true), &none, 0.1, Some(4)).unwrap();
        assert!(
            note.contains(
                "a hidden layer of only 4 units often does this (its units all stop firing"
            ),
            "{note}"
        );
        let note = learned_nothing(&one_answer, same(true), &none, 0.1, Some(5)).unwrap();
        assert!(note.ends_with("; a learning rate too high for the network often does this (its ReLUs stop firing for every image): try a new run with a smaller --lr than 0.1"), "{note}");
        // names where the run has them, on one line
        let named = |c: usize| Some(format!("digit\n{c}"));
        let note = learned_nothing(&one_answer, same(true), &named, 2.0, WIDE).unwrap();
        assert!(note.contains("class 1 (digit\\n1), right"), "{note}");
        // test images all the same: any model answers them alike, so no
        // learning rate is blamed, whatever the widths
        for narrowest in [None, Some(1)] {
            let note = learned_nothing(
                &one_answer,
                outputs(SameOutput::SameImages, SameOutput::No),
                &none,
                2.0,
                narrowest,
            );
            assert_eq!(
                note.unwrap(),
                "note: every test image is the same, pixel for pixel, so the model answers them all alike, class 1, right for 50.00% of them: the test set cannot show what it learned; train with --data on a data set whose test images differ"
            );
        }
        // outputs that differ on the training file's: the model learned
        // to tell those apart, so neither its rate nor its widths are blamed
        let both = outputs(SameOutput::Unresponsive, SameOutput::No);
        let note = learned_nothing(&one_answer, both, &none, 2.0, Some(1)).unwrap();
        assert_eq!(
            note,
            "note: the model gives every test image the same output, answering class 1, right for 50.00% of them, though its outputs differ on the training file's images: none of the ways the test images differ reach its outputs; check that the test files belong with the training files"
        );
        // softmax regression (no hidden layer) has no ReLUs to blame
        let note = learned_nothing(&one_answer, same(true), &none, 2.0, None).unwrap();
        assert!(
            note.ends_with("it learned nothing from the images; its weights on the pixels where the images differ are all 0, worn away by its --weight-decay: try a new run with a smaller --weight-decay"),
            "{note}"
        );
    }

    /// Images too large for any network: the refusal names the smallest
    /// network of the run's depth or none, whichever needs less. Hidden
    /// layers narrower than the classes need less than none (d × 1 weights
    /// against d × 10), so "even with no hidden layer" is said only where
    /// it is so.
    #[test]
    fn a_refusal_for_large_images_names_the_smaller_network() {
        let Some(avail) = available_or_skip("a_refusal_for_large_images_names_the_smaller_network")
        else {
            return;
        };
        // d × 1 weights of 4 bytes: twice the memory available.
        let d = (avail / 2) as usize;
        let refusal = |hidden: &str, widths: &[usize]| {
            let cfg = train_config(&["--hidden", hidden, "--batch-size", "1"]);
            let dims = Dims::new(d, widths, 10);
            check_memory(&cfg, &dims, 1, (1, d), (2, 1), None, (false, false))
                .unwrap_err()
                .to_string()
        };
        let e = refusal("1", &[1]);
        assert!(
            e.starts_with(&format!(
                "the images have {d} pixels each: the network {d}-1-10 (none without hidden layers needs less) needs "
            )),
            "{e}"
        );
        let e = refusal("none", &[]);
        assert!(
            e.starts_with(&format!(
                "the images have {d} pixels each: even with no hidden layer the network {d}-10 needs "
            )),
            "{e}"
        );
        // Wider hidden layers need more than none: none is named.
        let e = refusal("16", &[16]);
        assert!(
            e.starts_with(&format!(
                "the images have {d} pixels each: even with no hidden layer the network {d}-10 needs "
            )),
            "{e}"
        );
    }

    /// A run whose batch buffers tip it over memory is told the largest
    /// `--batch-size` that fits beside the fix for its network: images so
    /// large that a batch of 512 of them (a block's rows) cannot be held,
    /// but one image can.
    #[test]
    fn a_refusal_names_the_batch_that_would_fit() {
        let Some(avail) = available_or_skip("a_refusal_names_the_batch_that_would_fit") else {
            return;
        };
        let cfg = train_config(&["--hidden", "none", "--batch-size", "512"]);
        let (n_train, n_test) = (1000, 1);
        let dims = |d: usize| Dims::new(d, &[], 10);
        let need = |d: usize, batch: usize| {
            let cfg = TrainConfig {
                batch_size: batch,
                ..cfg.clone()
            };
            run_bytes(&cfg, &dims(d), 1, (n_train, n_test), None, false)
        };
        // The most pixels whose one-image run needs at most half of what
        // is available.
        let d = (1..usize::MAX.ilog2())
            .map(|b| 1usize << b)
            .take_while(|&d| need(d, 1) <= avail / 2)
            .last()
            .unwrap();
        assert!(need(d, 512) > avail, "{} {avail}", need(d, 512));
        let e = check_memory(
            &cfg,
            &dims(d),
            1,
            (1, d),
            (n_train, n_test),
            None,
            (false, false),
        )
        .unwrap_err()
        .to_string();
        let b = (1..512).rev().find(|&b| need(d, b) <= avail).unwrap();
        assert!(
            e.starts_with(&format!("the images have {d} pixels each: "))
                && e.ends_with(&format!(
                    "; use smaller images, or a smaller --batch-size ({b} or less fits)"
                )),
            "{e}"
        );
    }

    /// `train --serve`'s copies of the weights and its scoring count in
    /// the memory check: a network that fits without them (about 70 % of
    /// the memory available) is refused with them, and says so.
    #[test]
    fn the_live_pages_copies_count_in_the_memory_check() {
        let Some(avail) = available_or_skip("the_live_pages_copies_count_in_the_memory_check")
        else {
            return;
        };
        let cfg = train_config(&[]);
        let (n_train, n_test) = (1000, 10_000);
        let dims = |h: usize| Dims::new(784, &[h], 10);
        let need = |h: usize| training_bytes(&dims(h), 1, cfg.batch_size, n_test);
        // The widest layer whose run (without the page) needs ≤ 70 %.
        let h = (1..=usize::MAX.ilog2())
            .map(|b| 1usize << b)
            .take_while(|&h| need(h) <= avail / 10 * 7)
            .last()
            .unwrap();
        let h = (h..2 * h)
            .step_by((h / 64).max(1))
            .take_while(|&h| need(h) <= avail / 10 * 7)
            .last()
            .unwrap();
        assert!(page_bytes(&dims(h), n_test, 0) > need(h) / 2);
        let check = |page| {
            check_memory(
                &cfg,
                &dims(h),
                1,
                (28, 28),
                (n_train, n_test),
                page,
                (false, false),
            )
        };
        check(None).unwrap();
        let e = check(Some((n_test, 0))).unwrap_err().to_string();
        assert!(
            e.contains("needs")
                && e.contains("for its weights (with train --serve's copies of them)"),
            "{e}"
        );
        // Twice as wide does not fit: a new run is told to narrow its
        // layers, a resumed one (whose network no flag may change) not.
        // A new run's refusal is a usage error (exit 2), a resumed one's
        // not (exit 1, as its checkpoint's read would refuse it).
        let wide = |resumed| {
            let dims = dims(2 * h);
            let saves = (false, resumed);
            let e =
                check_memory(&cfg, &dims, 1, (28, 28), (n_train, n_test), None, saves).unwrap_err();
            assert_eq!(e.is::<UsageError>(), !resumed, "{e}");
            e.to_string()
        };
        let e = wide(false);
        // (The flag as the config has it; the test's network is wider.)
        let says = format!("--hidden 256: the network 784-{}-10 needs ", 2 * h);
        assert!(e.starts_with(&says), "{e}");
        let e = wide(true);
        assert!(
            e.starts_with(&format!(
                "resuming: the checkpoint's network 784-{}-10 needs ",
                2 * h
            )) && e.contains("(a resumed run keeps its checkpoint's network)")
                && !e.contains("--hidden"),
            "{e}"
        );
    }
}
