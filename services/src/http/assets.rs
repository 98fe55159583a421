//! Files built into the image (from `services/src/http/assets/`), which a
//! route serves by name: `{ path = "/", file = "index.html" }`.

/// A file built into the image.
#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    /// Its name in a route's `file`.
    pub name: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
    /// Its media type, from its extension.
    pub content_type: &'static str,
}

/// Every built-in file. Add one by putting it in `assets/` and a line here.
pub static ASSETS: &[Asset] = &[Asset {
    name: "index.html",
    bytes: include_bytes!("assets/index.html"),
    content_type: "text/html; charset=utf-8",
}];

/// The built-in file named `name`.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

/// The built-in files' names, for an error message: `index.html, ...`.
pub fn names() -> alloc::string::String {
    let names: alloc::vec::Vec<&str> = ASSETS.iter().map(|asset| asset.name).collect();
    names.join(", ")
}
