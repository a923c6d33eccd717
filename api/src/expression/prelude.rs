//! The jq standard library a rule is compiled against, cut down to what the rule can call.
//!
//! jaq compiles every definition it is given, and the core, std and json libraries hold a few
//! hundred; compiling all of them for every rule made rule checking the largest cost of
//! validating a resource. A rule only ever reaches the definitions it names, the ones those
//! name, and so on, so [`for_rule`] hands the compiler just that closure. Definitions keep their
//! order, and every definition with a reached name is kept (whatever its arity), so each call
//! binds to exactly the definition it would bind to with the whole library.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Def, Pattern, Term};
use jaq_core::path::Part;

/// One definition of the library and the names its body calls.
struct Entry {
    def: Def<&'static str>,
    calls: BTreeSet<&'static str>,
}

/// The library, parsed once per process, with each definition's calls and an index by name.
struct Library {
    entries: Vec<Entry>,
    by_name: BTreeMap<&'static str, Vec<usize>>,
    /// The definitions kept for a set of called library names (sorted), as indices into
    /// `entries`: rules call few library filters, and mostly the same ones.
    closures: Mutex<HashMap<Vec<&'static str>, Arc<[usize]>>>,
}

fn library() -> &'static Library {
    static LIBRARY: OnceLock<Library> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let entries: Vec<Entry> = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .map(|def| {
                let mut calls = BTreeSet::new();
                term_calls(&def.body, &mut calls);
                Entry { def, calls }
            })
            .collect();
        let mut by_name: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
        for (index, entry) in entries.iter().enumerate() {
            by_name.entry(entry.def.name).or_default().push(index);
        }
        Library {
            entries,
            by_name,
            closures: Mutex::default(),
        }
    })
}

impl Library {
    /// Indices, in library order, of every definition reachable from the names `wanted`.
    fn closure(&self, wanted: Vec<&'static str>) -> Arc<[usize]> {
        let cached = |closures: &HashMap<_, Arc<[usize]>>| closures.get(&wanted).cloned();
        if let Some(found) = self.closures.lock().ok().and_then(|c| cached(&c)) {
            return found;
        }
        let mut keep = vec![false; self.entries.len()];
        let mut pending = wanted.clone();
        let mut seen: BTreeSet<&str> = wanted.iter().copied().collect();
        while let Some(name) = pending.pop() {
            for &index in self.by_name.get(name).into_iter().flatten() {
                keep[index] = true;
                for &callee in &self.entries[index].calls {
                    if seen.insert(callee) {
                        pending.push(callee);
                    }
                }
            }
        }
        let closure: Arc<[usize]> = keep
            .iter()
            .enumerate()
            .filter(|(_, keep)| **keep)
            .map(|(index, _)| index)
            .collect();
        if let Ok(mut closures) = self.closures.lock() {
            closures.insert(wanted, Arc::clone(&closure));
        }
        closure
    }
}

/// The whole library, in order.
pub(super) fn whole() -> Vec<Def<&'static str>> {
    library()
        .entries
        .iter()
        .map(|entry| entry.def.clone())
        .collect()
}

/// The library's definitions that `code` can reach, in library order; the whole library when
/// `code` does not parse (the compiler then reports the syntax error itself).
pub(super) fn for_rule(code: &str) -> Vec<Def<&'static str>> {
    let Some(term) = jaq_core::load::parse(code, |p| p.term()) else {
        return whole();
    };
    let library = library();
    let mut called = BTreeSet::new();
    term_calls(&term, &mut called);
    // Names the library does not define play no part in what it must hand over.
    let wanted: Vec<&'static str> = called
        .iter()
        .filter_map(|name| library.by_name.get_key_value(*name).map(|(name, _)| *name))
        .collect();
    library
        .closure(wanted)
        .iter()
        .map(|&index| library.entries[index].def.clone())
        .collect()
}

/// Adds to `calls` every filter name `term` calls, including the ones the compiler calls for it
/// (`!empty` for `[]` and for `try` without `catch`, a string's `@format`).
fn term_calls<'s>(term: &Term<&'s str>, calls: &mut BTreeSet<&'s str>) {
    match term {
        Term::Id | Term::Recurse | Term::Num(_) | Term::Var(_) | Term::Break(_) => {}
        Term::Str(format, parts) => {
            calls.extend(format.iter().copied());
            for part in parts {
                if let StrPart::Term(inner) = part {
                    term_calls(inner, calls);
                }
            }
        }
        Term::Arr(inner) => match inner {
            Some(inner) => term_calls(inner, calls),
            None => {
                calls.insert("!empty");
            }
        },
        Term::Obj(entries) => {
            for (key, value) in entries {
                term_calls(key, calls);
                if let Some(value) = value {
                    term_calls(value, calls);
                }
            }
        }
        Term::Neg(inner) | Term::Label(_, inner) => term_calls(inner, calls),
        Term::BinOp(left, op, right) => {
            if let BinaryOp::Pipe(Some(pattern)) = op {
                pattern_calls(pattern, calls);
            }
            term_calls(left, calls);
            term_calls(right, calls);
        }
        Term::Fold(_, input, pattern, args) => {
            term_calls(input, calls);
            pattern_calls(pattern, calls);
            args.iter().for_each(|arg| term_calls(arg, calls));
        }
        Term::TryCatch(body, catch) => {
            term_calls(body, calls);
            match catch {
                Some(catch) => term_calls(catch, calls),
                None => {
                    calls.insert("!empty");
                }
            }
        }
        Term::IfThenElse(branches, otherwise) => {
            for (condition, then) in branches {
                term_calls(condition, calls);
                term_calls(then, calls);
            }
            if let Some(otherwise) = otherwise {
                term_calls(otherwise, calls);
            }
        }
        Term::Def(defs, body) => {
            defs.iter().for_each(|def| term_calls(&def.body, calls));
            term_calls(body, calls);
        }
        Term::Call(name, args) => {
            calls.insert(name);
            args.iter().for_each(|arg| term_calls(arg, calls));
        }
        Term::Path(base, path) => {
            term_calls(base, calls);
            for (part, _) in &path.0 {
                match part {
                    Part::Index(index) => term_calls(index, calls),
                    Part::Range(from, to) => {
                        from.iter().chain(to).for_each(|t| term_calls(t, calls));
                    }
                }
            }
        }
    }
}

fn pattern_calls<'s>(pattern: &Pattern<&'s str>, calls: &mut BTreeSet<&'s str>) {
    match pattern {
        Pattern::Var(_) => {}
        Pattern::Arr(items) => items.iter().for_each(|item| pattern_calls(item, calls)),
        Pattern::Obj(entries) => {
            for (key, value) in entries {
                term_calls(key, calls);
                pattern_calls(value, calls);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Expression;
    use super::{for_rule, whole};

    /// Rules that reach deep into the library: each must compile against its cut-down prelude
    /// alone (no fallback to the whole library) and compute what the whole library computes.
    const RULES: &[&str] = &[
        ".",
        "{id: .product.id, name: (.product.name // \"unknown\")}",
        "[.items[] | select(.price > 10) | {sku, price}] | sort_by(.price) | reverse",
        "to_entries | map(select(.value != null)) | from_entries",
        "with_entries(.key |= ascii_downcase)",
        "[paths] | length",
        "del(.secret) | walk(if type == \"string\" then ascii_upcase else . end)",
        "reduce .items[] as $item (0; . + $item.price)",
        "[foreach .items[] as $item (0; . + 1; [., $item.sku])]",
        "group_by(.kind) | map({kind: .[0].kind, count: length})",
        "[.items[].sku] | unique | join(\",\")",
        "(.tags // []) | map(tostring) | join(\" \") | @base64",
        "\"\\(.product.name | @uri)/\\(.product.id)\"",
        "[limit(2; .items[])] | first, last",
        "try error(\"boom\") catch .",
        "[.items[] | try .missing.deep]",
        "[range(0; 3)] | add",
        "def double: . * 2; [.items[].price | double] | max",
        ". as {product: {id: $id}} | $id | tostring | test(\"^[0-9]+$\")",
        "[.items[] | .sku | ltrimstr(\"sku-\") | tonumber?] | min_by(.)",
        "getpath([\"product\", \"id\"]), (tojson | fromjson | keys)",
        "[splits(\", *\"; null)] | length",
        "any(.items[]; .price > 30), all(.items[]; .price > 1)",
        "flatten | indices(1)",
        "$request.params.id, ($steps | keys)",
        "env | type",
        "input_line_number? // 0",
        "[.[]?] | map(arrays, objects, iterables, scalars, booleans, numbers, strings, nulls, values) | length",
    ];

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "product": {"id": 7, "name": "Lamp"},
            "items": [{"sku": "sku-1", "price": 12, "kind": "a"}, {"sku": "sku-2", "price": 31, "kind": "b"}],
            "tags": ["x", 2],
            "secret": "s"
        })
    }

    #[test]
    fn every_rule_compiles_against_its_cut_down_prelude_and_computes_the_same() {
        let globals = ["$request", "$steps"];
        let values = || {
            vec![
                serde_json::json!({"params": {"id": "7"}}),
                serde_json::json!({"a": 1}),
            ]
        };
        let mut checked = 0;
        for rule in RULES {
            let Ok(whole_program) = Expression::compile_with(rule, &globals, whole()) else {
                // Not a jaq rule at all (for example a jq builtin jaq lacks): nothing to compare.
                continue;
            };
            let pruned = for_rule(rule);
            assert!(pruned.len() < whole().len(), "{rule}: nothing was cut");
            let pruned_program = Expression::compile_with(rule, &globals, pruned)
                .unwrap_or_else(|e| panic!("{rule}: cut-down prelude refused it: {e}"));
            assert_eq!(
                pruned_program.run(sample(), values()),
                whole_program.run(sample(), values()),
                "{rule}"
            );
            checked += 1;
        }
        assert!(
            checked >= RULES.len() - 3,
            "only {checked} rules compiled at all"
        );
    }

    #[test]
    fn a_rule_that_calls_nothing_gets_no_definitions_and_an_unknown_one_still_fails_clearly() {
        assert!(for_rule("{id: .a}").is_empty());
        let error = Expression::compile("no_such_filter(1)", &[]).unwrap_err();
        assert!(error.contains("undefined filter no_such_filter"), "{error}");
        let error = Expression::compile("map(", &[]).unwrap_err();
        assert!(error.starts_with("jq syntax error"), "{error}");
    }
}
