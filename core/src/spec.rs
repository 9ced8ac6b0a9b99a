//! The shape of a whole model, PyTorch's recurrent module plus a linear head, and where each of
//! its tensors lives in the one flat parameter buffer.
//!
//! A model is `<cell>(input, hidden, num_layers, bidirectional, batch_first)` followed by
//! `head = Linear(D·H, output)` (D = 2 if bidirectional). The flat buffer holds the tensors in
//! PyTorch's `state_dict()` order and layout: for layer k = 0..L and direction d = 0..D,
//! `<cell>.weight_ih_l{k}` [G·H, I_k], `weight_hh_l{k}` [G·H, H], `bias_ih_l{k}` [G·H],
//! `bias_hh_l{k}` [G·H] (suffix `_reverse` for d = 1; I_0 = I, I_k = D·H above), then
//! `head.weight` [O, D·H] and `head.bias` [O].

use core::fmt;

use crate::Error;
use crate::cell::{CellKind, Weights};

/// The shape of a model: cell, sizes, layers, directions, head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Spec {
    /// The recurrent cell.
    pub cell: CellKind,
    /// Input features per step (I).
    pub input: usize,
    /// Hidden units per layer and direction (H).
    pub hidden: usize,
    /// Stacked layers (`num_layers`), at least 1.
    pub layers: usize,
    /// Whether each layer runs in both directions (`bidirectional=True`).
    pub bidirectional: bool,
    /// Head outputs (O).
    pub output: usize,
}

/// A tensor's PyTorch name: `<module>.<tensor>[_l<layer>][_reverse]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorName {
    /// `lstm`, `gru`, `rnn` or `head`.
    pub module: &'static str,
    /// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, `weight` or `bias`.
    pub tensor: &'static str,
    /// The layer index for a recurrent tensor, `None` for the head's.
    pub layer: Option<usize>,
    /// `true` for the backward direction's tensors.
    pub reverse: bool,
}

impl fmt::Display for TensorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module, self.tensor)?;
        if let Some(k) = self.layer {
            write!(f, "_l{k}")?;
        }
        if self.reverse {
            f.write_str("_reverse")?;
        }
        Ok(())
    }
}

/// One tensor of a model: name, offset in the flat buffer, row-major shape (rank 1 or 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tensor {
    /// PyTorch's name.
    pub name: TensorName,
    /// Offset in scalars from the start of the flat buffer.
    pub offset: usize,
    /// Shape; `shape[1] == 0` marks a vector.
    pub dims: [usize; 2],
}

impl Tensor {
    /// The shape as PyTorch reports it (one or two dimensions).
    pub fn shape(&self) -> &[usize] {
        if self.dims[1] == 0 {
            &self.dims[..1]
        } else {
            &self.dims
        }
    }
    /// Number of scalars.
    pub fn len(&self) -> usize {
        self.dims[0] * self.dims[1].max(1)
    }
    /// `true` if the tensor holds no scalar.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The four tensors of one layer and direction, in order.
const DIR_TENSORS: [&str; 4] = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"];

impl Spec {
    /// A one-layer unidirectional model.
    pub const fn new(cell: CellKind, input: usize, hidden: usize, output: usize) -> Spec {
        Spec {
            cell,
            input,
            hidden,
            layers: 1,
            bidirectional: false,
            output,
        }
    }

    /// Directions per layer, D: 1 or 2.
    pub const fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Width of every layer's output, D·H (the head's input).
    pub const fn width(&self) -> usize {
        self.directions() * self.hidden
    }

    /// Input size of layer `k`: I for the first, D·H above.
    pub const fn layer_input(&self, k: usize) -> usize {
        if k == 0 { self.input } else { self.width() }
    }

    /// Scalars of one direction of layer `k`: G·H·(I_k + H + 2).
    pub const fn dir_len(&self, k: usize) -> usize {
        self.cell.gates() * self.hidden * (self.layer_input(k) + self.hidden + 2)
    }

    /// Offset of direction `d` of layer `k` in the flat buffer.
    pub const fn dir_offset(&self, k: usize, d: usize) -> usize {
        let d_count = self.directions();
        // Layer 0 first, then k-1 layers of equal size.
        let first = d_count * self.dir_len(0);
        let base = if k == 0 {
            0
        } else {
            first + (k - 1) * d_count * self.dir_len(1)
        };
        base + d * self.dir_len(k)
    }

    /// Offset of `head.weight`.
    pub const fn head_offset(&self) -> usize {
        self.dir_offset(self.layers, 0)
    }

    /// Scalars of the whole parameter buffer.
    pub const fn param_len(&self) -> usize {
        self.head_offset() + self.output * (self.width() + 1)
    }

    /// Scalars of the recurrent state `h` (and of `c` for an LSTM) for `batch` sequences:
    /// (L·D, B, H), PyTorch's `h_n` layout.
    pub const fn state_len(&self, batch: usize) -> usize {
        self.layers * self.directions() * batch * self.hidden
    }

    /// `Ok` if the sizes are usable: hidden, layers, output at least 1, and every derived size
    /// (parameters, the state and caches up to 2^40 scalars) far from overflow.
    pub fn validate(&self) -> Result<(), Error> {
        if self.hidden == 0 {
            return Err(Error::Invalid {
                what: "hidden size 0",
            });
        }
        if self.layers == 0 {
            return Err(Error::Invalid {
                what: "layer count 0",
            });
        }
        if self.output == 0 {
            return Err(Error::Invalid {
                what: "output size 0",
            });
        }
        // Every size below is a sum of products of these; bounding each keeps them all far from
        // usize::MAX on 32-bit targets too (2^20 · 2^10 · 4 < 2^32 would not, so check products).
        let big = |v: usize| v > 1 << 24;
        if big(self.input) || big(self.hidden) || big(self.output) || self.layers > 1 << 10 {
            return Err(Error::Invalid { what: "model size" });
        }
        let g = self.cell.gates();
        let width = self.directions() * self.hidden;
        let per = |i: usize| {
            (g * self.hidden)
                .checked_mul(i.checked_add(self.hidden + 2)?)?
                .checked_mul(self.directions())
        };
        let total = per(self.input)
            .and_then(|a| Some((a, per(width)?)))
            .and_then(|(a, b)| a.checked_add(b.checked_mul(self.layers - 1)?))
            .and_then(|a| a.checked_add(self.output.checked_mul(width + 1)?));
        match total {
            Some(n) if n <= isize::MAX as usize / 16 => Ok(()),
            _ => Err(Error::Invalid { what: "model size" }),
        }
    }

    /// Every tensor in buffer order.
    pub fn tensors(&self) -> impl Iterator<Item = Tensor> + '_ {
        let module = self.cell.module();
        let gh = self.cell.gates() * self.hidden;
        let rec = (0..self.layers).flat_map(move |k| {
            (0..self.directions()).flat_map(move |d| {
                let base = self.dir_offset(k, d);
                let i = self.layer_input(k);
                let dims = [[gh, i], [gh, self.hidden], [gh, 0], [gh, 0]];
                let offs = [
                    0,
                    gh * i,
                    gh * (i + self.hidden),
                    gh * (i + self.hidden + 1),
                ];
                (0..4).map(move |n| Tensor {
                    name: TensorName {
                        module,
                        tensor: DIR_TENSORS[n],
                        layer: Some(k),
                        reverse: d == 1,
                    },
                    offset: base + offs[n],
                    dims: dims[n],
                })
            })
        });
        let head = self.head_offset();
        let width = self.width();
        let heads = [
            ("weight", head, [self.output, width]),
            ("bias", head + self.output * width, [self.output, 0]),
        ]
        .into_iter()
        .map(move |(tensor, offset, dims)| Tensor {
            name: TensorName {
                module: "head",
                tensor,
                layer: None,
                reverse: false,
            },
            offset,
            dims,
        });
        rec.chain(heads)
    }

    /// The weights of direction `d` of layer `k` in `params` (the whole buffer, whose length the
    /// caller has checked).
    pub(crate) fn weights<'a, T>(&self, params: &'a [T], k: usize, d: usize) -> Weights<'a, T> {
        let (gh, hs, is) = (
            self.cell.gates() * self.hidden,
            self.hidden,
            self.layer_input(k),
        );
        let p = &params[self.dir_offset(k, d)..][..self.dir_len(k)];
        let (w_ih, p) = p.split_at(gh * is);
        let (w_hh, p) = p.split_at(gh * hs);
        let (b_ih, b_hh) = p.split_at(gh);
        Weights {
            hs,
            is,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        }
    }
}
