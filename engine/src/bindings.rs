//! The host side of `gensail:algorithm`, generated in this one place.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "gensail:algorithm/algorithm",
    exports: { default: async },
});
