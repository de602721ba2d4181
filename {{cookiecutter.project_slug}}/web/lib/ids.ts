// Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
/**
 * A random UUID (v4). crypto.randomUUID exists only in secure contexts (https, localhost); a page
 * served over plain http under another name (a cluster's ingress, a LAN address) lacks it, while
 * crypto.getRandomValues is there in every context.
 */
export function randomId(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
