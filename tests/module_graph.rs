//! The library's modules form a one-way graph: no module reaches, through
//! the `crate::` paths of its non-test code, a module that reaches it back.
//! (README's Design section promises this; the check reads the sources.)

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Module name → the modules its code outside `#[cfg(test)]` names with
/// `crate::` (comments and doc comments ignored).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // A directory module: its files all count as that module.
            for inner in fs::read_dir(&path).unwrap() {
                let inner = inner.unwrap().path();
                if inner.extension().is_some_and(|e| e == "rs") {
                    files.push((
                        path.file_name().unwrap().to_str().unwrap().to_owned(),
                        inner,
                    ));
                }
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push((path.file_stem().unwrap().to_str().unwrap().to_owned(), path));
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in files {
        let text = fs::read_to_string(&path).unwrap();
        // A directory module's unit tests may be a file of their own,
        // declared `#[cfg(test)] mod NAME;` in its mod.rs: not code.
        if path.file_name().is_some_and(|n| n != "mod.rs") {
            let stem = path.file_stem().unwrap().to_str().unwrap();
            let mod_rs = fs::read_to_string(path.with_file_name("mod.rs")).unwrap_or_default();
            if mod_rs.contains(&format!("#[cfg(test)]\nmod {stem};")) {
                continue;
            }
        }
        // Else they are a `#[cfg(test)] mod NAME {` at the end of a file
        // (not a `mod NAME;` line, after which the code goes on).
        let inline = text.match_indices("#[cfg(test)]\nmod ").find(|(i, m)| {
            let rest = &text[i + m.len()..];
            rest.lines()
                .next()
                .is_some_and(|l| l.trim_end().ends_with('{'))
        });
        let code = &text[..inline.map_or(text.len(), |(i, _)| i)];
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let deps = graph.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            for name in named_after(&code[i + "crate::".len()..]) {
                if name != module && name != "self" {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

/// The modules a path after `crate::` names: `train::X` names `train`,
/// `{data, eval::Y}` (across lines too) names `data` and `eval`.
fn named_after(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)]
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect();
    };
    // The group's top-level items, up to its closing brace.
    let (mut depth, mut items, mut item) = (0, Vec::new(), String::new());
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(item);
    items
        .iter()
        .map(|i| ident(i))
        .filter(|n| !n.is_empty())
        .collect()
}

#[test]
fn grouped_paths_name_every_module() {
    assert_eq!(named_after("train::Trainer;"), ["train"]);
    assert_eq!(
        named_after("{data::{self, Dataset},\n    eval, gemm::Beta};"),
        ["data", "eval", "gemm"]
    );
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = graph();
    // Edges from code after a `#[cfg(test)] mod tests;` line (idx/mod.rs
    // maps the files; atomic/mod.rs's notes go through error) count too.
    assert!(
        graph.len() > 15
            && graph["train"].contains("model")
            && graph["idx"].contains("signals")
            && graph["atomic"].contains("error"),
        "the source scan found too little: {graph:?}"
    );
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(at) = path.iter().position(|p| *p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m);
            return Some(cycle);
        }
        if !done.insert(m) {
            return None;
        }
        path.push(m);
        for dep in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(dep, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            panic!("modules import each other: {}", cycle.join(" → "));
        }
    }
}
