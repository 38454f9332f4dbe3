//! The EDN forms a Jepsen op is made of, and a fast reader for the subset
//! Jepsen and Maelstrom print: maps, vectors, lists, keywords, symbols,
//! integers, strings with simple escapes, `nil`, booleans and tagged
//! records. A line with anything else (a set, a float, a character, a
//! comment, `#_`, a `\u` escape) is read by the `edn-format` crate
//! instead and converted with [`Edn::from_value`]: the fast path changes
//! speed, never meaning. The fast path borrows from the line and builds no
//! map trees, which is what makes a million ops take seconds, not minutes.

use std::borrow::Cow;
use std::fmt;

/// One EDN form, borrowed from its line where it can be.
#[derive(Debug, Clone, PartialEq)]
pub enum Edn<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
    /// A keyword's text after the colon (`send`, `jepsen.history/op`).
    Keyword(Cow<'a, str>),
    Symbol(Cow<'a, str>),
    /// A vector or a list.
    Seq(Vec<Edn<'a>>),
    /// A map's entries in the order written.
    Map(Vec<(Edn<'a>, Edn<'a>)>),
    Tagged(Cow<'a, str>, Box<Edn<'a>>),
    /// A form the converter never looks into, as its EDN text.
    Other(String),
}

/// Nesting deeper than this is refused: `edn-format` recurses without a
/// bound, so such a line never reaches it.
pub const DEPTH_MAX: usize = 64;

/// Whether `text` nests brackets deeper than [`DEPTH_MAX`] (outside
/// strings); a cheap scan before handing a line to `edn-format`.
pub fn too_deep(text: &str) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        match (in_string, b) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') => in_string = false,
            (true, _) => {}
            (false, b'"') => in_string = true,
            (false, b'[' | b'(' | b'{') => {
                depth += 1;
                if depth > DEPTH_MAX {
                    return true;
                }
            }
            (false, b']' | b')' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

impl<'a> Edn<'a> {
    /// The map entry under keyword `name`.
    pub fn get(&self, name: &str) -> Option<&Edn<'a>> {
        match self {
            Edn::Map(entries) => {
                entries.iter().find(|(k, _)| matches!(k, Edn::Keyword(n) if n == name)).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    pub fn keyword(&self) -> Option<&str> {
        match self {
            Edn::Keyword(k) => Some(k),
            _ => None,
        }
    }

    /// A vector's or list's items; none for anything else.
    pub fn items(&self) -> &[Edn<'a>] {
        match self {
            Edn::Seq(x) => x,
            _ => &[],
        }
    }

    /// A form `edn-format` read, owned.
    pub fn from_value(v: &edn_format::Value) -> Edn<'static> {
        use edn_format::Value as V;
        let owned = |s: &str| Cow::Owned(s.to_owned());
        match v {
            V::Nil => Edn::Nil,
            V::Boolean(b) => Edn::Bool(*b),
            V::Integer(i) => Edn::Int(*i),
            V::String(s) => Edn::Str(owned(s)),
            V::Keyword(k) => Edn::Keyword(Cow::Owned(match k.namespace() {
                Some(ns) => format!("{ns}/{}", k.name()),
                None => k.name().to_owned(),
            })),
            V::Symbol(s) => Edn::Symbol(owned(&edn_format::emit_str(&V::Symbol(s.clone())))),
            V::Vector(x) | V::List(x) => Edn::Seq(x.iter().map(Edn::from_value).collect()),
            V::Map(m) => Edn::Map(m.iter().map(|(k, v)| (Edn::from_value(k), Edn::from_value(v))).collect()),
            V::TaggedElement(tag, inner) => {
                Edn::Tagged(owned(&edn_format::emit_str(&V::Symbol(tag.clone()))), Box::new(Edn::from_value(inner)))
            }
            other => Edn::Other(edn_format::emit_str(other)),
        }
    }
}

impl fmt::Display for Edn<'_> {
    /// EDN text, for error messages and partition names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = |f: &mut fmt::Formatter<'_>, x: &[Edn<'_>]| -> fmt::Result {
            for (i, e) in x.iter().enumerate() {
                write!(f, "{}{e}", if i > 0 { " " } else { "" })?;
            }
            Ok(())
        };
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::Str(s) => write!(f, "{s:?}"),
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::Seq(x) => {
                f.write_str("[")?;
                seq(f, x)?;
                f.write_str("]")
            }
            Edn::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    write!(f, "{}{k} {v}", if i > 0 { ", " } else { "" })?;
                }
                f.write_str("}")
            }
            Edn::Tagged(t, v) => write!(f, "#{t}{v}"),
            Edn::Other(text) => f.write_str(text),
        }
    }
}

/// Reads one form that is the whole of `text`, or `None` when the text is
/// outside the fast subset (or not EDN: `edn-format` then says why).
pub fn read_fast(text: &str) -> Option<Edn<'_>> {
    let mut r = Reader { s: text.as_bytes(), text, at: 0 };
    let form = r.form(0)?;
    r.skip_blank();
    (r.at == r.s.len()).then_some(form)
}

struct Reader<'a> {
    s: &'a [u8],
    text: &'a str,
    at: usize,
}

fn symbol_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"*+!-_?<>=./'&".contains(&b)
}

impl<'a> Reader<'a> {
    fn skip_blank(&mut self) {
        while self.at < self.s.len() && (self.s[self.at].is_ascii_whitespace() || self.s[self.at] == b',') {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn form(&mut self, depth: usize) -> Option<Edn<'a>> {
        if depth > DEPTH_MAX {
            return None;
        }
        self.skip_blank();
        match self.peek()? {
            b'{' => self.map(depth),
            b'[' => self.seq(b']', depth),
            b'(' => self.seq(b')', depth),
            b'"' => self.string(),
            b':' => {
                self.at += 1;
                Some(Edn::Keyword(Cow::Borrowed(self.symbol_text()?)))
            }
            b'#' => {
                self.at += 1;
                let tag = self.symbol_text()?;
                if !tag.as_bytes()[0].is_ascii_alphabetic() {
                    return None;
                }
                Some(Edn::Tagged(Cow::Borrowed(tag), Box::new(self.form(depth + 1)?)))
            }
            b'0'..=b'9' | b'-' | b'+' if self.number_ahead() => self.integer(),
            b if symbol_byte(b) => match self.symbol_text()? {
                "nil" => Some(Edn::Nil),
                "true" => Some(Edn::Bool(true)),
                "false" => Some(Edn::Bool(false)),
                s => Some(Edn::Symbol(Cow::Borrowed(s))),
            },
            _ => None,
        }
    }

    fn number_ahead(&self) -> bool {
        let next = if matches!(self.s[self.at], b'-' | b'+') { self.s.get(self.at + 1) } else { self.s.get(self.at) };
        next.is_some_and(u8::is_ascii_digit)
    }

    fn symbol_text(&mut self) -> Option<&'a str> {
        let start = self.at;
        while self.at < self.s.len() && symbol_byte(self.s[self.at]) {
            self.at += 1;
        }
        // `:` and `#` may continue a name (`:a:b`): left to edn-format.
        if matches!(self.peek(), Some(b':' | b'#')) {
            return None;
        }
        (self.at > start).then(|| &self.text[start..self.at])
    }

    fn integer(&mut self) -> Option<Edn<'a>> {
        let text = self.symbol_text()?;
        // A float, a ratio, a big integer (`M`, `N`) or a bad number: slow path.
        text.parse().ok().map(Edn::Int)
    }

    fn string(&mut self) -> Option<Edn<'a>> {
        self.at += 1;
        let start = self.at;
        while self.at < self.s.len() {
            match self.s[self.at] {
                b'"' => {
                    self.at += 1;
                    return Some(Edn::Str(Cow::Borrowed(&self.text[start..self.at - 1])));
                }
                b'\\' => return self.escaped(start),
                _ => self.at += 1,
            }
        }
        None
    }

    /// The rest of a string with escapes: `\"`, `\\`, `\n`, `\t`, `\r`.
    fn escaped(&mut self, start: usize) -> Option<Edn<'a>> {
        let mut out = self.text[start..self.at].to_owned();
        while self.at < self.s.len() {
            let c = self.s[self.at];
            self.at += 1;
            match c {
                b'"' => return Some(Edn::Str(Cow::Owned(out))),
                b'\\' => {
                    let e = *self.s.get(self.at)?;
                    self.at += 1;
                    out.push(match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        _ => return None,
                    });
                }
                _ => {
                    // Copy the whole UTF-8 sequence this byte starts.
                    let from = self.at - 1;
                    while self.at < self.s.len() && (self.s[self.at] & 0xC0) == 0x80 {
                        self.at += 1;
                    }
                    out.push_str(&self.text[from..self.at]);
                }
            }
        }
        None
    }

    fn seq(&mut self, close: u8, depth: usize) -> Option<Edn<'a>> {
        self.at += 1;
        let mut items = Vec::new();
        // Bounded by the line: each turn reads a form or ends.
        loop {
            self.skip_blank();
            if self.peek()? == close {
                self.at += 1;
                return Some(Edn::Seq(items));
            }
            items.push(self.form(depth + 1)?);
        }
    }

    fn map(&mut self, depth: usize) -> Option<Edn<'a>> {
        self.at += 1;
        let mut entries = Vec::new();
        // Bounded by the line: each turn reads an entry or ends.
        loop {
            self.skip_blank();
            if self.peek()? == b'}' {
                self.at += 1;
                return Some(Edn::Map(entries));
            }
            let k = self.form(depth + 1)?;
            let v = self.form(depth + 1)?;
            entries.push((k, v));
        }
    }
}
