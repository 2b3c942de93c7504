/**
 * @module Check digits and number plans the PII detectors validate candidates with: Luhn and the payment card
 * schemes' IIN ranges and lengths, the SSA's rules for a Social Security number, and ISO 13616 IBANs (country
 * lengths, BBAN formats and the mod-97 check digits, from `ibantools`). Pure; no Node built-ins.
 */
import { getCountrySpecifications, isValidIBAN } from "ibantools";

/** True when the digit string passes the Luhn (mod 10) check. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

export type CardScheme = "visa" | "mastercard" | "amex" | "discover" | "jcb" | "diners" | "unionpay";

/**
 * The scheme whose IIN range the number starts with, when its length is one that scheme issues; undefined for an
 * unknown prefix or a wrong length (so a Luhn-valid order number is not a card).
 */
export function cardScheme(digits: string): CardScheme | undefined {
  const n = digits.length;
  const p2 = Number(digits.slice(0, 2));
  const p3 = Number(digits.slice(0, 3));
  const p4 = Number(digits.slice(0, 4));
  const within = (min: number, max: number) => n >= min && n <= max;
  if (digits[0] === "4") return n === 13 || n === 16 || n === 19 ? "visa" : undefined;
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16 ? "mastercard" : undefined;
  if (p2 === 34 || p2 === 37) return n === 15 ? "amex" : undefined;
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649)) return within(16, 19) ? "discover" : undefined;
  if (p4 >= 3528 && p4 <= 3589) return within(16, 19) ? "jcb" : undefined;
  if (p2 === 36 || p2 === 38 || (p3 >= 300 && p3 <= 305)) return within(14, 19) ? "diners" : undefined;
  if (p2 === 62) return within(16, 19) ? "unionpay" : undefined;
  return undefined;
}

/** A card number: a known scheme's prefix and length, and a valid Luhn check digit. */
export function cardValid(digits: string): CardScheme | undefined {
  const scheme = cardScheme(digits);
  return scheme !== undefined && luhnValid(digits) ? scheme : undefined;
}

/**
 * The SSA's rules for an issued SSN: area (first three digits) not 000, 666 or 900-999; group (middle two) not 00;
 * serial (last four) not 0000. Takes the nine digits.
 */
export function ssnValid(digits: string): boolean {
  const area = Number(digits.slice(0, 3));
  return area !== 0 && area !== 666 && area < 900 && digits.slice(3, 5) !== "00" && digits.slice(5, 9) !== "0000";
}

/** Total IBAN length per ISO country code, for the countries that issue IBANs. */
const IBAN_LENGTHS: ReadonlyMap<string, number> = new Map(
  Object.entries(getCountrySpecifications()).flatMap(([country, spec]) => (spec.chars ? [[country, spec.chars] as const] : [])),
);

/** The IBAN length of the country code, or undefined when that country issues none. */
export function ibanLength(countryCode: string): number | undefined {
  return IBAN_LENGTHS.get(countryCode);
}

/** An IBAN in electronic format (no spaces, upper case): the country's length and BBAN format, and mod 97 = 1. */
export function ibanValid(iban: string): boolean {
  return isValidIBAN(iban);
}
