//! First-party identity: a random device id kept in a cookie.

use wasm_bindgen::JsCast;

const COOKIE: &str = "et_id";
/// 400 days, the most browsers keep a cookie.
const COOKIE_MAX_AGE_SECONDS: u32 = 400 * 24 * 60 * 60;

/// 32 hex characters from the browser's CSPRNG.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if let Some(crypto) = web_sys::window().and_then(|w| w.crypto().ok()) {
        let _ = crypto.get_random_values_with_u8_array(&mut bytes);
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [HEX[(b >> 4) as usize] as char, HEX[(b & 15) as usize] as char]).collect()
}

pub fn device_id(document: &web_sys::Document) -> String {
    let Ok(html) = document.clone().dyn_into::<web_sys::HtmlDocument>() else { return random_id() };
    let cookies = html.cookie().unwrap_or_default();
    let existing = cookies.split("; ").find_map(|pair| pair.strip_prefix(COOKIE).and_then(|rest| rest.strip_prefix('=')));
    if let Some(id) = existing.filter(|id| !id.is_empty()) {
        return id.to_owned();
    }
    let id = random_id();
    let secure = web_sys::window().and_then(|w| w.location().protocol().ok()).is_some_and(|p| p == "https:");
    let cookie = format!(
        "{COOKIE}={id}; Max-Age={COOKIE_MAX_AGE_SECONDS}; Path=/; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    );
    let _ = html.set_cookie(&cookie);
    id
}
