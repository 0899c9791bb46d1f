//! Renders the public surface of the generated client as stable, sorted text.
//!
//! The input is the source of `crates/iterable-export-gen/src/generated.rs`, parsed with `syn`.
//! The output lists what users of the generated crate can see and what a spec change can move:
//!
//! - the crate-root re-exports;
//! - every `Client` method (signature) and the traits `Client` implements, with the API version;
//! - every operation builder (`builder::*`): each setter with the type its `TryInto<T>` bound
//!   converts to, whether the parameter is required, and its wire name; `send()` with its return
//!   type, the HTTP method and path, and how each status code is mapped;
//! - every type in `types` (and its submodules, except `types::builder`, whose setters mirror the
//!   fields one to one): derives, trait impls, fields with their types and wire names, or enum
//!   variants with their wire names.
//!
//! Items are sorted by name, so the text only changes when the surface does. Types are printed
//! with `prettyplease`; the paths of the std prelude types (`Option`, `String`, `Vec`, `Result`,
//! `Box`) are shortened to their prelude names, which denote the same types.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use syn::punctuated::Punctuated;
use syn::{
    Attribute, Expr, Fields, FnArg, GenericArgument, ImplItem, Item, ItemEnum, ItemImpl, ItemMod, ItemStruct, Lit,
    Meta, Pat, PathArguments, ReceiverKind, ReturnType, Signature, Stmt, Type, TypeParamBound, Visibility,
    WherePredicate,
};

/// Renders the surface of `source` (the text of `generated.rs`).
/// Fails when the source does not parse or does not have the generator's layout.
pub fn render(source: &str) -> Result<String, String> {
    let file = syn::parse_file(source).map_err(|err| format!("cannot parse the generated code: {err}"))?;
    let mut out = String::new();

    out.push_str("# Re-exports\n");
    let mut uses: Vec<String> = file
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Use(u) if is_pub(&u.vis) => Some(pretty_use(u)),
            _ => None,
        })
        .collect();
    uses.sort();
    for u in uses {
        let _ = writeln!(out, "{u}");
    }

    out.push_str("\n# Client\n");
    render_client(&file.items, &mut out)?;

    let builder = find_mod(&file.items, "builder")
        .ok_or_else(|| error("generated.rs has no `builder` module; has the generator's layout changed?"))?;
    out.push_str("\n# Operation builders (`builder::*`)\n");
    render_builders(builder_items(builder), &mut out)?;

    let types = find_mod(&file.items, "types")
        .ok_or_else(|| error("generated.rs has no `types` module; has the generator's layout changed?"))?;
    out.push_str("\n# Types (`types::*`)\n");
    render_types(types, "", &mut out)?;

    Ok(out)
}

fn error(message: &str) -> String {
    message.to_owned()
}

fn is_pub(vis: &Visibility) -> bool {
    matches!(vis, Visibility::Public(_))
}

fn find_mod<'a>(items: &'a [Item], name: &str) -> Option<&'a ItemMod> {
    items.iter().find_map(|item| match item {
        Item::Mod(m) if m.ident == name && is_pub(&m.vis) => Some(m),
        _ => None,
    })
}

fn builder_items(m: &ItemMod) -> &[Item] {
    m.content
        .as_ref()
        .map(|(_, items)| items.as_slice())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Client

fn render_client(items: &[Item], out: &mut String) -> Result<(), String> {
    let mut methods = BTreeMap::new();
    let mut traits = BTreeSet::new();
    let mut found = false;
    for item in items {
        let Item::Impl(imp) = item else { continue };
        let self_ty = pretty_type(&imp.self_ty);
        if self_ty != "Client" && self_ty != "&Client" {
            continue;
        }
        found = true;
        match &imp.trait_ {
            None => {
                for it in &imp.items {
                    if let ImplItem::Fn(f) = it
                        && is_pub(&f.vis)
                    {
                        methods.insert(f.sig.ident.to_string(), render_sig(&f.sig));
                    }
                }
            }
            Some((path, _)) => {
                let mut line = format!("impl {} for {self_ty}", pretty_path(path));
                let constants: Vec<String> = imp
                    .items
                    .iter()
                    .filter_map(|it| match it {
                        ImplItem::Fn(f) if f.sig.inputs.is_empty() => {
                            returned_str(&f.block.stmts).map(|s| format!("{}() = {s:?}", f.sig.ident))
                        }
                        _ => None,
                    })
                    .collect();
                if !constants.is_empty() {
                    let _ = write!(line, "  [{}]", constants.join(", "));
                }
                traits.insert(line);
            }
        }
    }
    if !found {
        return Err(error(
            "generated.rs has no `impl Client`; has the generator's layout changed?",
        ));
    }
    for sig in methods.values() {
        let _ = writeln!(out, "{sig}");
    }
    for t in traits {
        let _ = writeln!(out, "{t}");
    }
    Ok(())
}

/// The string a function body returns when it is just a string literal (`api_version()`).
fn returned_str(stmts: &[Stmt]) -> Option<String> {
    match stmts {
        [Stmt::Expr(Expr::Lit(lit), None)] => match &lit.lit {
            Lit::Str(s) => Some(s.value()),
            _ => None,
        },
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Operation builders

struct Setter {
    converts_to: String,
    required: Option<bool>,
    wire: Option<String>,
}

fn render_builders(items: &[Item], out: &mut String) -> Result<(), String> {
    let structs: BTreeMap<String, &ItemStruct> = items
        .iter()
        .filter_map(|item| match item {
            Item::Struct(s) if is_pub(&s.vis) => Some((s.ident.to_string(), s)),
            _ => None,
        })
        .collect();
    if structs.is_empty() {
        return Err(error("the `builder` module has no public structs"));
    }
    for (name, st) in &structs {
        let generics = generics_text(&st.generics);
        let _ = writeln!(out, "\nbuilder::{name}{generics}");
        let imp = items.iter().find_map(|item| match item {
            Item::Impl(imp) if imp.trait_.is_none() && type_ident(&imp.self_ty).as_deref() == Some(name) => Some(imp),
            _ => None,
        });
        let Some(imp) = imp else {
            out.push_str("    (no inherent impl)\n");
            continue;
        };
        render_builder_impl(st, imp, out);
    }
    Ok(())
}

fn render_builder_impl(st: &ItemStruct, imp: &ItemImpl, out: &mut String) {
    // Field name -> whether the builder requires it (`Result<T, String>` rather than
    // `Result<Option<T>, String>`).
    let required: BTreeMap<String, bool> = st
        .fields
        .iter()
        .filter_map(|f| {
            let ty = f.ty_ok_type()?;
            Some((
                f.ident.as_ref()?.to_string(),
                type_ident(ty).as_deref() != Some("Option"),
            ))
        })
        .collect();

    let mut setters = BTreeMap::new();
    let mut others = BTreeMap::new();
    let mut send = None;
    for it in &imp.items {
        let ImplItem::Fn(f) = it else { continue };
        if !is_pub(&f.vis) {
            continue;
        }
        let name = f.sig.ident.to_string();
        if name == "send" {
            send = Some(f);
        } else if let Some(target) = try_into_target(&f.sig) {
            setters.insert(
                name.clone(),
                Setter {
                    converts_to: target,
                    required: required.get(&name).copied(),
                    wire: None,
                },
            );
        } else {
            others.insert(name, render_sig(&f.sig));
        }
    }

    if let Some(send) = send {
        for (ident, wire) in query_params(&send.block.stmts) {
            if let Some(setter) = setters.get_mut(&ident) {
                setter.wire = Some(format!("query {wire:?}"));
            }
        }
    }
    for sig in others.values() {
        let _ = writeln!(out, "    {sig}");
    }
    for (name, s) in &setters {
        let required = match s.required {
            Some(true) => "required",
            Some(false) => "optional",
            None => "?",
        };
        let wire = s.wire.as_deref().unwrap_or("wire name unknown");
        let _ = writeln!(out, "    .{name}(impl TryInto<{}>)  {required}, {wire}", s.converts_to);
    }
    if let Some(send) = send {
        let _ = writeln!(out, "    {}", render_sig(&send.sig));
        if let Some(doc) = docs(&send.attrs).into_iter().find(|d| d.starts_with("Sends a ")) {
            let _ = writeln!(out, "        {doc}");
        }
        for (status, outcome) in status_arms(&send.block.stmts) {
            let _ = writeln!(out, "        {status} => {outcome}");
        }
    } else {
        out.push_str("    (no send method)\n");
    }
}

trait FieldExt {
    /// For a field of type `Result<T, E>`, `T`.
    fn ty_ok_type(&self) -> Option<&Type>;
}

impl FieldExt for syn::Field {
    fn ty_ok_type(&self) -> Option<&Type> {
        generic_args(&self.ty, "Result").and_then(|args| args.into_iter().next())
    }
}

/// The type arguments of `ty` when its last path segment is `name`.
fn generic_args<'a>(ty: &'a Type, name: &str) -> Option<Vec<&'a Type>> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    Some(
        args.args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
    )
}

/// The `T` of a setter `fn x<V>(self, value: V) -> Self where V: TryInto<T>`.
fn try_into_target(sig: &Signature) -> Option<String> {
    let inline = sig.generics.params.iter().filter_map(|p| match p {
        syn::GenericParam::Type(t) => Some(&t.bounds),
        _ => None,
    });
    let where_bounds = sig.generics.where_clause.iter().flat_map(|w| {
        w.predicates.iter().filter_map(|p| match p {
            WherePredicate::Type(t) => Some(&t.bounds),
            _ => None,
        })
    });
    inline
        .chain(where_bounds)
        .flat_map(|bounds: &Punctuated<TypeParamBound, _>| bounds.iter())
        .find_map(|bound| {
            let TypeParamBound::Trait(t) = bound else { return None };
            let last = t.path.segments.last()?;
            if last.ident != "TryInto" {
                return None;
            }
            let PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            args.args.iter().find_map(|a| match a {
                GenericArgument::Type(ty) => Some(pretty_type(ty)),
                _ => None,
            })
        })
}

/// `(field ident, wire name)` for every `.query(&QueryParam::new("wireName", &ident))` in `send`.
fn query_params(stmts: &[Stmt]) -> Vec<(String, String)> {
    fn walk(expr: &Expr, found: &mut Vec<(String, String)>) {
        match expr {
            Expr::MethodCall(call) => {
                if call.method == "query"
                    && let Some(Expr::Reference(r)) = call.args.first()
                    && let Expr::Call(new) = &*r.expr
                    && let [Expr::Lit(wire), Expr::Reference(value)] = new.args.iter().collect::<Vec<_>>().as_slice()
                    && let Lit::Str(wire) = &wire.lit
                    && let Expr::Path(ident) = &*value.expr
                    && let Some(ident) = ident.path.get_ident()
                {
                    found.push((ident.to_string(), wire.value()));
                }
                walk(&call.receiver, found);
            }
            Expr::Try(t) => walk(&t.expr, found),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for stmt in stmts {
        if let Stmt::Local(local) = stmt
            && let Some(init) = &local.init
        {
            walk(&init.expr, &mut found);
        }
    }
    found
}

/// The arms of the final `match response.status().as_u16() { ... }` of `send`.
fn status_arms(stmts: &[Stmt]) -> Vec<(String, String)> {
    let Some(Stmt::Expr(Expr::Match(m), None)) = stmts.last() else {
        return Vec::new();
    };
    m.arms
        .iter()
        .map(|arm| {
            let status = match &arm.pat {
                Pat::Lit(lit) => match &lit.lit {
                    Lit::Int(i) => i.base10_digits().to_owned(),
                    other => pretty_expr(&Expr::Lit(syn::ExprLit {
                        attrs: Vec::new(),
                        lit: other.clone(),
                    })),
                },
                Pat::Wild(_) => "other".to_owned(),
                other => pretty_pat(other),
            };
            (status, pretty_expr(&arm.body))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Types

fn render_types(m: &ItemMod, prefix: &str, out: &mut String) -> Result<(), String> {
    let items = builder_items(m);
    // Type name -> trait impls.
    let mut impls: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for item in items {
        if let Item::Impl(imp) = item
            && let Some((path, _)) = &imp.trait_
            && let Some(name) = type_ident(&imp.self_ty)
        {
            impls.entry(name).or_default().insert(pretty_path(path));
        }
    }
    let mut rendered = BTreeMap::new();
    let mut mods = BTreeMap::new();
    for item in items {
        match item {
            Item::Struct(s) if is_pub(&s.vis) => {
                rendered.insert(
                    s.ident.to_string(),
                    render_struct(s, prefix, impls.get(&s.ident.to_string())),
                );
            }
            Item::Enum(e) if is_pub(&e.vis) => {
                rendered.insert(
                    e.ident.to_string(),
                    render_enum(e, prefix, impls.get(&e.ident.to_string())),
                );
            }
            Item::Mod(sub) if is_pub(&sub.vis) && sub.ident != "builder" => {
                mods.insert(sub.ident.to_string(), sub);
            }
            _ => {}
        }
    }
    for text in rendered.values() {
        out.push('\n');
        out.push_str(text);
    }
    for (name, sub) in mods {
        render_types(sub, &format!("{prefix}{name}::"), out)?;
    }
    Ok(())
}

fn header(
    kind: &str,
    prefix: &str,
    ident: &syn::Ident,
    attrs: &[Attribute],
    impls: Option<&BTreeSet<String>>,
) -> String {
    let mut text = format!("{kind} {prefix}{ident}\n");
    let derives = derives(attrs);
    if !derives.is_empty() {
        let _ = writeln!(text, "    derive: {}", derives.join(", "));
    }
    let container = serde_args(attrs);
    if !container.is_empty() {
        let _ = writeln!(text, "    serde: {}", container.join(", "));
    }
    if let Some(impls) = impls
        && !impls.is_empty()
    {
        let _ = writeln!(
            text,
            "    impl: {}",
            impls.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    text
}

fn render_struct(s: &ItemStruct, prefix: &str, impls: Option<&BTreeSet<String>>) -> String {
    let mut text = header("struct", prefix, &s.ident, &s.attrs, impls);
    let mut private = 0;
    for (i, field) in s.fields.iter().enumerate() {
        if !is_pub(&field.vis) {
            private += 1;
            continue;
        }
        let name = field.ident.as_ref().map_or_else(|| i.to_string(), ToString::to_string);
        let _ = writeln!(text, "    {}", describe_member(&name, Some(&field.ty), &field.attrs));
    }
    if private > 0 {
        let shape = if matches!(s.fields, Fields::Unnamed(_)) {
            "tuple"
        } else {
            "named"
        };
        let _ = writeln!(text, "    ({private} private {shape} field(s))");
    }
    text
}

fn render_enum(e: &ItemEnum, prefix: &str, impls: Option<&BTreeSet<String>>) -> String {
    let mut text = header("enum", prefix, &e.ident, &e.attrs, impls);
    // Variants keep their declaration order: for enums it is part of the contract (derived `Ord`).
    for variant in &e.variants {
        let payload = match &variant.fields {
            Fields::Unit => String::new(),
            Fields::Unnamed(f) => {
                format!(
                    "({})",
                    f.unnamed
                        .iter()
                        .map(|f| pretty_type(&f.ty))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            Fields::Named(f) => format!(
                " {{ {} }}",
                f.named
                    .iter()
                    .map(|f| format!(
                        "{}: {}",
                        f.ident.as_ref().map(ToString::to_string).unwrap_or_default(),
                        pretty_type(&f.ty)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let name = format!("{}{payload}", variant.ident);
        let _ = writeln!(text, "    {}", describe_member(&name, None, &variant.attrs));
    }
    text
}

/// `name: Type = "wireName"  (other serde attributes)`; the wire name is the serde rename, or the
/// Rust name when there is none.
fn describe_member(name: &str, ty: Option<&Type>, attrs: &[Attribute]) -> String {
    let args = serde_args(attrs);
    let rename = args.iter().find_map(|a| a.strip_prefix("rename = ")).map(str::to_owned);
    let others: Vec<&String> = args.iter().filter(|a| !a.starts_with("rename = ")).collect();
    let bare = name.split(['(', ' ']).next().unwrap_or(name);
    let wire = rename.unwrap_or_else(|| format!("{bare:?}"));
    let mut line = match ty {
        Some(ty) => format!("{name}: {} = {wire}", pretty_type(ty)),
        None => format!("{name} = {wire}"),
    };
    if !others.is_empty() {
        let _ = write!(
            line,
            "  ({})",
            others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    line
}

fn derives(attrs: &[Attribute]) -> Vec<String> {
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        if let Ok(paths) = attr.parse_args_with(Punctuated::<syn::Path, syn::Token![,]>::parse_terminated) {
            out.extend(
                paths
                    .iter()
                    .filter_map(|p| p.segments.last().map(|s| s.ident.to_string())),
            );
        }
    }
    out.sort();
    out
}

/// The arguments of every `#[serde(...)]`, as `key` or `key = value`, values printed as source.
fn serde_args(attrs: &[Attribute]) -> Vec<String> {
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_else(|| pretty_path(&meta.path));
            if meta.input.peek(syn::Token![=]) {
                let value: Expr = meta.value()?.parse()?;
                let value = match &value {
                    Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => format!("{:?}", shorten(&s.value())),
                    other => pretty_expr(other),
                };
                out.push(format!("{key} = {value}"));
            } else if let Ok(Meta::List(list)) = meta.input.parse::<Meta>() {
                out.push(format!("{key}({})", list.tokens));
            } else {
                out.push(key);
            }
            Ok(())
        });
    }
    out
}

fn docs(attrs: &[Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) if nv.path.is_ident("doc") => match &nv.value {
                Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .flat_map(|d| d.lines().map(|l| l.trim().to_owned()).collect::<Vec<_>>())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Printing

/// The name of a path type's last segment (`Client` for `super::Client`, `Option` for
/// `::std::option::Option<T>`); for `&T`, `T`'s.
fn type_ident(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        Type::Reference(r) => type_ident(&r.elem),
        _ => None,
    }
}

fn render_sig(sig: &Signature) -> String {
    let mut text = String::new();
    if sig.asyncness.is_some() {
        text.push_str("async ");
    }
    let _ = write!(text, "fn {}{}(", sig.ident, generics_text(&sig.generics));
    let args: Vec<String> = sig
        .inputs
        .iter()
        .map(|arg| match arg {
            FnArg::Receiver(r) => {
                let mutability = if r.mutability.is_some() { "mut " } else { "" };
                match &r.kind {
                    ReceiverKind::Reference(_, lifetime, m) => format!(
                        "&{}{}self",
                        lifetime.as_ref().map(|l| format!("{l} ")).unwrap_or_default(),
                        if m.is_some() { "mut " } else { "" }
                    ),
                    ReceiverKind::Typed(_, ty) => format!("{mutability}self: {}", pretty_type(ty)),
                    _ => format!("{mutability}self"),
                }
            }
            FnArg::Typed(t) => format!("{}: {}", pretty_pat(&t.pat), pretty_type(&t.ty)),
            #[allow(unreachable_patterns)]
            _ => "?".to_owned(),
        })
        .collect();
    text.push_str(&args.join(", "));
    text.push(')');
    if let ReturnType::Type(_, ty) = &sig.output {
        let _ = write!(text, " -> {}", pretty_type(ty));
    }
    text
}

fn generics_text(generics: &syn::Generics) -> String {
    if generics.params.is_empty() {
        return String::new();
    }
    let params: Vec<String> = generics
        .params
        .iter()
        .map(|p| match p {
            syn::GenericParam::Lifetime(l) => l.lifetime.to_string(),
            syn::GenericParam::Type(t) => t.ident.to_string(),
            syn::GenericParam::Const(c) => format!("const {}: {}", c.ident, pretty_type(&c.ty)),
            #[allow(unreachable_patterns)]
            _ => "?".to_owned(),
        })
        .collect();
    format!("<{}>", params.join(", "))
}

/// Prints a syntax node by placing it into a small item and unparsing that with `prettyplease`.
fn unparse_in(template: &str, set: impl FnOnce(&mut Item), prefix: &str, suffix: &str) -> String {
    let Ok(mut file) = syn::parse_file(template) else {
        return "?".to_owned();
    };
    if let Some(item) = file.items.first_mut() {
        set(item);
    }
    let text = prettyplease::unparse(&file);
    // Long nodes wrap; join them back into one line.
    let joined = text.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    let joined = joined
        .replace("< ", "<")
        .replace(" >", ">")
        .replace("( ", "(")
        .replace(" )", ")");
    let inner = joined
        .strip_prefix(prefix)
        .and_then(|t| t.strip_suffix(suffix))
        .unwrap_or(&joined);
    shorten(inner.trim_end_matches(',').trim())
}

fn pretty_type(ty: &Type) -> String {
    unparse_in(
        "type T = ();",
        |item| {
            if let Item::Type(t) = item {
                *t.ty = ty.clone();
            }
        },
        "type T = ",
        ";",
    )
}

fn pretty_path(path: &syn::Path) -> String {
    pretty_type(&Type::Path(syn::TypePath {
        attrs: Vec::new(),
        qself: None,
        path: path.clone(),
    }))
}

fn pretty_expr(expr: &Expr) -> String {
    unparse_in(
        "const _: () = ();",
        |item| {
            if let Item::Const(c) = item {
                *c.expr = expr.clone();
            }
        },
        "const _: () = ",
        ";",
    )
}

fn pretty_pat(pat: &Pat) -> String {
    unparse_in(
        "fn f(x: ()) {}",
        |item| {
            if let Item::Fn(f) = item
                && let Some(FnArg::Typed(t)) = f.sig.inputs.first_mut()
            {
                *t.pat = pat.clone();
            }
        },
        "fn f(",
        ": ()) {}",
    )
}

fn pretty_use(u: &syn::ItemUse) -> String {
    let mut u = u.clone();
    u.attrs.clear();
    let Ok(mut file) = syn::parse_file("use x;") else {
        return "?".to_owned();
    };
    file.items = vec![Item::Use(u)];
    prettyplease::unparse(&file)
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .replace("{ ", "{")
        .replace(", }", "}")
}

/// Shortens the std paths of prelude types, which name the same types.
fn shorten(text: &str) -> String {
    const PRELUDE: &[(&str, &str)] = &[
        ("::std::option::Option", "Option"),
        ("::std::string::String", "String"),
        ("::std::vec::Vec", "Vec"),
        ("::std::result::Result", "Result"),
        ("::std::boxed::Box", "Box"),
        ("::std::convert::", ""),
        ("std::convert::", ""),
    ];
    PRELUDE
        .iter()
        .fold(text.to_owned(), |t, (long, short)| t.replace(long, short))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
        pub use progenitor_client::{ByteStream, Error};
        pub mod types {
            #[derive(::serde::Serialize, Clone)]
            pub enum Color {
                #[serde(rename = "deepRed")]
                DeepRed,
                Blue,
            }
            impl ::std::fmt::Display for Color {}
            #[derive(Default)]
            pub struct Thing {
                #[serde(rename = "thingId", skip_serializing_if = "::std::option::Option::is_none")]
                pub thing_id: ::std::option::Option<i64>,
                pub name: ::std::string::String,
                secret: u8,
            }
            pub mod builder {
                pub struct Thing {}
            }
        }
        pub struct Client { baseurl: String }
        impl Client {
            pub fn op(&self) -> builder::Op<'_> { builder::Op::new(self) }
            fn hidden(&self) {}
        }
        impl ClientInfo<()> for Client {
            fn api_version() -> &'static str { "2.0" }
        }
        pub mod builder {
            pub struct Op<'a> {
                client: &'a super::Client,
                color: Result<types::Color, String>,
                limit: Result<Option<u32>, String>,
            }
            impl<'a> Op<'a> {
                pub fn new(client: &'a super::Client) -> Self { todo!() }
                pub fn limit<V>(mut self, value: V) -> Self where V: std::convert::TryInto<u32> { self }
                pub fn color<V>(mut self, value: V) -> Self where V: std::convert::TryInto<types::Color> { self }
                ///Sends a `GET` request to `/op`
                pub async fn send(self) -> Result<ResponseValue<ByteStream>, Error<ByteStream>> {
                    let request = client.get(url)
                        .query(&progenitor_client::QueryParam::new("colorName", &color))
                        .query(&progenitor_client::QueryParam::new("limit", &limit))
                        .build()?;
                    match response.status().as_u16() {
                        200u16 => Ok(ResponseValue::stream(response)),
                        _ => Err(Error::UnexpectedResponse(response)),
                    }
                }
            }
        }
    "#;

    #[test]
    fn renders_every_part_of_the_surface() -> Result<(), String> {
        let text = render(SAMPLE)?;
        let expected = r#"# Re-exports
pub use progenitor_client::{ByteStream, Error};

# Client
fn op(&self) -> builder::Op<'_>
impl ClientInfo<()> for Client  [api_version() = "2.0"]

# Operation builders (`builder::*`)

builder::Op<'a>
    fn new(client: &'a super::Client) -> Self
    .color(impl TryInto<types::Color>)  required, query "colorName"
    .limit(impl TryInto<u32>)  optional, query "limit"
    async fn send(self) -> Result<ResponseValue<ByteStream>, Error<ByteStream>>
        Sends a `GET` request to `/op`
        200 => Ok(ResponseValue::stream(response))
        other => Err(Error::UnexpectedResponse(response))

# Types (`types::*`)

enum Color
    derive: Clone, Serialize
    impl: ::std::fmt::Display
    DeepRed = "deepRed"
    Blue = "Blue"

struct Thing
    derive: Default
    thing_id: Option<i64> = "thingId"  (skip_serializing_if = "Option::is_none")
    name: String = "name"
    (1 private named field(s))
"#;
        assert_eq!(text, expected);
        Ok(())
    }

    #[test]
    fn missing_layout_is_an_error() {
        let err = render("pub struct Client;").err().unwrap_or_default();
        assert_eq!(
            err,
            "generated.rs has no `impl Client`; has the generator's layout changed?"
        );
    }
}
