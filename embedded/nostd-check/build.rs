//! Link the binary without libc, crt startup files or a dynamic loader: `_start`, `memcpy` and
//! friends, and the syscalls all come from `src/main.rs`. Any `std` or `alloc` in the dependency
//! graph therefore fails the build (unresolved symbols / missing lang items or allocator).
fn main() {
    for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
