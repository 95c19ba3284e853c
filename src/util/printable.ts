/**
 * Printing names and values that come from the cluster KV (or a member) to a terminal. Whoever
 * can write a key could otherwise put escape sequences into `config show` or `members` that
 * move the cursor, rewrite earlier lines, retitle the window or hide text; Unicode direction
 * controls reorder what is shown the same way.
 *
 * Unprintable here: C0 controls (U+0000–U+001F: ESC, CR, newline, tab …), DEL and the C1
 * controls (U+007F–U+009F, which some terminals obey like ESC sequences), and the invisible
 * direction and line controls (U+061C, U+200E, U+200F, U+2028, U+2029, U+202A–U+202E,
 * U+2066–U+2069).
 */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
// What JSON.stringify leaves as is: it escapes C0 controls but not these.
const UNESCAPED_BY_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const UNPRINTABLE_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function unicodeEscape(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/**
 * A name or value as one safe table cell or listing item: unchanged when it has nothing
 * unprintable, else as a double-quoted JSON string literal with those characters escaped
 * (`"a\u001b[31mb"`, `"two\nlines"`), which `JSON.parse` turns back into the value.
 */
export function printable(value: string): string {
  if (!UNPRINTABLE.test(value)) return value;
  return JSON.stringify(value).replace(UNESCAPED_BY_JSON, unicodeEscape);
}

/**
 * Free text that embeds such data (a message, an error relayed from a host), possibly over
 * several lines: every unprintable character but the newline is replaced by its `\uXXXX`
 * escape; no quotes are added.
 */
export function printableText(text: string): string {
  return text.replace(UNPRINTABLE_BUT_NEWLINE, unicodeEscape);
}

/**
 * `JSON.stringify(value, null, indent)` with every unprintable character escaped: JSON itself
 * escapes the C0 controls; DEL, C1 and the direction controls become `\uXXXX` too, which is the
 * same JSON value. For `--json` output that may end up on a terminal.
 */
export function jsonText(value: unknown, indent = 2): string {
  return JSON.stringify(value, null, indent).replace(UNESCAPED_BY_JSON, unicodeEscape);
}
