// The COCO caption tokenizer: a port of what pycocoevalcap's PTBTokenizer does, i.e. Stanford
// CoreNLP 3.4.1 `PTBTokenizer -preserveLines -lowerCase` (PTB3 escaping, latex quotes, ptb3
// dashes/ellipsis, americanize off, tokenizeNLs) followed by dropping punctuation tokens.
// The lexer is a small JFlex emulation: at each position every rule is tried, the longest match
// (trailing context included, as JFlex counts it) wins, ties go to the earlier rule. Captions are
// joined with "\n" exactly as pycocoevalcap writes its temp file, so trailing contexts see the
// next line as the Java lexer does. A fast path takes plain letter runs followed by a space.

/** Tokens pycocoevalcap removes after the Java tokenizer (compared exactly, after lower-casing). */
export const PTB_PUNCTUATIONS: readonly string[] = ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"];
const DROP = new Set(PTB_PUNCTUATIONS);

/** JFlex %caseless: letters in literals match both cases, letters inside [...] classes do not. */
function ci(src: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === "\\") {
      // copy an escape whole: \p{..}, \uXXXX, \xXX or one character
      const n = src[i + 1] ?? "";
      const len = (n === "p" || n === "P") && src[i + 2] === "{" ? src.indexOf("}", i) - i + 1 : n === "u" ? 6 : n === "x" ? 4 : 2;
      out += src.slice(i, i + len);
      i += len - 1;
      continue;
    }
    if (inClass) { if (c === "]") inClass = false; out += c; continue; }
    if (c === "[") { inClass = true; out += c; if (src[i + 1] === "^") { out += "^"; i++; } continue; }
    out += /[a-zA-Z]/.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c;
  }
  return out;
}

// ---- macros (CoreNLP PTBLexer.flex; \p{L}/\p{Nd} stand for JFlex [:letter:]/[:digit:]) ----
const LETTER = String.raw`[\p{L}\p{M}\u00AD]`;
const DIGIT = String.raw`\p{Nd}`;
const ALNUM = String.raw`[\p{L}\p{M}\p{Nd}]`;
const SPACE = String.raw`[ \t\u00A0\u2000-\u200A\u3000]`;
const SPACENL = String.raw`(?:${SPACE}|\n)`;
const APOS = String.raw`(?:['\u0092\u2019]|&apos;)`;
const APOSETC = String.raw`(?:${APOS}|[\u0091\u2018\u201B])`;
const HYPHEN = String.raw`[-_\u058A\u2010\u2011]`;
const SGML = String.raw`<\/?[A-Za-z!?][^>\r\n]*>`;
const WORD = String.raw`${LETTER}(?:${LETTER}|${DIGIT})*`;
const SWORD = String.raw`[A-Za-z\u00AA\u00B5\u00BA\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u00FF]*[A-MO-Za-mo-z]\u00AD*`;
const REDAUX = String.raw`${APOSETC}(?:[msdMSD]|re|ve|ll)`;
const SREDAUX = String.raw`n${APOSETC}t`;
const APOWORD = String.raw`${APOS}n${APOS}?|[lLdDjJ]${APOS}|Dunkin${APOS}|somethin${APOS}|ol${APOS}|${APOS}em|[A-HJ-XZn]${APOSETC}\p{L}{2}\p{L}*|${APOS}[2-9]0s|${APOS}till?|\p{L}\p{L}*[aeiouyAEIOUY]${APOSETC}[aeiouA-Z]\p{L}*|${APOS}cause|cont'd\.?|'twas|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l|O${APOSETC}o`;
const THINGPART = String.raw`(?:[dDoOlL]${APOSETC}${ALNUM})?${ALNUM}+`;
const THING = String.raw`${THINGPART}(?:${HYPHEN}${THINGPART})*`;
const THING3 = String.raw`[\p{L}\p{Nd}]+(?:-\p{L}+){0,2}(?:\\?\/[\p{L}\p{Nd}]+(?:-\p{L}+){0,2}){1,2}`;
const FULLURL = String.raw`https?:\/\/[^ \t\n\f\r"<>|()]+[^ \t\n\f\r"<>|.!?(){},-]`;
const LIKELYURL = String.raw`(?:(?:www\.(?:[^ \t\n\f\r"<>|.!?(){},]+\.)+[a-zA-Z]{2,4})|(?:(?:[^ \t\n\f\r"\u0060'<>|.!?(){},\-_$]+\.)+(?:com|net|org|edu)))(?:\/[^ \t\n\f\r"<>|()]+[^ \t\n\f\r"<>|.!?(){},-])?`;
const EMAIL = String.raw`[a-zA-Z0-9][^ \t\n\f\r"<>|()\u00A0{}]*@(?:[^ \t\n\f\r"<>|(){}.\u00A0]+\.)*(?:[^ \t\n\f\r"<>|(){}\[\].,;:\u00A0]+)`;
const TWITTER = String.raw`@[a-zA-Z_][a-zA-Z_0-9]*|#${WORD}`;
const NUM = String.raw`${DIGIT}*(?:[.:,\u00AD\u066B\u066C]${DIGIT}+)+|${DIGIT}+`; // longest alternative first (JFlex is longest-match)
const FRAC = String.raw`(?:${DIGIT}{1,4}[- \u00A0])?${DIGIT}{1,4}(?:\\?\/|\u2044)${DIGIT}{1,4}`;
const ABMONTH = "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec";
const ABDAYS = "Mon|Tue|Tues|Wed|Thu|Thurs|Fri";
const ABSTATE = "Ala|Ariz|[A]z|[A]rk|Calif|Colo|Conn|Ct|Dak|[D]el|Fla|Ga|[I]ll|Ind|Kans?|Ky|[L][a]|[M]ass|Md|Mich|Minn|[M]iss|Mo|Mont|Neb|Nev|Okla|[O]re|[P]a|Penn|Tenn|[T]ex|Va|Vt|[W]ash|Wisc?|Wyo";
const ABCOMP = "Inc|Cos?|Corp|Pp?t[ye]s?|Ltd|Plc|Rt|Bancorp|Dept|Bhd|Assn|Univ|Intl|Sys";
const ABNUM = "tel|est|ext|sq";
const ABPTIT = String.raw`Jr|Sr|Bros|(?:Ed|Ph)\.D|Esq`;
const ABBREV1 = ci(String.raw`(?:${ABMONTH}|${ABDAYS}|${ABSTATE}|${ABCOMP}|${ABNUM}|${ABPTIT}|etc|al|seq)\.`);
const ACRO = String.raw`(?:Canada|Sino|Korean|EU|Japan|non)-U\.S|U\.S\.-(?:U\.K|U\.S\.S\.R)|[A-Za-z](?:\.[A-Za-z])*`;
const ABTITLE = "Mr|Mrs|Ms|[M]iss|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt|Cpl|Pvt|Mt|Capt|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det|Ft";
const ABCOMP2 = "Invt|Elec|Natl|M[ft]g";
const ABBREV2 = ci(String.raw`(?:${ABTITLE}|${ACRO}|${ABCOMP2})\.`);
const ABBREV4 = ci(String.raw`[A-Za-z]|${ABTITLE}|vs|Alex|Wm|Jos|Cie|a\.k\.a|cf|TREAS|${ACRO}|${ABCOMP2}`);
const ABBREV3 = ci(String.raw`(?:ca|figs?|prop|nos?|art|bldg|pp|op)\.`);
const SMILEY = String.raw`[<>]?[:;=][\-o*']?[()DPdpO\\{@|\[\]]`;
const MISCSYMBOL = String.raw`[+%&~^|\\¦\u00A7¨\u00A9\u00AC\u00AE¯\u00B0-\u00B3\u00B4-\u00BA\u00D7\u00F7\u0387\u05BE\u05C0\u05C3\u05C6\u05F3\u05F4\u0600-\u0603\u0606-\u060A\u060C\u0614\u061B\u061E\u066A\u066D\u0703-\u070D\u07F6\u07F7\u07F8\u0964\u0965\u0E4F\u1FBD\u2016\u2017\u2020-\u2023\u2030-\u2038\u203B\u203E-\u2042\u2044\u207A-\u207F\u208A-\u208E\u2100-\u214F\u2190-\u21FF\u2200-\u2BFF\u3012\u30FB\uFF01-\uFF0F\uFF1A-\uFF20\uFF3B-\uFF40\uFF5B-\uFF65]`;
const QUOTES = String.raw`''|[\u0060\u2018\u2019\u201A\u201B\u201C\u201D\u0082\u0084\u008B\u0091-\u0094\u009B\u201E\u201F\u2039\u203A\u00AB\u00BB]{1,2}|${APOSETC}`;
const DBLQUOT = String.raw`"|&quot;`;

// ---- normalisations (LexerUtils / PTBLexer helpers, PTB3 options) ----
function latexQuotes(s: string, probablyLeft: boolean): string {
  let t = probablyLeft ? s.replace(/&apos;|'/g, "`").replace(/"|&quot;/g, "``") : s.replace(/&apos;|'/g, "'").replace(/"|&quot;/g, "''");
  t = t.replace(/[\u0091\u2018]'|[\u0084\u0093\u201C\u201E\u00AB]/g, "``").replace(/[\u0092\u2019]'|[\u0094\u201D\u00BB]/g, "''");
  return t.replace(/[\u0082\u008B\u0091\u2018\u201A\u201B\u2039]/g, "`").replace(/[\u0092\u009B\u00B4\u2019\u203A]/g, "'");
}
const noSoft = (s: string): string => s.replace(/\u00AD/g, "");
const FRACTIONS: Record<string, string> = { "\u00BC": "1/4", "\u00BD": "1/2", "\u00BE": "3/4", "\u2153": "1/3", "\u2154": "2/3" };
function currency(s: string): string {
  return s.replace(/\u00A2/g, "cents").replace(/\u00A3/g, "#").replace(/[\u0080\u00A4\u20A0\u20AC]/g, "$");
}
const BRACKETS: Record<string, string> = { "(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-" };

/** What a rule does with its text: the token to emit (null = nothing), and how many chars to give back. */
type Action = (text: string) => string | null | [string, number];
interface Rule { re: RegExp; action: Action }
const same: Action = (t) => t;
const skip: Action = () => null;

function rule(main: string, action: Action, context?: string): Rule {
  return { re: new RegExp(`(?:${main})${context ? `(?=(${context}))` : ""}`, "uy"), action };
}

/** The rules in PTBLexer.flex order (JFlex breaks equal-length ties by order). */
const RULES: Rule[] = [
  rule(SGML, same),
  rule(ci(String.raw`&(?:MD|mdash|ndash);`) + String.raw`|[\u0096\u0097\u2013\u2014\u2015]`, () => "--"),
  rule(ci("&amp;"), () => "&"),
  rule(ci(String.raw`&(?:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);`), same),
  rule(ci(String.raw`cannot|'twas|dunno`), (t) => [t.slice(0, -3), 3]),
  rule(ci(String.raw`'tis|gonna|gotta|lemme|gimme|wanna`), (t) => [t.slice(0, -2), 2], String.raw`[^\p{L}]|$`),
  rule(WORD, (t) => noSoft(t), ci(REDAUX)),
  rule(SWORD, (t) => noSoft(t), ci(SREDAUX)),
  rule(WORD, (t) => noSoft(t)),
  rule(ci(APOWORD), (t) => latexQuotes(t, false)),
  rule(ci("y") + APOS, same, String.raw`\p{L}`),
  rule(ci(FULLURL), same),
  rule(ci(LIKELYURL), same),
  rule(EMAIL, same),
  rule(TWITTER, same),
  rule(ci(REDAUX), (t) => latexQuotes(t, false), String.raw`[^A-Za-z]`),
  rule(ci(SREDAUX), (t) => latexQuotes(t, false), String.raw`[^A-Za-z]`),
  rule(String.raw`${DIGIT}{1,2}[\-\/]${DIGIT}{1,2}[\-\/]${DIGIT}{2,4}`, same),
  rule(String.raw`[\-+]?(?:${NUM})`, same),
  rule(String.raw`[\u207A\u207B\u208A\u208B]?(?:[\u2070\u00B9\u00B2\u00B3\u2074-\u2079]+|[\u2080-\u2089]+)`, same),
  rule(FRAC, (t) => t.replace(/ /g, "\u00A0")),
  rule(String.raw`[\u00BC\u00BD\u00BE\u2153\u2154]`, (t) => FRACTIONS[t] ?? t),
  rule(ci(String.raw`-(?:RRB|LRB|RCB|LCB|RSB|LSB)-|C\.D\.s|pro-|anti-|S(?:&|&amp;)P-500|S(?:&|&amp;)Ls|Cap${APOS}n`), (t) => t.replace(/&amp;/gi, "&")),
  rule(THING3, same),
  rule(ci(String.raw`[A-Z]*\$|#`), same),
  rule(String.raw`[\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0\uFFE1\uFFE5\uFFE6]`, currency),
  rule(ABBREV1, (t) => [t, 1], String.raw`${SPACENL}(?:${SPACENL}|\p{Lu}|${SGML})`),
  rule(ABBREV1, same, String.raw`[^]{2}`),
  rule(ABBREV1, (t) => [t, 1]),
  rule(ABBREV2, same),
  rule(ABBREV4, same, SPACE),
  rule(ci(ACRO), same, SPACENL),
  rule(ABBREV3, same, String.raw`${SPACENL}?${DIGIT}`),
  rule(String.raw`${WORD}\.`, (t) => noSoft(t), String.raw`[,;:\u3001]`),
  rule(DBLQUOT, (t) => latexQuotes(t, true), String.raw`[A-Za-z0-9$]`),
  rule(SMILEY, (t) => t.replace(/\(/g, "-LRB-").replace(/\)/g, "-RRB-"), String.raw`[^\p{L}\p{Nd}]`),
  rule(ci(String.raw`<|&lt;`), () => "<"),
  rule(ci(String.raw`>|&gt;`), () => ">"),
  rule(String.raw`[()[\]{}]`, (t) => BRACKETS[t] ?? t),
  rule(String.raw`-+`, (t) => (t.length >= 3 && t.length <= 4 ? "--" : t)),
  rule(String.raw`\.\.\.+|[\u0085\u2026]`, () => "..."),
  rule(String.raw`\.[ \u00A0](?:\.[ \u00A0])+\.`, () => "..."),
  rule(String.raw`@+|#+|_+`, same),
  rule(String.raw`\*+|(?:\\\*){1,3}`, same),
  rule(String.raw`[,;:\u3001]`, same),
  rule(String.raw`[?!]+`, same),
  rule(String.raw`[.¡¿\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA\u3002]`, same),
  rule("=", same),
  rule(String.raw`\/`, same),
  rule(THING, (t) => noSoft(t)),
  rule(DBLQUOT, (t) => latexQuotes(t, false)),
  rule(QUOTES, (t) => latexQuotes(t, false)),
  rule(String.raw`<<|>>`, same),
  rule(MISCSYMBOL, same),
  rule(String.raw`\0|${SPACE}+|[\u200B\u200E\u200F\uFEFF]`, skip),
];

/** Plain letters: one WORD token when followed by a space/line end, by , ; ? ! (no "@" later in the chunk: EMAIL), or by
 *  a sentence-final "." when word + "." is no abbreviation. Otherwise the full rule set decides. */
const ASSIMILATION = /^(?:cannot|dunno|gonna|gotta|lemme|gimme|wanna)$/i; // (for words of length 5-6 only)
const ABBREV_ANY = new RegExp(`^(?:${ABBREV1}|${ABBREV2}|${ABBREV3})$`, "u");
const CHUNK_END = /[ \n]|$/g;

function fastWord(text: string, i: number): string | null {
  let j = i;
  for (let c = text.charCodeAt(j); (c >= 97 && c <= 122) || (c >= 65 && c <= 90); c = text.charCodeAt(++j));
  if (j === i) return null;
  const w = text.slice(i, j);
  const c = text[j];
  if (c === undefined || c === " " || c === "\n") return (w.length >= 5 && w.length <= 6 && ASSIMILATION.test(w)) ? null : w;
  if (c === "," || c === ";" || c === "?" || c === "!") {
    CHUNK_END.lastIndex = j;
    CHUNK_END.exec(text);
    return text.slice(j, CHUNK_END.lastIndex).includes("@") || (w.length >= 5 && w.length <= 6 && ASSIMILATION.test(w)) ? null : w;
  }
  if (c === ".") {
    const d = text[j + 1];
    if ((d === undefined || d === " " || d === "\n") && w.length > 1 && !(w.length >= 5 && w.length <= 6 && ASSIMILATION.test(w)) && !ABBREV_ANY.test(`${w}.`)) return w;
  }
  return null;
}

/** A lone , ; or . that no longer rule can extend (",5" and ".5" are numbers, ". . ." an ellipsis). */
function fastPunct(text: string, i: number): string | null {
  const c = text[i];
  if (c !== "," && c !== ";" && c !== ".") return null;
  const d = text[i + 1];
  if (d === undefined || d === "\n") return c;
  if (d === " ") return c !== "." || text[i + 2] !== "." ? c : null;
  return null;
}

/** Java PTBTokenizer output lines (before the punctuation filter), one per input caption. */
export function ptbLexLines(captions: readonly string[]): string[] {
  // As pycocoevalcap: newlines inside a caption become spaces, captions joined by "\n". Other
  // line separators (which would make Java emit extra lines) are treated as spaces too.
  const text = captions.map((c) => c.replace(/[\n\r\u2028\u2029\u000B\u000C]/g, " ")).join("\n");
  const lines: string[] = [];
  let line: string[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (ch === 32 || ch === 9) { i++; continue; } // no rule but SPACE starts with a space
    if (ch === 10) { lines.push(line.join(" ").toLowerCase()); line = []; i++; continue; }
    const fast = fastWord(text, i) ?? fastPunct(text, i);
    if (fast !== null) { line.push(fast); i += fast.length; continue; }
    let best: Rule | undefined;
    let bestText = "";
    let bestLen = 0;
    for (const r of RULES) {
      r.re.lastIndex = i;
      const m = r.re.exec(text);
      if (!m || m[0].length === 0) continue;
      const len = m[0].length + (m[1]?.length ?? 0);
      if (len > bestLen) { best = r; bestText = m[0]; bestLen = len; }
    }
    if (!best) { i += (text.codePointAt(i) ?? 0) > 0xffff ? 2 : 1; continue; } // untokenizable: deleted (firstDelete)
    const out = best.action(bestText);
    if (Array.isArray(out)) {
      const [tok, back] = out;
      if (tok.length > 0) line.push(tok);
      i += bestText.length - back;
      if (tok.length === 0) continue;
    } else {
      if (out !== null) line.push(out);
      i += bestText.length;
    }
  }
  lines.push(line.join(" ").toLowerCase()); // -lowerCase: Java lower-cases each token
  return lines;
}

/** Drop pycocoevalcap's punctuation tokens from a Java output line. */
export function dropPunctuation(ptbLine: string): string {
  return ptbLine.split(" ").filter((t) => !DROP.has(t)).join(" ");
}

/** pycocoevalcap PTBTokenizer.tokenize on a list of captions: lower-cased, space-joined tokens. */
export function ptbTokenize(captions: readonly string[]): string[] {
  return ptbLexLines(captions).map(dropPunctuation);
}
