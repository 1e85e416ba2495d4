#!/usr/bin/env python3
"""Peer for bench/tokenize_bench: a faithful pure-Python re-implementation of OpenAI CLIP's
simple_tokenizer.py (bytes_to_unicode, the same regex, the same BPE loop and dict cache), with
ftfy.fix_text replaced by NFC exactly as the reference ids were made. Reads HF vocab.json + merges.txt.

usage: tokenize_peer.py VOCAB_DIR CAPTIONS.txt [--repeats N]
Prints one JSON line: {"captions": n, "seconds": t, "captions_per_s": r, "checksum": c}
"""
import html
import json
import os
import sys
import time
import unicodedata

import regex as re  # Debian python3-regex (\p{L} support), as OpenAI's code uses


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(n) for n in cs]))


def get_pairs(word):
    pairs = set()
    prev_char = word[0]
    for char in word[1:]:
        pairs.add((prev_char, char))
        prev_char = char
    return pairs


def basic_clean(text):
    text = unicodedata.normalize("NFC", text)  # stands in for ftfy.fix_text, as in the references
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text):
    text = re.sub(r"\s+", " ", text)
    return text.strip()


class SimpleTokenizer:
    def __init__(self, vocab_dir):
        self.byte_encoder = bytes_to_unicode()
        with open(os.path.join(vocab_dir, "vocab.json"), encoding="utf-8") as f:
            self.encoder = json.load(f)
        with open(os.path.join(vocab_dir, "merges.txt"), encoding="utf-8") as f:
            merges = [tuple(m.split()) for m in f.read().split("\n")[1:] if m]
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.pat = re.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            re.IGNORECASE,
        )
        self.sot = self.encoder["<|startoftext|>"]
        self.eot = self.encoder["<|endoftext|>"]

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = get_pairs(word)
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        word = " ".join(word)
        self.cache[token] = word
        return word

    def encode(self, text):
        bpe_tokens = []
        text = whitespace_clean(basic_clean(text)).lower()
        for token in re.findall(self.pat, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            bpe_tokens.extend(self.encoder[bpe_token] for bpe_token in self.bpe(token).split(" "))
        return [self.sot] + bpe_tokens + [self.eot]


def checksum(all_ids):
    c = 0
    for ids in all_ids:
        for k, i in enumerate(ids):
            c = (c * 1000003 + i * (k + 1)) % (2**61 - 1)
    return c


def main():
    vocab_dir, captions_path = sys.argv[1], sys.argv[2]
    repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 3
    tok = SimpleTokenizer(vocab_dir)
    with open(captions_path, encoding="utf-8") as f:
        captions = f.read().split("\n")
    if captions and captions[-1] == "":
        captions.pop()
    out = [tok.encode(c) for c in captions]  # warm the cache (not timed), as clipkit's side is
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = [tok.encode(c) for c in captions]
        times.append(time.perf_counter() - t0)
    t = sorted(times)[len(times) // 2]
    print(json.dumps({"captions": len(captions), "seconds": t, "captions_per_s": len(captions) / t,
                      "checksum": checksum(out)}))


if __name__ == "__main__":
    main()
