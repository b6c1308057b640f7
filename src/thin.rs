//! Batchwise dropout on a thinned network (Graham, Reizenstein & Robinson
//! 2015, "Efficient batchwise dropout training using submatrices").
//!
//! With `--dropout-mask batch` every image of a batch loses the same hidden
//! units ([`DropMask::per_batch`]). A dropped unit then contributes nothing
//! to any row, so the step is the step of a smaller network: the kept rows
//! and columns of every weight. This module gathers that network, lets
//! [`crate::model::forward_backward`] train it like any other, and scatters
//! its gradient back into the full layout (zero where a unit was dropped),
//! where the optimiser and max-norm run as always. With hidden dropout `p`
//! each hidden-to-hidden product shrinks to about `(1 − p)²` of its FLOP,
//! the first and the last (one side thinned) to about `1 − p`.
//!
//! ```text
//! kept_h   units of hidden layer h with keeps(0, j, p)      ascending, (n_{h+1}·(1−p) or so)
//! W̃_0ᵀ     = W_0ᵀ[:, kept_0]                                (D, ñ_1)     inputs stay whole
//! W̃_l      = s · W_l[kept_l, kept_{l−1}]    1 ≤ l < L−1     (ñ_{l+1}, ñ_l)
//! W̃_{L−1}  = s · W_{L−1}[:, kept_{L−2}]                     (K, ñ_{L−1})
//! b̃_l      = b_l[kept_l] (all K for the last)
//! ```
//! `s = 1/(1 − p)` is the inverted-dropout scale of the activations each
//! weight reads: folded into the weights, so the thinned network runs with
//! no dropout at all (`a = relu(z + b)`, then `(s·W)` reads it), the same
//! function as the full network under the mask. Its gradient comes back
//! by the chain rule: `dW_l = s · dW̃_l` for the scaled weights (`l ≥ 1`),
//! `dW_0 = dW̃_0` and `db_l = db̃_l` as they are. Input dropout (`--input-dropout`)
//! stays a mask on the loaded rows (per batch too), as in the full network.
//!
//! The thinned products sum the same terms as the full network under the
//! same mask, minus the zero ones, but cut into GEMM blocks at other
//! places, so the results agree to rounding, not to the bit (the tests
//! compare them). Everything here is a pure function of the mask and the
//! weights, so the step is still bit-identical across thread counts.

use rayon::prelude::*;

use crate::layers::DropMask;
use crate::model::{slab_mut, stored_transposed, Dims, Params};

/// Marks a dropped unit in [`Thinned`]'s slot tables.
const DROPPED: u32 = u32::MAX;

/// Rows per parallel piece of a gather or scatter: enough work per task.
const MIN_ROWS: usize = 16;

/// The thinned network of one step and what maps it to the full one,
/// allocated once for the full network's widths: a step allocates nothing.
pub struct Thinned {
    /// Widths `[D, ñ_1, …, ñ_{L−1}, K]`; its slab has room for the full
    /// network, so a step only changes the widths and the length.
    pub params: Params,
    /// The thinned network's gradient, in its layout.
    pub grads: Params,
    /// `kept[h]`: the kept units of hidden layer `h`, ascending.
    kept: Vec<Vec<u32>>,
    /// `slot[h][j]`: where unit `j` of hidden layer `h` sits in `kept[h]`,
    /// or [`DROPPED`].
    slot: Vec<Vec<u32>>,
}

impl Thinned {
    /// Buffers for networks of `dims` (with at least one hidden layer).
    pub fn new(dims: &Dims) -> Self {
        assert!(
            !dims.hidden().is_empty(),
            "batchwise dropout needs a hidden layer"
        );
        Thinned {
            params: Params::zeros(dims.clone()),
            grads: Params::zeros(dims.clone()),
            kept: dims
                .hidden()
                .iter()
                .map(|&w| Vec::with_capacity(w))
                .collect(),
            slot: dims.hidden().iter().map(|&w| vec![DROPPED; w]).collect(),
        }
    }

    /// Draws the kept units of every hidden layer from the step's mask
    /// (`mask.layer(h)` with the row ignored: the units
    /// [`DropMask::per_batch`] keeps) and sets the thinned widths. Returns
    /// false, leaving the thinned network unusable, when some layer keeps
    /// no unit: a network with an empty layer is not one the GEMMs run, so
    /// the caller takes that step on the full network under the same mask.
    pub fn draw(&mut self, mask: DropMask, p: f32) -> bool {
        let mask = mask.per_batch();
        for (h, (kept, slot)) in self.kept.iter_mut().zip(&mut self.slot).enumerate() {
            let m = mask.layer(h);
            kept.clear();
            for (j, s) in slot.iter_mut().enumerate() {
                *s = if m.keeps(0, j, p) {
                    kept.push(j as u32);
                    (kept.len() - 1) as u32
                } else {
                    DROPPED
                };
            }
            if kept.is_empty() {
                return false;
            }
        }
        for (h, kept) in self.kept.iter().enumerate() {
            self.params.dims.set_hidden(h, kept.len());
            self.grads.dims.set_hidden(h, kept.len());
        }
        let n = self.params.dims.param_count();
        // Within the capacity of the full network's slab: no allocation.
        self.params.data.resize(n, 0.0);
        self.grads.data.resize(n, 0.0);
        true
    }

    /// The thinned network's parameters from the full network's `full`
    /// (after [`Thinned::draw`]), the weights that read hidden activations
    /// scaled by `s = 1/(1 − p)`.
    pub fn gather(&mut self, full: &Params, p: f32) {
        let s = 1.0 / (1.0 - p);
        let Params { dims, data } = &mut self.params;
        for (l, (tw, tb)) in slab_mut(dims, data).into_layers(dims.layers()).enumerate() {
            let (ti, to) = dims.layer(l);
            let (fi, fo) = full.dims.layer(l);
            let (fw, fb) = full.layer_slices(l);
            let outs = self.kept.get(l).map(|k| &k[..]);
            if stored_transposed(l) {
                // W̃_0ᵀ (D, ñ_1): every input row, the kept columns.
                let cols = outs.expect("layer 0 feeds a hidden layer");
                tw.par_chunks_mut(to)
                    .zip(fw.par_chunks(fo))
                    .with_min_len(MIN_ROWS)
                    .for_each(|(t, f)| {
                        for (t, &c) in t.iter_mut().zip(cols) {
                            *t = f[c as usize];
                        }
                    });
            } else {
                // W̃_l (ñ_{l+1}, ñ_l): the kept rows (all K for the last
                // layer), the kept columns of the layer below, scaled.
                let cols = &self.kept[l - 1];
                tw.par_chunks_mut(ti)
                    .enumerate()
                    .with_min_len(MIN_ROWS)
                    .for_each(|(o, t)| {
                        let row = outs.map_or(o, |k| k[o] as usize);
                        let f = &fw[row * fi..(row + 1) * fi];
                        for (t, &c) in t.iter_mut().zip(cols) {
                            *t = s * f[c as usize];
                        }
                    });
            }
            for (o, t) in tb.iter_mut().enumerate() {
                *t = fb[outs.map_or(o, |k| k[o] as usize)];
            }
        }
    }

    /// The full network's gradient `g` from the thinned one's
    /// ([`Thinned::grads`]): at the kept places `s·dW̃_l` for the scaled
    /// weights (`l ≥ 1`), the first layer's weights and every bias as they
    /// are; 0 elsewhere (a dropped unit's weights and bias had no effect on
    /// the loss).
    /// Each row is zeroed, then its kept columns written from the
    /// thinned row in order.
    pub fn scatter(&self, g: &mut Params, p: f32) {
        let s = 1.0 / (1.0 - p);
        let Params { dims, data } = g;
        for (l, (fw, fb)) in slab_mut(dims, data).into_layers(dims.layers()).enumerate() {
            let (fi, fo) = dims.layer(l);
            let (ti, to) = self.grads.dims.layer(l);
            let (tw, tb) = self.grads.layer_slices(l);
            let slots = self.slot.get(l).map(|k| &k[..]);
            if stored_transposed(l) {
                let cols = &self.kept[0];
                fw.par_chunks_mut(fo)
                    .zip(tw.par_chunks(to))
                    .with_min_len(MIN_ROWS)
                    .for_each(|(f, t)| {
                        f.fill(0.0);
                        for (&v, &c) in t.iter().zip(cols) {
                            f[c as usize] = v;
                        }
                    });
            } else {
                let cols = &self.kept[l - 1];
                fw.par_chunks_mut(fi)
                    .enumerate()
                    .with_min_len(MIN_ROWS)
                    .for_each(|(o, f)| {
                        f.fill(0.0);
                        let row = slots.map_or(o as u32, |k| k[o]);
                        if row != DROPPED {
                            let t = &tw[row as usize * ti..(row as usize + 1) * ti];
                            for (&v, &c) in t.iter().zip(cols) {
                                f[c as usize] = s * v;
                            }
                        }
                    });
            }
            for (o, f) in fb.iter_mut().enumerate() {
                let row = slots.map_or(o as u32, |k| k[o]);
                *f = if row == DROPPED {
                    0.0
                } else {
                    tb[row as usize]
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::Beta;
    use crate::model::{forward_backward, Init, PassOpts, Workspace};

    /// The gradient of `n` rows of `params` under batchwise hidden dropout
    /// `p` (and input dropout `p_in`) with the masks of `mask`: on the full
    /// network with the masks applied, and through the thinned network.
    fn both_ways(
        params: &Params,
        n: usize,
        p: f32,
        p_in: f32,
        mask: DropMask,
    ) -> (Params, Params, f32, f32) {
        let dims = params.dims.clone();
        let d = dims.d();
        let x: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919 + 13) % 256) as f32 / 255.0)
            .collect();
        let y: Vec<u8> = (0..n).map(|r| (r * 7 % dims.k()) as u8).collect();
        let load = |rows: std::ops::Range<usize>, xb: &mut [f32], yb: &mut [u8]| {
            xb.copy_from_slice(&x[rows.start * d..rows.end * d]);
            yb.copy_from_slice(&y[rows]);
        };
        let mask = mask.per_batch();
        let opts = PassOpts {
            inv_batch: 1.0 / n as f32,
            dropout: Some((p, mask)),
            input_dropout: (p_in > 0.0).then(|| (p_in, mask.input())),
            beta: Beta::Overwrite,
            lr: None,
            parts: 2,
            pass1: None,
        };
        let mut ws = Workspace::new(&dims, n);
        let mut dense = Params::zeros(dims.clone());
        forward_backward(&mut params.clone(), &mut ws, n, &load, &mut dense, opts);
        let dense_loss: f32 = ws.loss[..n].iter().sum();

        let mut t = Thinned::new(&dims);
        assert!(t.draw(mask, p), "every layer keeps a unit");
        t.gather(params, p);
        let opts = PassOpts {
            dropout: None,
            ..opts
        };
        forward_backward(&mut t.params, &mut ws, n, &load, &mut t.grads, opts);
        let thin_loss: f32 = ws.loss[..n].iter().sum();
        let mut thin = Params::zeros(dims);
        thin.data.fill(f32::NAN); // every element must be written
        t.scatter(&mut thin, p);
        (dense, thin, dense_loss, thin_loss)
    }

    #[test]
    fn thinned_network_gives_the_masked_full_networks_gradient() {
        for hidden in [&[40][..], &[40, 24], &[33, 70, 17], &[300, 200]] {
            let dims = Dims::new(50, hidden, 7);
            let mut params = Params::init(dims.clone(), Init::He, 3);
            // He init leaves every bias at zero, where a bias gathered from
            // or scattered to the wrong unit would go unseen: give each its own.
            let Params { dims: pd, data } = &mut params;
            for (l, (_, b)) in slab_mut(pd, data).into_layers(pd.layers()).enumerate() {
                for (j, v) in b.iter_mut().enumerate() {
                    *v = 0.05 * ((j * 37 + l * 11) % 13) as f32 - 0.3;
                }
            }
            for (p, p_in, step) in [(0.5, 0.0, 1), (0.5, 0.2, 2), (0.3, 0.0, 3), (0.8, 0.4, 4)] {
                let (dense, thin, dl, tl) = both_ways(&params, 37, p, p_in, DropMask::new(9, step));
                let scale = dense.data.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(scale > 0.0);
                for (i, (a, b)) in dense.data.iter().zip(&thin.data).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 * scale,
                        "{} p {p} input {p_in}: element {i}: full {a} vs thinned {b}",
                        dims.name()
                    );
                    // A dropped unit's weights get exactly zero either way.
                    assert_eq!(
                        *a == 0.0,
                        *b == 0.0,
                        "{}: element {i}: {a} vs {b}",
                        dims.name()
                    );
                }
                assert!((dl - tl).abs() <= 1e-5 * dl.abs(), "loss {dl} vs {tl}");
            }
        }
    }

    #[test]
    fn thinned_widths_follow_the_mask_and_a_network_that_loses_a_layer_is_refused() {
        let dims = Dims::new(6, &[64, 3], 4);
        let mut t = Thinned::new(&dims);
        let mask = DropMask::new(2, 5).per_batch();
        assert!(t.draw(mask, 0.5));
        let kept0 = (0..64).filter(|&j| mask.layer(0).keeps(0, j, 0.5)).count();
        assert_eq!(t.params.dims.widths()[..2], [6, kept0]);
        assert_eq!(t.params.data.len(), t.params.dims.param_count());
        // Three units at p = 0.5 all go in one step out of eight: find one.
        let lost = (0..200).any(|s| !t.draw(DropMask::new(2, s), 0.5));
        assert!(lost, "no step dropped the whole 3-unit layer");
    }
}
