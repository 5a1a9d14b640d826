const CSRF_COOKIE = "kai_csrf";

/** The value of the script-readable `kai_csrf` cookie that must accompany cookie-authenticated calls. */
export function csrfToken(): string {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}
