// Exact comparison of JSON numbers given as text. Row images carry
// arbitrary-precision numbers (abi/SPEC.md §4.1): 0.1 + 0.2 style rounding,
// or 12345678901234567890.5 silently becoming ...890, must not decide
// whether an event passes. Comparing the decimal text avoids both.

const EXP_LIMIT: i64 = 1000000000000000; // 1e15: exponents beyond saturate

/** A JSON number as sign × 0.DIGITS × 10^exp, DIGITS without leading or trailing zeros. */
class Decimal {
  neg: bool = false;
  digits: string = ""; // "" for zero
  exp: i64 = 0;
}

function isDigit(c: i32): bool { return c >= 0x30 && c <= 0x39; }

function normalize(s: string): Decimal {
  const d = new Decimal();
  const n = s.length;
  let i = 0;
  if (i < n && s.charCodeAt(i) == 0x2d) { d.neg = true; i++; }
  const intStart = i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  const intEnd = i;
  let fracStart = i, fracEnd = i;
  if (i < n && s.charCodeAt(i) == 0x2e) {
    i++;
    fracStart = i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    fracEnd = i;
  }
  let e: i64 = 0;
  if (i < n && (s.charCodeAt(i) | 0x20) == 0x65) {
    i++;
    let eneg = false;
    if (i < n && (s.charCodeAt(i) == 0x2b || s.charCodeAt(i) == 0x2d)) { eneg = s.charCodeAt(i) == 0x2d; i++; }
    while (i < n && isDigit(s.charCodeAt(i))) {
      if (e < EXP_LIMIT) e = e * 10 + <i64>(s.charCodeAt(i) - 0x30);
      i++;
    }
    if (eneg) e = -e;
  }
  const all = s.substring(intStart, intEnd) + s.substring(fracStart, fracEnd);
  let lead = 0;
  while (lead < all.length && all.charCodeAt(lead) == 0x30) lead++;
  let end = all.length;
  while (end > lead && all.charCodeAt(end - 1) == 0x30) end--;
  if (end == lead) return d; // zero, whatever its sign
  d.digits = all.substring(lead, end);
  d.exp = <i64>(intEnd - intStart) - <i64>lead + e;
  return d;
}

/**
 * Compares two JSON numbers exactly: -1 if a < b, 0 if equal (1.50 = 1.5 =
 * 15e-1, -0 = 0), 1 if a > b. Both must be JSON number text, such as
 * JSONValue.text of a number. Exponents beyond ±10^15 saturate (1e999999999999999999
 * and 1e1000000000000000000 compare equal); everything else is exact.
 */
export function compareNumbers(a: string, b: string): i32 {
  const x = normalize(a);
  const y = normalize(b);
  const sx = x.digits.length == 0 ? 0 : (x.neg ? -1 : 1);
  const sy = y.digits.length == 0 ? 0 : (y.neg ? -1 : 1);
  if (sx != sy) return sx < sy ? -1 : 1;
  if (sx == 0) return 0;
  let mag = 0;
  if (x.exp != y.exp) {
    mag = x.exp > y.exp ? 1 : -1;
  } else {
    const n = min(x.digits.length, y.digits.length);
    for (let i = 0; i < n && mag == 0; i++) {
      const c = x.digits.charCodeAt(i) - y.digits.charCodeAt(i);
      if (c != 0) mag = c > 0 ? 1 : -1;
    }
    if (mag == 0 && x.digits.length != y.digits.length) mag = x.digits.length > y.digits.length ? 1 : -1;
  }
  return sx * mag;
}
