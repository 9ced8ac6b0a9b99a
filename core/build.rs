//! Which Cortex-M extensions the target has, as cfgs that stable Rust can see.
//!
//! rustc exposes Arm target features (`dsp`, `fpregs`, `mclass`) to `cfg(target_feature)` only
//! on nightly, so a stable build for `thumbv7em-none-eabihf` would silently take the portable
//! loops. The target name says it instead:
//!
//! * `tinyrnn_arm_dsp`: the DSP extension (`SXTB16`, `SMLAD`, `SMMULR`) of ARMv7E-M:
//!   `thumbv7em-*` (Cortex-M4, M7), or any target whose features name `dsp`;
//! * `tinyrnn_arm_fpu`: an M-profile core with a single-precision FPU that has `VFMA` (FPv4 or
//!   later): `thumbv7em-none-eabihf`, `thumbv8m.main-none-eabihf` (Cortex-M33, M55), or targets
//!   whose features name both `mclass` and `fpregs`.
//!
//! No dependency: it reads the environment cargo gives build scripts.
fn main() {
    println!("cargo:rustc-check-cfg=cfg(tinyrnn_arm_dsp)");
    println!("cargo:rustc-check-cfg=cfg(tinyrnn_arm_fpu)");
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let has = |f: &str| features.split(',').any(|x| x == f);
    if target.starts_with("thumbv7em") || has("dsp") {
        println!("cargo:rustc-cfg=tinyrnn_arm_dsp");
    }
    let hard_float_m = (target.starts_with("thumbv7em") || target.starts_with("thumbv8m.main"))
        && target.ends_with("eabihf");
    if hard_float_m || (has("mclass") && has("fpregs")) {
        println!("cargo:rustc-cfg=tinyrnn_arm_fpu");
    }
}
