//! Link arguments for the preload library only.
//!
//! `dlsym` is bound to its glibc 2.2.5 version (see src/sys.rs). Before
//! glibc 2.34 that version lives in libdl.so.2, so the library must list
//! libdl.so.2 as needed even though the build machine's linker would drop it
//! (on glibc 2.34+ it is an empty compatibility stub, always present).
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-cdylib-link-arg=-l:libdl.so.2");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--as-needed");
    println!("cargo:rerun-if-changed=build.rs");
}
