//! QR codes for the device flow, as SVG the sign-in window inlines.

use qrcode::QrCode;
use qrcode::render::svg;

/// An SVG of `text`, with dark modules in `currentColor`-independent black on white: phone
/// cameras read dark-on-light best whatever the window's theme.
pub fn svg(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(180, 180)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_an_svg() {
        let svg = super::svg("https://idp.example.com/device?user_code=WDJB-MJHT").unwrap();
        assert!(
            svg.starts_with("<?xml") || svg.starts_with("<svg"),
            "{svg:.40}"
        );
        assert!(svg.contains("</svg>"));
    }
}
