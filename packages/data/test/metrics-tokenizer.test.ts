// PTB tokenizer rules (CoreNLP 3.4.1 PTBLexer as pycocoevalcap runs it): a table of specific
// rules, and properties that hold for any input of a kind.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ptbLexLines, ptbTokenize } from "../src/metrics/ptb-tokenizer.js";

const lex1 = (s: string): string => ptbLexLines([s])[0]!;

describe("PTB rules", () => {
  it.each([
    ["The man's dog.", "the man 's dog ."],
    ["They won't go", "they wo n't go"],
    ["I cannot wait", "i can not wait"],
    ["we're gonna win", "we 're gon na win"],
    ["I'd've done", "i 'd 've done"],
    ["at the very end: don't", "at the very end : do n ' t"], // trailing contexts need a character: none at end of input, as JFlex
    ["the '90s", "the '90s"],
    ["y'all", "y' all"],
    ["Dr. Who and Mrs. Smith", "dr. who and mrs. smith"],
    ["made by Acme Inc. today", "made by acme inc. today"],
    ["e.g. this", "e.g. this"],
    ["a b. c", "a b. c"],
    ["co-op and x-ray", "co-op and x-ray"],
    ["1,000.5 and -3", "1,000.5 and -3"],
    ["12/25/2012", "12/25/2012"],
    ["5 1/2 inches", "5\u00A01/2 inches"],
    ["¢5 and €3", "cents 5 and $ 3"],
    ["US$5", "us$ 5"],
    ["he said \"hi\" 'ok'", "he said `` hi '' ' ok '"],
    ["“A” ‘b’", "`` a '' ` b '"],
    ["a---b", "a -- b"],
    ["wait . . . there", "wait ... there"],
    ["x &amp; y &lt; z", "x & y < z"],
    ["mail me@example.com", "mail me@example.com"],
    ["www.example.org/page", "www.example.org/page"],
    ["and/or", "and/or"],
    ["a;b:c", "a ; b : c"],
    ["really??", "really ??"],
    ["grinning 😀 face", "grinning face"],
  ])("%j → %j", (raw, ptb) => {
    expect(lex1(raw)).toBe(ptb);
  });

  it("drops only exact punctuation tokens, after lower-casing", () => {
    expect(ptbTokenize(["(A) [b] -- c, dd... e?! fg."])).toEqual(["-lrb- a -rrb- -lsb- b -rsb- c dd e ?! fg"]);
  });

  it("gives one output line per caption, empty ones included, newlines inside a caption as spaces", () => {
    expect(ptbTokenize(["a\nb", "", "   ", "cd.", "x."])).toEqual(["a b", "", "", "cd", "x."]);
  });
});

const word = fc.stringMatching(/^[a-z]{1,8}$/).filter((w) => !/^(cannot|dunno|gonna|gotta|lemme|gimme|wanna)$/.test(w));
const gap = fc.stringMatching(/^[ \t]{1,3}$/);

describe("PTB properties", () => {
  it("plain words: tokens are the words, whatever the whitespace between them", () => {
    fc.assert(fc.property(fc.array(fc.tuple(word, gap), { minLength: 1, maxLength: 8 }), fc.boolean(), (parts, cap) => {
      const raw = parts.map(([w, g]) => w + g).join("");
      const text = cap ? raw[0]!.toUpperCase() + raw.slice(1) : raw;
      expect(ptbTokenize([text])).toEqual([parts.map(([w]) => w).join(" ")]);
    }));
  });

  it("whitespace-only differences never change the tokens", () => {
    const piece = fc.constantFrom("a", "man", "'s", "dog", ",", ".", "(", ")", "don't", "St.", "\"", "--", "3.5", "?!", "U.S.", "e-mail");
    fc.assert(fc.property(fc.array(piece, { minLength: 1, maxLength: 10 }), fc.array(gap, { minLength: 10, maxLength: 10 }), (ps, gaps) => {
      const single = ps.join(" ");
      const spaced = ps.map((p, i) => (i > 0 ? gaps[i]! : "") + p).join(""); // between pieces: the end of input is a context of its own
      expect(ptbTokenize([spaced])).toEqual(ptbTokenize([single]));
    }));
  });

  it("captions are independent when none ends in an abbreviation-like token", () => {
    const cap = fc.array(word, { minLength: 1, maxLength: 6 }).map((ws) => `${ws.join(" ")} ,`);
    fc.assert(fc.property(fc.array(cap, { minLength: 1, maxLength: 5 }), (caps) => {
      expect(ptbTokenize(caps)).toEqual(caps.map((c) => ptbTokenize([c])[0]));
    }));
  });
});
