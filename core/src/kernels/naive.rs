//! Naive scalar kernels: the reference every SIMD kernel is tested and benchmarked against. They
//! read the weights as stored (PyTorch's layout), never the SIMD kernels' packed copies.

use super::{Kernels, Naive};
use crate::Real;

impl<T: Real> Kernels<T> for Naive {
    fn gemm_nt(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T]) {
        debug_assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
        for i in 0..m {
            for j in 0..n {
                let mut s = T::ZERO;
                for p in 0..k {
                    s += a[i * k + p] * b[j * k + p];
                }
                c[i * n + j] += s;
            }
        }
    }

    fn gemm_nn(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T]) {
        debug_assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
        for i in 0..m {
            for j in 0..n {
                let mut s = T::ZERO;
                for p in 0..k {
                    s += a[i * k + p] * b[p * n + j];
                }
                c[i * n + j] += s;
            }
        }
    }

    fn gemm_tn(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T]) {
        debug_assert!(a.len() >= k * m && b.len() >= k * n && c.len() >= m * n);
        for i in 0..m {
            for j in 0..n {
                let mut s = T::ZERO;
                for p in 0..k {
                    s += a[p * m + i] * b[p * n + j];
                }
                c[i * n + j] += s;
            }
        }
    }

    fn lstm_pointwise(
        pre: &[T],
        c_prev: &[T],
        gates: &mut [T],
        c: &mut [T],
        tanh_c: &mut [T],
        h: &mut [T],
    ) {
        let hs = h.len();
        debug_assert!(pre.len() == 4 * hs && gates.len() == 4 * hs);
        debug_assert!(c_prev.len() == hs && c.len() == hs && tanh_c.len() == hs);
        for j in 0..hs {
            let i = pre[j].sigmoid();
            let f = pre[hs + j].sigmoid();
            let g = pre[2 * hs + j].tanh();
            let o = pre[3 * hs + j].sigmoid();
            let cj = f * c_prev[j] + i * g;
            let tc = cj.tanh();
            gates[j] = i;
            gates[hs + j] = f;
            gates[2 * hs + j] = g;
            gates[3 * hs + j] = o;
            c[j] = cj;
            tanh_c[j] = tc;
            h[j] = o * tc;
        }
    }

    fn lstm_pointwise_backward(
        gates: &[T],
        c_prev: &[T],
        tanh_c: &[T],
        dh_ext: &[T],
        dh_rec: &[T],
        dc: &mut [T],
        dpre: &mut [T],
    ) {
        let hs = dc.len();
        debug_assert!(gates.len() == 4 * hs && dpre.len() == 4 * hs);
        debug_assert!(c_prev.len() == hs && tanh_c.len() == hs);
        debug_assert!(dh_ext.len() == hs && dh_rec.len() == hs);
        for j in 0..hs {
            let (i, f, g, o) = (
                gates[j],
                gates[hs + j],
                gates[2 * hs + j],
                gates[3 * hs + j],
            );
            let tc = tanh_c[j];
            let dh = dh_ext[j] + dh_rec[j];
            let dct = dc[j] + dh * o * (T::ONE - tc * tc);
            dpre[j] = dct * g * i * (T::ONE - i);
            dpre[hs + j] = dct * c_prev[j] * f * (T::ONE - f);
            dpre[2 * hs + j] = dct * i * (T::ONE - g * g);
            dpre[3 * hs + j] = dh * tc * o * (T::ONE - o);
            dc[j] = dct * f;
        }
    }

    fn lstm_forward_step(
        batch: usize,
        hs: usize,
        is: usize,
        x: &[T],
        w_ih: &[T],
        w_hh: &[T],
        b_ih: &[T],
        b_hh: &[T],
        _packed: &[T],
        _packed_ih: &[T],
        h_prev: &[T],
        c_prev: &[T],
        pre: &mut [T],
        gates: &mut [T],
        c: &mut [T],
        tanh_c: &mut [T],
        h: &mut [T],
    ) {
        let g4 = 4 * hs;
        debug_assert!(x.len() >= batch * is && w_ih.len() >= g4 * is);
        debug_assert!(w_hh.len() >= g4 * hs && b_ih.len() >= g4 && b_hh.len() >= g4);
        debug_assert!(h_prev.len() >= batch * hs && c_prev.len() >= batch * hs);
        debug_assert!(pre.len() >= batch * g4 && gates.len() >= batch * g4);
        debug_assert!(c.len() >= batch * hs && tanh_c.len() >= batch * hs && h.len() >= batch * hs);
        for b in 0..batch {
            for u in 0..hs {
                // Row g·H + u of W_ih, W_hh and the biases: gate g of unit u.
                let a = [0, 1, 2, 3].map(|g| {
                    let r = g * hs + u;
                    let mut s = b_ih[r] + b_hh[r];
                    for q in 0..is {
                        s += x[b * is + q] * w_ih[r * is + q];
                    }
                    for k in 0..hs {
                        s += h_prev[b * hs + k] * w_hh[r * hs + k];
                    }
                    s
                });
                for (q, &v) in a.iter().enumerate() {
                    pre[b * g4 + q * hs + u] = v;
                }
                let (i, f, g, o) = (a[0].sigmoid(), a[1].sigmoid(), a[2].tanh(), a[3].sigmoid());
                let cj = f * c_prev[b * hs + u] + i * g;
                let tc = cj.tanh();
                for (q, v) in [i, f, g, o].into_iter().enumerate() {
                    gates[b * g4 + q * hs + u] = v;
                }
                c[b * hs + u] = cj;
                tanh_c[b * hs + u] = tc;
                h[b * hs + u] = o * tc;
            }
        }
    }

    fn rnn_forward_step(
        batch: usize,
        hs: usize,
        is: usize,
        x: &[T],
        w_ih: &[T],
        w_hh: &[T],
        b_ih: &[T],
        b_hh: &[T],
        _packed: &[T],
        _packed_ih: &[T],
        h_prev: &[T],
        pre: &mut [T],
        h: &mut [T],
    ) {
        debug_assert!(x.len() >= batch * is && w_ih.len() >= hs * is);
        debug_assert!(w_hh.len() >= hs * hs && b_ih.len() >= hs && b_hh.len() >= hs);
        debug_assert!(h_prev.len() >= batch * hs && pre.len() >= batch * hs);
        debug_assert!(h.len() >= batch * hs);
        for b in 0..batch {
            for u in 0..hs {
                let mut s = b_ih[u] + b_hh[u];
                for q in 0..is {
                    s += x[b * is + q] * w_ih[u * is + q];
                }
                for k in 0..hs {
                    s += h_prev[b * hs + k] * w_hh[u * hs + k];
                }
                pre[b * hs + u] = s;
                h[b * hs + u] = s.tanh();
            }
        }
    }

    fn gru_pointwise(
        batch: usize,
        hs: usize,
        ax: &[T],
        ah: &[T],
        h_prev: &[T],
        cache: &mut [T],
        h: &mut [T],
    ) {
        let g3 = 3 * hs;
        debug_assert!(ax.len() >= batch * g3 && ah.len() >= batch * g3);
        debug_assert!(h_prev.len() >= batch * hs && h.len() >= batch * hs);
        debug_assert!(cache.len() >= batch * 4 * hs);
        for b in 0..batch {
            let (ax, ah) = (&ax[b * g3..], &ah[b * g3..]);
            let cache = &mut cache[b * 4 * hs..];
            for j in 0..hs {
                let k = b * hs + j;
                let r = (ax[j] + ah[j]).sigmoid();
                let z = (ax[hs + j] + ah[hs + j]).sigmoid();
                let n = (ax[2 * hs + j] + r * ah[2 * hs + j]).tanh();
                cache[j] = r;
                cache[hs + j] = z;
                cache[2 * hs + j] = n;
                cache[g3 + j] = ah[2 * hs + j];
                h[k] = (T::ONE - z) * n + z * h_prev[k];
            }
        }
    }

    fn gru_pointwise_backward(
        batch: usize,
        hs: usize,
        cache: &[T],
        h_prev: &[T],
        dh_ext: &[T],
        dh_carry: &mut [T],
        dax: &mut [T],
        dah: &mut [T],
    ) {
        let g3 = 3 * hs;
        debug_assert!(cache.len() >= batch * 4 * hs);
        debug_assert!(h_prev.len() >= batch * hs && dh_ext.len() >= batch * hs);
        debug_assert!(dh_carry.len() >= batch * hs);
        debug_assert!(dax.len() >= batch * g3 && dah.len() >= batch * g3);
        for b in 0..batch {
            let cache = &cache[b * 4 * hs..];
            let (dax, dah) = (&mut dax[b * g3..], &mut dah[b * g3..]);
            for j in 0..hs {
                let (r, z, n, hn) = (cache[j], cache[hs + j], cache[2 * hs + j], cache[g3 + j]);
                let k = b * hs + j;
                let dh = dh_ext[k] + dh_carry[k];
                let da_n = dh * (T::ONE - z) * (T::ONE - n * n);
                let da_r = da_n * hn * r * (T::ONE - r);
                let da_z = dh * (h_prev[k] - n) * z * (T::ONE - z);
                dax[j] = da_r;
                dax[hs + j] = da_z;
                dax[2 * hs + j] = da_n;
                dah[j] = da_r;
                dah[hs + j] = da_z;
                dah[2 * hs + j] = da_n * r;
                dh_carry[k] = dh * z;
            }
        }
    }

    fn tanh_pointwise(pre: &[T], h: &mut [T]) {
        debug_assert!(pre.len() == h.len());
        for (h, &a) in h.iter_mut().zip(pre) {
            *h = a.tanh();
        }
    }

    fn tanh_pointwise_backward(h: &[T], dh_ext: &[T], dh_rec: &[T], dpre: &mut [T]) {
        debug_assert!(
            h.len() == dpre.len() && dh_ext.len() == dpre.len() && dh_rec.len() == dpre.len()
        );
        for j in 0..dpre.len() {
            dpre[j] = (dh_ext[j] + dh_rec[j]) * (T::ONE - h[j] * h[j]);
        }
    }
}
