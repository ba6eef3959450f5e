//! S3's XML bodies: the responses we write and the requests we parse.

use quick_xml::escape::escape;
use serde::Deserialize;

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
        self.0.push_str(&escape(text));
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

pub fn error(code: &str, message: &str, resource: &str) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
    for (k, v) in [("Code", code), ("Message", message), ("Resource", resource)] {
        x.push_str(&format!("<{k}>{}</{k}>", escape(v)));
    }
    x.push_str("</Error>");
    x
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CompletePart {
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CompleteMultipartUpload {
    #[serde(default, rename = "Part")]
    parts: Vec<CompletePart>,
}

/// Parses an XML request body into `T`; anything else is `MalformedXML`.
pub fn parse_doc<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let text = std::str::from_utf8(body).map_err(|_| Error::MalformedXml("not UTF-8".into()))?;
    quick_xml::de::from_str(text).map_err(|e| Error::MalformedXml(e.to_string()))
}

/// Parses a CompleteMultipartUpload request body.
pub fn parse_complete(body: &[u8]) -> Result<Vec<CompletePart>, Error> {
    Ok(parse_doc::<CompleteMultipartUpload>(body)?.parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_body_parses() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><ETag>"a1"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>xx==</ChecksumCRC32></Part>
  <Part><PartNumber>2</PartNumber><ETag>&quot;b2&quot;</ETag></Part>
</CompleteMultipartUpload>"#;
        let parts = parse_complete(body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].part_number, parts[0].etag.as_str()),
            (1, "\"a1\"")
        );
        assert_eq!(
            (parts[1].part_number, parts[1].etag.as_str()),
            (2, "\"b2\"")
        );
        assert!(parse_complete(b"<CompleteMultipartUpload><Part>").is_err());
    }

    #[test]
    fn text_is_escaped() {
        let mut x = Xml::root("R");
        x.elem("Key", "a<b&c");
        assert!(x.finish("R").contains("<Key>a&lt;b&amp;c</Key>"));
        assert_eq!(iso8601(1_000_000_000), "1970-01-01T00:00:01.000Z");
    }
}
