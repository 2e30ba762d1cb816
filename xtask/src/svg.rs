//! A few lines of SVG, by hand: rectangles, lines, text and groups are
//! all the project's pictures need (the ptdump's columns, the bench's
//! charts), and a dependency would be larger than this file.

use std::fmt::Write;

pub struct Svg {
    width: f64,
    height: f64,
    body: String,
}

/// Text safe inside an element or an attribute.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

impl Svg {
    pub fn new(width: f64, height: f64) -> Svg {
        Svg { width, height, body: String::new() }
    }

    /// A raw element (a `<defs>` pattern, a `<style>`).
    pub fn raw(&mut self, element: &str) {
        self.body.push_str(element);
        self.body.push('\n');
    }

    /// A rectangle; `style` is the rest of its attributes
    /// (`fill="#..." stroke="#..."`).
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, style: &str) {
        let _ =
            writeln!(self.body, r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" {style}/>"#);
    }

    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, style: &str) {
        let _ = writeln!(self.body, r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" {style}/>"#);
    }

    /// Text at (x, y), its baseline; `style` as for `rect` (`class="..."`,
    /// `text-anchor="end"`).
    pub fn text(&mut self, x: f64, y: f64, style: &str, text: &str) {
        let _ = writeln!(self.body, r#"<text x="{x:.1}" y="{y:.1}" {style}>{}</text>"#, escape(text));
    }

    /// Text with a tooltip (`<title>`): what a reader sees on hovering.
    pub fn text_titled(&mut self, x: f64, y: f64, style: &str, text: &str, title: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" {style}><title>{}</title>{}</text>"#,
            escape(title),
            escape(text)
        );
    }

    /// Grows the canvas to hold (x, y).
    pub fn fit(&mut self, x: f64, y: f64) {
        self.width = self.width.max(x);
        self.height = self.height.max(y);
    }

    pub fn finish(self, style: &str) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\">\n\
             <style>{style}</style>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{}</svg>\n",
            self.body,
            w = self.width,
            h = self.height,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_holds_its_elements_escaped() {
        let mut s = Svg::new(10.0, 20.0);
        s.rect(1.0, 2.0, 3.0, 4.0, r#"fill="red""#);
        s.text(5.0, 6.0, r#"class="t""#, "a < b & c");
        s.fit(40.0, 5.0);
        let out = s.finish("text { font: 10px sans-serif; }");
        assert!(
            out.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"20\""),
            "{out}"
        );
        assert!(out.contains(r#"<rect x="1.0" y="2.0" width="3.0" height="4.0" fill="red"/>"#));
        assert!(out.contains(">a &lt; b &amp; c</text>"));
        assert!(out.trim_end().ends_with("</svg>"));
    }
}
