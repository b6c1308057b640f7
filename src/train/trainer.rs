//! One training step: Trainer (parameters, optimiser state, buffers), its
//! regularisers, the epoch's shuffle, and the one worker pool.

use std::ops::Range;

use anyhow::Result;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::augment::Augmenter;
use crate::config::{DropoutMask, TrainConfig};
use crate::data::Dataset;
use crate::gemm::Beta;
use crate::layers::DropMask;
use crate::model::{forward_backward, Dims, Params, PassOpts, Workspace};
use crate::optim::{self, Optimizer};
use crate::thin::Thinned;

/// Rows per forward/backward pass. Larger batches are processed in blocks
/// of this many rows whose gradients are summed in block order, so a
/// full-batch run needs no full-batch buffers.
pub const MAX_BLOCK: usize = 512;

/// Parts to cut parallel work into, and threads in the pool, for
/// `--threads threads`: `min(threads, cores)`.
pub fn parts_for(threads: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    threads.clamp(1, cores)
}

/// Parameters, optimiser state and buffers for training steps, allocated
/// once. [`Trainer::step`] allocates nothing once warm (its first call sizes
/// each pool thread's GEMM packing buffer, [`crate::gemm::reserve_packing`]). Plain SGD (no weight decay)
/// has no gradient buffer: each step folds its gradient straight into the
/// momentum buffer. Every other optimiser, and any optimiser training the
/// thinned network of one hidden dropout mask per batch
/// ([`Regularisers::thins`]), writes the gradient into its own slab (the
/// thinned network's scattered into it), then runs [`optim::update`] over it.
pub struct Trainer {
    pub params: Params,
    /// The momentum buffer `v` (PyTorch's `momentum_buffer`) for sgd and
    /// nesterov; Adam's first moment `exp_avg` for adam and adamw.
    pub velocity: Params,
    /// Adam's second moment `exp_avg_sq` (adam and adamw only).
    pub exp_avg_sq: Option<Params>,
    /// The batch's gradient (every optimiser but fused plain SGD).
    grad: Option<Params>,
    ws: Workspace,
    parts: usize,
    optimizer: Optimizer,
    reg: Regularisers,
    /// Max-norm's per-column scratch, `n_1` floats.
    norms: Vec<f32>,
    seed: u64,
    /// Steps taken so far: the dropout mask's counter and Adam's `t − 1`.
    pub steps: u64,
    /// Distorts each training image as it is gathered (see [`Trainer::set_augment`]).
    augment: Option<Augmenter>,
    /// The thinned network of batchwise hidden dropout, when that is on.
    thin: Option<Thinned>,
    /// Whether the pool's threads have had their packing buffers sized
    /// ([`crate::gemm::reserve_packing`]), done by the first step.
    packing_reserved: bool,
    /// The epoch being trained: with the seed and the image index, what
    /// chooses each image's distortion.
    pub epoch: usize,
}

/// The regularisers a trainer applies besides weight decay.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Regularisers {
    /// Dropout probability on every hidden layer.
    pub dropout: f32,
    /// Dropout probability on the inputs.
    pub input_dropout: f32,
    /// Max-norm bound on each unit's incoming weight vector.
    pub max_norm: Option<f32>,
    /// One dropout mask per batch instead of per image (`--dropout-mask
    /// batch`); with hidden dropout, each step then trains the thinned
    /// network ([`crate::thin`]).
    pub per_batch: bool,
}

impl Regularisers {
    /// Those of a run's flags.
    pub fn of(cfg: &TrainConfig) -> Self {
        Regularisers {
            dropout: cfg.dropout,
            input_dropout: cfg.input_dropout,
            max_norm: cfg.max_norm,
            per_batch: cfg.dropout_mask == DropoutMask::Batch,
        }
    }

    /// Whether a trainer of `dims` with these regularisers trains the
    /// thinned network of batchwise hidden dropout ([`crate::thin`]): one
    /// mask per batch, hidden dropout, and a hidden layer to thin.
    pub fn thins(&self, dims: &Dims) -> bool {
        self.per_batch && self.dropout > 0.0 && !dims.hidden().is_empty()
    }
}

/// Loss and hits summed over one step's batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepResult {
    pub loss_sum: f64,
    pub correct: usize,
}

impl Trainer {
    /// SGD with momentum `μ` and hidden dropout: the default trainer.
    /// `parts`: see [`parts_for`]; call [`Trainer::step`] inside the pool.
    pub fn new(params: Params, parts: usize, momentum: f32, dropout: f32, seed: u64) -> Self {
        let reg = Regularisers {
            dropout,
            ..Regularisers::default()
        };
        Self::with(params, parts, Optimizer::sgd(momentum), reg, seed)
    }

    /// A trainer with any optimiser and regularisers, for batches of any size.
    pub fn with(
        params: Params,
        parts: usize,
        optimizer: Optimizer,
        reg: Regularisers,
        seed: u64,
    ) -> Self {
        Self::for_batch(params, parts, optimizer, reg, seed, MAX_BLOCK)
    }

    /// [`Trainer::with`], for steps of at most `batch` images: its buffers
    /// hold [`block_rows`]`(batch)` rows, not [`MAX_BLOCK`] (a run of a few
    /// images of millions of pixels need not hold 512 of them). The steps
    /// are the same as [`Trainer::with`]'s, bit for bit.
    pub fn for_batch(
        params: Params,
        parts: usize,
        optimizer: Optimizer,
        reg: Regularisers,
        seed: u64,
        batch: usize,
    ) -> Self {
        let dims = params.dims.clone();
        let adam = optimizer.kind.is_adam();
        // Batchwise hidden dropout trains a thinned network whose gradient
        // is scattered into a gradient slab: never the fused SGD path.
        let thin = reg.thins(&dims);
        Trainer {
            ws: Workspace::new(&dims, block_rows(batch)),
            velocity: Params::zeros(dims.clone()),
            exp_avg_sq: adam.then(|| Params::zeros(dims.clone())),
            grad: (!optimizer.fused() || thin).then(|| Params::zeros(dims.clone())),
            thin: thin.then(|| Thinned::new(&dims)),
            packing_reserved: false,
            norms: vec![0.0; reg.max_norm.map_or(0, |_| dims.layer(0).1)],
            params,
            parts,
            optimizer,
            reg,
            seed,
            steps: 0,
            augment: None,
            epoch: 1,
        }
    }

    /// Distort every image gathered from now on (call inside the pool that
    /// runs the steps: it sizes each pool thread's scratch once, here).
    pub fn set_augment(&mut self, augment: Option<Augmenter>) {
        if let Some(a) = &augment {
            a.warm();
        }
        self.augment = augment;
    }

    /// One step on the images `idx` of `data`: gather (and distort),
    /// forward, loss, backward (block by block), update with learning rate
    /// `lr`, then the max-norm constraint.
    pub fn step(&mut self, data: &Dataset, idx: &[u32], lr: f32) -> StepResult {
        assert!(
            idx.len() <= self.ws.cap || self.ws.cap == MAX_BLOCK,
            "a step of {} images on a trainer made for batches of {}",
            idx.len(),
            self.ws.cap
        );
        let inv_batch = 1.0 / idx.len() as f32;
        let mut mask = DropMask::new(self.seed, self.steps);
        if self.reg.per_batch {
            mask = mask.per_batch();
        }
        let blocks = idx.len().div_ceil(MAX_BLOCK);
        let fused = self.grad.is_none();
        let (p, p_in) = (self.reg.dropout, self.reg.input_dropout);
        if !self.packing_reserved {
            // Size every pool thread's packing buffer for the largest
            // product once: which thread runs which product varies with work
            // stealing, and the thinned network's shapes change every step.
            rayon::broadcast(|_| crate::gemm::reserve_packing());
            self.packing_reserved = true;
        }
        // Batchwise hidden dropout: the step trains the thinned network
        // (unless a layer lost every unit: then the full one, same mask).
        let mut thin = self
            .thin
            .as_mut()
            .and_then(|t| t.draw(mask, p).then_some(t));
        if let Some(t) = &mut thin {
            t.gather(&self.params, p);
        }
        let mut res = StepResult::default();
        for (blk, ids) in idx.chunks(MAX_BLOCK).enumerate() {
            let n = ids.len();
            let row0 = blk * MAX_BLOCK;
            let opts = PassOpts {
                inv_batch,
                dropout: (p > 0.0 && thin.is_none()).then(|| (p, mask.offset(row0))),
                input_dropout: (p_in > 0.0).then(|| (p_in, mask.input().offset(row0))),
                // Fused SGD: v ← μ·v + g on the first block, v += g on the
                // others; otherwise g itself, summed over the blocks ...
                beta: match (blk, fused) {
                    (0, true) => Beta::Scale(self.optimizer.momentum),
                    (0, false) => Beta::Overwrite,
                    _ => Beta::Accumulate,
                },
                // ... and (fused) w ← w − lr·v once the whole batch is in.
                lr: (fused && blk + 1 == blocks).then_some(lr),
                parts: self.parts,
                pass1: None,
            };
            let (augment, epoch) = (&self.augment, self.epoch);
            let load = |rows: Range<usize>, x: &mut [f32], y: &mut [u8]| match augment {
                None => data.gather(&ids[rows], x, y),
                Some(a) => a.gather(data, &ids[rows], epoch, x, y),
            };
            match &mut thin {
                Some(t) => {
                    forward_backward(&mut t.params, &mut self.ws, n, &load, &mut t.grads, opts)
                }
                None => {
                    let target = self.grad.as_mut().unwrap_or(&mut self.velocity);
                    forward_backward(&mut self.params, &mut self.ws, n, &load, target, opts)
                }
            }
            res.loss_sum += self.ws.loss[..n].iter().map(|&l| l as f64).sum::<f64>();
            res.correct += self.ws.hit[..n].iter().map(|&c| c as usize).sum::<usize>();
        }
        self.steps += 1;
        if let (Some(t), Some(g)) = (&thin, &mut self.grad) {
            t.scatter(g, p);
        }
        if let Some(g) = &self.grad {
            optim::update(
                &self.optimizer,
                &mut self.params,
                g,
                &mut self.velocity,
                self.exp_avg_sq.as_mut(),
                lr,
                self.steps,
                self.parts,
            );
        }
        if let Some(c) = self.reg.max_norm {
            optim::max_norm(&mut self.params, c, &mut self.norms, self.parts);
        }
        res
    }
}

/// The permutation of `0..n` for `epoch`: a ChaCha8 stream chosen by
/// `(seed, epoch)`, so any epoch can be replayed without the ones before it.
pub fn shuffle_epoch(order: &mut [u32], seed: u64, epoch: usize) {
    for (i, v) in order.iter_mut().enumerate() {
        *v = i as u32;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5348_5546_464c_4521);
    rng.set_stream(epoch as u64);
    order.shuffle(&mut rng);
}

/// Each pool thread's stack.
const POOL_STACK_BYTES: usize = 2 << 20;

/// The one worker pool of a run: [`parts_for`]`(threads)` threads (one per
/// part; no more than the cores), named for profilers. On 2 cores a pool of
/// 8, with the work still in 2 parts, took 0.29–0.335 s a default epoch
/// against 0.27–0.30 s with a pool of 2 (AMD EPYC, alternated runs; why was
/// not measured).
///
/// Each thread allocates once before this returns: the C library then
/// gives it its own malloc arena (64 MiB of address space, under `ulimit
/// -v`), so the memory estimates made inside the pool
/// ([`crate::memory::available_memory`]) see every arena, not only those
/// of the threads that happened to have started work.
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(parts_for(threads))
        .thread_name(|i| format!("simplenn-{i}"))
        // std's usual 2 MiB, set here so that `RUST_MIN_STACK`, which
        // rayon would otherwise take, cannot shrink it to an overflow.
        .stack_size(POOL_STACK_BYTES)
        .build()
        .map_err(|e| {
            // rayon's error shows its cause and also gives it as its
            // source: keep the cause once, as an io::Error (whose errno
            // says which limit was reached).
            let io = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .and_then(std::io::Error::raw_os_error)
                .map(std::io::Error::from_raw_os_error);
            pool_failure(io, &e, parts_for(threads))
        })?;
    pool.broadcast(|_| drop(std::hint::black_box(Box::new(0u8))));
    Ok(pool)
}

/// Why a pool of `parts` threads did not start: its OS error `io` where
/// there is one (kept as the error's source, so that the line gets the fix
/// for the limit it names), else `e`'s words. Where the limit on threads
/// or memory (EAGAIN) stopped a pool of one thread, the fix is said here,
/// without the usual "or use fewer --threads", which could not help.
fn pool_failure(
    io: Option<std::io::Error>,
    e: &dyn std::fmt::Display,
    parts: usize,
) -> anyhow::Error {
    match io {
        Some(io) if io.kind() == std::io::ErrorKind::WouldBlock && parts == 1 => {
            anyhow::anyhow!("{io}; {}", crate::error::THREADS_FIX)
        }
        Some(io) => anyhow::Error::new(io),
        None => anyhow::anyhow!("{e}"),
    }
    .context("cannot start the thread pool")
}

/// Rows of a step's buffers for batches of `batch` images: larger batches
/// are taken [`MAX_BLOCK`] rows at a time.
pub fn block_rows(batch: usize) -> usize {
    batch.clamp(1, MAX_BLOCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pool of one thread stopped by a limit is not told to use fewer
    /// threads; a larger one keeps its OS error in the chain, where the
    /// binary finds that limit's fix (which offers fewer --threads).
    #[cfg(unix)]
    #[test]
    fn a_one_thread_pool_is_not_told_to_use_fewer_threads() {
        let eagain = || Some(std::io::Error::from_raw_os_error(libc::EAGAIN));
        let one = pool_failure(eagain(), &"", 1);
        assert_eq!(
            format!("{one:#}"),
            format!(
                "cannot start the thread pool: {}; {}",
                std::io::Error::from_raw_os_error(libc::EAGAIN),
                crate::error::THREADS_FIX
            )
        );
        assert!(!format!("{one:#}").contains("fewer"), "{one:#}");
        let fix = |e: &anyhow::Error| {
            e.chain()
                .filter_map(|c| c.downcast_ref::<std::io::Error>())
                .find_map(crate::error::resource_fix)
        };
        assert_eq!(fix(&one), None);
        let two = pool_failure(eagain(), &"", 2);
        assert!(fix(&two).is_some_and(|f| f.ends_with("or use fewer --threads")));
        assert!(!format!("{two:#}").contains("; "), "{two:#}");
        // Another error of a one-thread pool keeps its own fix.
        let nomem = pool_failure(
            Some(std::io::Error::from_raw_os_error(libc::ENOMEM)),
            &"",
            1,
        );
        assert!(fix(&nomem).is_some());
        let none = pool_failure(None, &"no such thing", 1);
        assert_eq!(
            format!("{none:#}"),
            "cannot start the thread pool: no such thing"
        );
    }

    /// The memory check's count of optimiser slabs (`extra_slabs`) is what
    /// a trainer allocates besides the parameters: momentum or `exp_avg`,
    /// Adam's `exp_avg_sq`, and a gradient slab unless the update is fused.
    #[test]
    fn the_memory_checks_slab_count_is_what_the_trainer_holds() {
        let dims = Dims::new(6, &[5], 3);
        for kind in optim::Kind::ALL {
            for weight_decay in [0.0, 0.05] {
                let optimizer = Optimizer {
                    kind,
                    weight_decay,
                    ..Optimizer::sgd(0.9)
                };
                let t = Trainer::with(
                    Params::zeros(dims.clone()),
                    1,
                    optimizer,
                    Regularisers::default(),
                    1,
                );
                let held = 1 + t.exp_avg_sq.is_some() as usize + t.grad.is_some() as usize;
                assert_eq!(optimizer.extra_slabs(), held, "{kind:?}, wd {weight_decay}");
            }
        }
        // Spelled out: sgd's momentum alone; a gradient slab with weight
        // decay or nesterov; Adam's two moments and a gradient slab.
        let slabs = |kind, weight_decay| {
            Optimizer {
                kind,
                weight_decay,
                ..Optimizer::sgd(0.9)
            }
            .extra_slabs()
        };
        assert_eq!(slabs(optim::Kind::Sgd, 0.0), 1);
        assert_eq!(slabs(optim::Kind::Sgd, 0.05), 2);
        assert_eq!(slabs(optim::Kind::Nesterov, 0.0), 2);
        assert_eq!(slabs(optim::Kind::Adam, 0.0), 3);
        assert_eq!(slabs(optim::Kind::Adamw, 0.01), 3);
    }

    #[test]
    fn each_epoch_has_its_own_permutation_and_replays_it() {
        let shuffled = |seed, epoch| {
            let mut o = vec![7u32; 1000];
            shuffle_epoch(&mut o, seed, epoch);
            o
        };
        let a = shuffled(1, 1);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert!(sorted.iter().enumerate().all(|(i, &v)| v == i as u32));
        // The same (seed, epoch) gives the same order from any starting
        // contents; another epoch or seed gives another order.
        assert_eq!(a, shuffled(1, 1));
        for other in [shuffled(1, 2), shuffled(2, 1), shuffled(1, 0)] {
            let same = a.iter().zip(&other).filter(|(x, y)| x == y).count();
            assert!(same < 20, "{same} of 1000 places agree");
        }
    }

    /// Softmax regression has no hidden layer to thin: one mask per batch
    /// there is input dropout's alone, on the full network.
    #[test]
    fn a_network_without_hidden_layers_is_never_thinned() {
        let reg = Regularisers {
            dropout: 0.2,
            input_dropout: 0.2,
            per_batch: true,
            ..Regularisers::default()
        };
        assert!(!reg.thins(&Dims::mnist(&[])));
        assert!(reg.thins(&Dims::mnist(&[8])));
    }
}
