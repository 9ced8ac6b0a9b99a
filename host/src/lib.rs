//! The std host of tinyrnn: one training loop, the tasks, model files, plots.

pub mod bench;
pub mod budget;
pub mod cli;
pub mod export;
pub mod idx;
pub mod infer;
pub mod modelfile;
pub mod net;
pub mod out;
pub mod plot;
pub mod quant;
pub mod quantize;
pub mod tasks;
pub mod tensorboard;
pub mod train;

/// Runs `$body` with the const `$H` bound to `$h`, for each hidden size compiled into the host;
/// any other size is an error that lists the supported ones.
#[macro_export]
macro_rules! with_hidden {
    ($h:expr, $H:ident => $body:expr, [$($n:literal),+ $(,)?]) => {
        match $h {
            $( $n => { const $H: usize = $n; $body } )+
            other => ::anyhow::bail!(
                "hidden size {} is not compiled in; supported: {}",
                other,
                [$($n.to_string()),+].join(", ")
            ),
        }
    };
}
