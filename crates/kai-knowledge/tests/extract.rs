//! Sniffing and text extraction: types from the bytes, text out of Markdown, code, HTML and
//! PDF, and clear errors (never a panic) for what is not text.

#![allow(clippy::unwrap_used)]

use kai_knowledge::extract::{ExtractError, Format, Sniffed, extract, sniff};

/// A one-page PDF written by hand whose page shows "Hello PDF world" in Helvetica.
const HELLO_PDF: &[u8] = include_bytes!("fixtures/hello.pdf");

/// The start of a PNG: its signature and the header chunk of a 1×1 image.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89";

fn sniffed(mime: &'static str, format: Format) -> Sniffed {
    Sniffed { mime, format }
}

#[test]
fn text_formats_come_from_the_name() {
    let text = b"# Title\n\nSome text.\n";
    assert_eq!(
        sniff(text, Some("notes/README.md")),
        sniffed("text/markdown", Format::Markdown)
    );
    assert_eq!(
        sniff(text, Some("C:\\docs\\NOTES.MARKDOWN")),
        sniffed("text/markdown", Format::Markdown)
    );
    assert_eq!(
        sniff(b"fn main() {}\n", Some("main.rs")),
        sniffed("text/x-rust", Format::Code { language: "rust" })
    );
    assert_eq!(
        sniff(b"print('hi')\n", Some("tool.py")),
        sniffed("text/x-python", Format::Code { language: "python" })
    );
    assert_eq!(
        sniff(b"{\"a\": 1}", Some("data.json")),
        sniffed("application/json", Format::Code { language: "json" })
    );
    assert_eq!(
        sniff(b"a = 1\n", Some("Cargo.toml")),
        sniffed("application/toml", Format::Code { language: "toml" })
    );
    assert_eq!(
        sniff(b"all:\n\tcc x.c\n", Some("Makefile")),
        sniffed("text/x-makefile", Format::Code { language: "make" })
    );
    assert_eq!(
        sniff(b"<p>hi</p>", Some("page.html")),
        sniffed("text/html", Format::Html)
    );
    assert_eq!(
        sniff(b"just words", Some("notes.txt")),
        sniffed("text/plain", Format::PlainText)
    );
    // An extension kai does not know, a hidden file, no name: plain text.
    assert_eq!(
        sniff(b"just words", Some("notes.xyz")),
        sniffed("text/plain", Format::PlainText)
    );
    assert_eq!(
        sniff(b"alias ll='ls -l'\n", Some(".bashrc")),
        sniffed("text/plain", Format::PlainText)
    );
    assert_eq!(
        sniff(b"just words", None),
        sniffed("text/plain", Format::PlainText)
    );
}

#[test]
fn text_without_a_known_name_is_sniffed_from_its_start() {
    assert_eq!(
        sniff(b"<!DOCTYPE html><html><body>hi</body></html>", None),
        sniffed("text/html", Format::Html)
    );
    assert_eq!(
        sniff(b"#!/bin/sh\necho hi\n", Some("install")),
        sniffed("text/x-shellscript", Format::Code { language: "shell" })
    );
    assert_eq!(
        sniff(b"<?xml version=\"1.0\"?><a/>", None),
        sniffed("application/xml", Format::Code { language: "xml" })
    );
    // A name that says text wins over a start that looks like HTML.
    assert_eq!(
        sniff(b"<!-- a comment -->\n# Title\n", Some("doc.md")),
        sniffed("text/markdown", Format::Markdown)
    );
    // A text file that starts like an MP3 (`ID3`) is still text.
    assert_eq!(
        sniff(b"ID3 tags: notes on the format", Some("id3.txt")),
        sniffed("text/plain", Format::PlainText)
    );
}

#[test]
fn binary_is_binary_whatever_the_name_says() {
    assert_eq!(
        sniff(PNG, Some("photo.png")),
        sniffed("image/png", Format::Binary)
    );
    assert_eq!(
        sniff(PNG, Some("notes.md")),
        sniffed("image/png", Format::Binary)
    );
    assert_eq!(
        sniff(b"PK\x03\x04\x14\x00\x00\x00\x08\x00", Some("a.txt")),
        sniffed("application/zip", Format::Binary)
    );
    // Binary junk labelled as text: not UTF-8, or holding a NUL byte.
    assert_eq!(
        sniff(b"\xff\xfe\xfd junk", Some("junk.txt")),
        sniffed("application/octet-stream", Format::Binary)
    );
    assert_eq!(
        sniff(b"looks like text\0but is not", Some("junk.txt")),
        sniffed("application/octet-stream", Format::Binary)
    );
    assert!(!Format::Binary.is_text());
    // The first bytes of a file may end inside a character: still text.
    let head = &"知识".as_bytes()[..4];
    assert_eq!(
        sniff(head, Some("notes.md")),
        sniffed("text/markdown", Format::Markdown)
    );
    assert!(matches!(
        extract(head, Format::Markdown),
        Err(ExtractError::NotUtf8 { at: 3 })
    ));
    // Text named like an image is text.
    assert_eq!(
        sniff(b"plain words", Some("fake.png")),
        sniffed("text/plain", Format::PlainText)
    );
    // A PDF is a PDF by its bytes, whatever its name.
    assert_eq!(
        sniff(HELLO_PDF, Some("hello.txt")),
        sniffed("application/pdf", Format::Pdf)
    );
    assert!(Format::Pdf.is_text());
}

#[test]
fn empty_files_are_empty_text() {
    assert_eq!(sniff(b"", None), sniffed("text/plain", Format::PlainText));
    assert_eq!(
        sniff(b"", Some("empty.md")),
        sniffed("text/markdown", Format::Markdown)
    );
    assert_eq!(
        sniff(b"", Some("empty.pdf")),
        sniffed("text/plain", Format::PlainText)
    );
    for format in [
        Format::Markdown,
        Format::Html,
        Format::PlainText,
        Format::Code { language: "rust" },
    ] {
        assert_eq!(extract(b"", format).unwrap(), "", "{format:?}");
    }
}

#[test]
fn text_is_itself_without_bom_and_with_unix_newlines() {
    let text = extract(
        b"\xEF\xBB\xBF# Title\r\n\r\nline one\rline two\n",
        Format::Markdown,
    );
    assert_eq!(text.unwrap(), "# Title\n\nline one\nline two\n");
    let code = "fn main() {\n    println!(\"héllo\");\n}\n";
    assert_eq!(
        extract(code.as_bytes(), Format::Code { language: "rust" }).unwrap(),
        code
    );
}

#[test]
fn bytes_that_are_not_text_are_refused_with_where() {
    let err = extract(b"abc\xffdef", Format::PlainText).unwrap_err();
    assert!(matches!(err, ExtractError::NotUtf8 { at: 3 }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the file is not valid UTF-8 at byte 3; text files must be UTF-8"
    );
    let err = extract(b"ab\0cd", Format::Markdown).unwrap_err();
    assert!(matches!(err, ExtractError::NulByte { at: 2 }), "{err:?}");
    // Offsets are in the file, byte order mark included.
    let err = extract(b"\xEF\xBB\xBFabc\xff", Format::PlainText).unwrap_err();
    assert!(matches!(err, ExtractError::NotUtf8 { at: 6 }), "{err:?}");
    let err = extract(PNG, Format::Binary).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the file is binary and has no text to extract"
    );
}

#[test]
fn html_gives_its_readable_text() {
    let long_sentence = "word ".repeat(100);
    let page = format!(
        "<!DOCTYPE html><html><head><title>Page title</title>\
         <style>body {{ color: red; }}</style><script>var secret = 1;</script></head>\
         <body><h1>Guide</h1><h2>Install</h2><p>Run <a href=\"https://example.com/x\">the \
         installer</a> &amp; wait.</p><p>{long_sentence}</p><ul><li>one</li><li>two</li></ul>\
         <table><tr><td>cell a</td><td>cell b</td></tr></table></body></html>"
    );
    let text = extract(page.as_bytes(), Format::Html).unwrap();
    assert!(text.contains("# Guide\n"), "{text}");
    assert!(text.contains("## Install\n"), "{text}");
    // A link is its text, in brackets as the plain renderer writes it.
    assert!(text.contains("Run [the installer] & wait."), "{text}");
    assert!(text.contains("one") && text.contains("two"), "{text}");
    assert!(text.contains("cell a") && text.contains("cell b"), "{text}");
    // Not wrapped into short lines.
    assert!(text.contains(long_sentence.trim()), "{text}");
    // Scripts, styles and the head are not text; link targets are not listed.
    for absent in ["secret", "color", "Page title", "https://example.com"] {
        assert!(!text.contains(absent), "{absent} in {text}");
    }
}

#[test]
fn a_pdf_gives_the_text_of_its_pages() {
    let text = extract(HELLO_PDF, Format::Pdf).unwrap();
    assert_eq!(text.trim(), "Hello PDF world");
}

#[test]
fn a_broken_pdf_is_an_error_not_a_panic() {
    let err = extract(b"%PDF-1.4\nthis is not a PDF at all", Format::Pdf).unwrap_err();
    assert!(matches!(err, ExtractError::Pdf { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("the PDF could not be parsed: "),
        "{err}"
    );
    let err = extract(&HELLO_PDF[..HELLO_PDF.len() / 2], Format::Pdf).unwrap_err();
    assert!(matches!(err, ExtractError::Pdf { .. }), "{err:?}");
    assert!(extract(b"", Format::Pdf).is_err());
    // Every truncation and a damaged byte at every offset: an answer each time, whatever it
    // is, and never a panic out of `extract`, though the parser panics on many of them.
    let mut caught = 0;
    let mut check = |bytes: &[u8]| {
        if let Err(ExtractError::Pdf { reason }) = extract(bytes, Format::Pdf)
            && reason.starts_with("the parser failed on a malformed file")
        {
            caught += 1;
        }
    };
    for len in 0..HELLO_PDF.len() {
        check(&HELLO_PDF[..len]);
    }
    for at in 0..HELLO_PDF.len() {
        let mut damaged = HELLO_PDF.to_vec();
        damaged[at] ^= 0x55;
        check(&damaged);
    }
    assert!(caught > 0, "no damaged PDF made the parser panic");
}
