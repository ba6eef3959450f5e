//! S3's XML bodies: the responses we write and the requests we parse.

use quick_xml::escape::escape;

use crate::error::Error;

pub const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// S3's timestamp format in XML bodies, e.g. `2026-11-27T10:00:00.000Z`.
pub fn iso8601(ns: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// A tiny XML writer: elements with escaped text, nothing more.
pub struct Xml(String);

impl Xml {
    pub fn root(name: &str) -> Self {
        Self(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{name} xmlns=\"{XMLNS}\">"
        ))
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.0.push('<');
        self.0.push_str(name);
        self.0.push('>');
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.0.push_str("</");
        self.0.push_str(name);
        self.0.push('>');
        self
    }

    pub fn elem(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        self.0.push_str(&escape_text(text));
        self.close(name)
    }

    /// Appends markup as is (for fixed fragments with attributes).
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.0
    }
}

/// Escapes element text. A raw CR would be read back as LF by the client's
/// XML parser (line-end normalisation), so it goes as a character reference.
fn escape_text(text: &str) -> std::borrow::Cow<'_, str> {
    let escaped = escape(text);
    if escaped.contains('\r') {
        escaped.replace('\r', "&#13;").into()
    } else {
        escaped
    }
}

pub fn error(code: &str, message: &str, resource: &str, request_id: &str) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
    for (k, v) in [
        ("Code", code),
        ("Message", message),
        ("Resource", resource),
        ("RequestId", request_id),
    ] {
        x.push_str(&format!("<{k}>{}</{k}>", escape(v)));
    }
    x.push_str("</Error>");
    x
}

/// One element of a request document: its local name, its own text (all
/// text and CDATA directly inside it, exactly as sent: keys are bytes, so
/// nothing is trimmed), and its child elements.
#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The child elements named `name`, in document order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of child `name`, exactly as sent.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

/// Deepest nesting a request document may have; S3's documents use four.
const MAX_DEPTH: usize = 16;

/// Parses an XML request body into an element tree, namespaces dropped.
/// Unlike serde deserialisation, text is kept byte for byte (no trimming),
/// which object keys need: `"a "` and `"a"` are different keys.
pub fn parse_tree(body: &[u8]) -> Result<Element, Error> {
    use quick_xml::events::Event;
    let bad = |why: String| Error::MalformedXml(why);
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8".into()))?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(false);
    let name_of = |raw: &[u8]| String::from_utf8_lossy(raw).into_owned();
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(|e| bad(e.to_string()))?;
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(bad("content after the root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(bad("elements nested too deep".into()));
                }
                stack.push(Element {
                    name: name_of(e.local_name().as_ref()),
                    ..Element::default()
                });
            }
            Event::Empty(e) => {
                let el = Element {
                    name: name_of(e.local_name().as_ref()),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(bad("content after the root element".into())),
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| bad("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|e| bad(e.to_string()))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(bad("text outside the root element".into())),
                }
            }
            Event::CData(t) => {
                let s = std::str::from_utf8(&t).map_err(|_| bad("CDATA is not UTF-8".into()))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(s),
                    None => return Err(bad("CDATA outside the root element".into())),
                }
            }
            Event::DocType(_) => return Err(bad("DOCTYPE is not allowed".into())),
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(bad("the document ends inside an element".into()));
    }
    root.ok_or_else(|| bad("empty document".into()))
}

/// A root element named `name`, or MalformedXML.
pub fn parse_root(body: &[u8], name: &str) -> Result<Element, Error> {
    let root = parse_tree(body)?;
    if root.name != name {
        return Err(Error::MalformedXml(format!(
            "the root element is {}, not {name}",
            root.name
        )));
    }
    Ok(root)
}

/// Parses an XML request body into `T`; anything else is `MalformedXML`.
/// serde trims text, so documents carrying keys use [`parse_tree`].
pub fn parse_doc<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let text = std::str::from_utf8(body).map_err(|_| Error::MalformedXml("not UTF-8".into()))?;
    quick_xml::de::from_str(text).map_err(|e| Error::MalformedXml(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_keep_text_exactly() {
        let body = b"<?xml version=\"1.0\"?>\n<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n  \
<Object><Key> a </Key></Object><Object><Key>b&#13;\n</Key></Object>\
<Object><Key><![CDATA[<c>]]></Key></Object><Object><Key>a&amp;\t</Key></Object><Quiet/></Delete>";
        let root = parse_root(body, "Delete").unwrap();
        let keys: Vec<&str> = root
            .all("Object")
            .map(|o| o.text_of("Key").unwrap())
            .collect();
        assert_eq!(keys, [" a ", "b\r\n", "<c>", "a&\t"]);
        assert!(root.child("Quiet").is_some());
        assert!(parse_root(body, "Other").is_err());
        for bad in [
            &b"<a><b></a>"[..],
            b"<a>",
            b"",
            b"<a/><b/>",
            b"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            b"<a>&bogus;</a>",
        ] {
            assert!(
                parse_tree(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert!(parse_tree(deep.as_bytes()).is_err());
    }

    #[test]
    fn text_is_escaped() {
        let mut x = Xml::root("R");
        x.elem("Key", "a<b&c\r");
        assert!(x.finish("R").contains("<Key>a&lt;b&amp;c&#13;</Key>"));
        assert_eq!(iso8601(1_000_000_000), "1970-01-01T00:00:01.000Z");
    }
}
