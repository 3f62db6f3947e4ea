//! Test-only tools that play the attacker who writes component bytes by hand:
//!
//! - [`rename_functions`] controls a component's name section: it renames
//!   every function of every core module, so that whichever function traps
//!   carries a name the attacker chose. The component is rewritten section by
//!   section: each core module section (id 1) has its `name` custom section
//!   replaced, and the section's size is re-encoded; the rest is copied.
//! - [`compile_bomb`] is a component with a core module of many tiny
//!   functions: cheap to send, expensive to compile.

use wasmparser::{Parser, Payload, TypeRef};

/// `component` with every function of its core modules renamed.
pub fn rename_functions(component: &[u8], name: &dyn Fn(u32) -> String) -> Vec<u8> {
    let mut out = component[..8].to_vec();
    for (id, body) in sections(component) {
        let body = if id == 1 {
            rename_in_module(body, name)
        } else {
            body.to_vec()
        };
        push_section(&mut out, id, &body);
    }
    out
}

/// A component whose one core module defines `functions` empty functions.
pub fn compile_bomb(functions: u32) -> Vec<u8> {
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    // One type, () -> ().
    push_section(&mut module, 1, &[1, 0x60, 0, 0]);
    let mut declared = Vec::new();
    leb(&mut declared, functions);
    declared.extend(std::iter::repeat_n(0u8, functions as usize));
    push_section(&mut module, 3, &declared);
    // Each body: 2 bytes long, no locals, `end`.
    let mut code = Vec::new();
    leb(&mut code, functions);
    for _ in 0..functions {
        code.extend_from_slice(&[2, 0, 0x0b]);
    }
    push_section(&mut module, 10, &code);
    let mut component = b"\0asm\x0d\0\x01\0".to_vec();
    push_section(&mut component, 1, &module);
    component
}

fn rename_in_module(module: &[u8], name: &dyn Fn(u32) -> String) -> Vec<u8> {
    let mut functions = 0u32;
    for payload in Parser::new(0).parse_all(module) {
        match payload.expect("a valid core module") {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    if matches!(import.expect("an import").ty, TypeRef::Func(_)) {
                        functions += 1;
                    }
                }
            }
            Payload::FunctionSection(defined) => functions += defined.count(),
            _ => {}
        }
    }
    let mut out = module[..8].to_vec();
    for (id, body) in sections(module) {
        let is_name_section = id == 0 && custom_section_name(body) == "name";
        if !is_name_section {
            push_section(&mut out, id, body);
        }
    }
    // The name section: its own name, then subsection 1 (function names).
    let mut names = Vec::new();
    leb(&mut names, functions);
    for index in 0..functions {
        leb(&mut names, index);
        string(&mut names, &name(index));
    }
    let mut section = Vec::new();
    string(&mut section, "name");
    section.push(1);
    leb(&mut section, names.len() as u32);
    section.extend_from_slice(&names);
    push_section(&mut out, 0, &section);
    out
}

/// The sections after the 8-byte header: (id, contents).
fn sections(bytes: &[u8]) -> Vec<(u8, &[u8])> {
    let mut at = 8;
    let mut found = Vec::new();
    while at < bytes.len() {
        let id = bytes[at];
        at += 1;
        let size = read_leb(bytes, &mut at) as usize;
        found.push((id, &bytes[at..at + size]));
        at += size;
    }
    found
}

fn custom_section_name(body: &[u8]) -> &str {
    let mut at = 0;
    let len = read_leb(body, &mut at) as usize;
    std::str::from_utf8(&body[at..at + len]).unwrap_or("")
}

fn push_section(out: &mut Vec<u8>, id: u8, body: &[u8]) {
    out.push(id);
    leb(out, body.len() as u32);
    out.extend_from_slice(body);
}

fn string(out: &mut Vec<u8>, s: &str) {
    leb(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

fn leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_leb(bytes: &[u8], at: &mut usize) -> u32 {
    let (mut value, mut shift) = (0u32, 0);
    loop {
        let byte = bytes[*at];
        *at += 1;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}
