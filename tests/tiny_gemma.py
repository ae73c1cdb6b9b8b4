"""Build a tiny, random, offline stand-in for a local gemma-2b folder.

Usage:
    python tools/make_tiny_gemma.py OUT_DIR [--vocab-size N] [--seed S]

    # from Python (tests):
    from make_tiny_gemma import build_tiny_gemma          # with tools/ on sys.path
    from tiny_gemma import build_tiny_gemma    # from the repository root
    folder = build_tiny_gemma(tmp_path / "tiny-gemma", vocab_size=1024, seed=0)

OUT_DIR then loads exactly like a real gemma-2b folder, with no network:
    AutoTokenizer.from_pretrained(OUT_DIR, local_files_only=True)
    AutoModelForCausalLM.from_pretrained(OUT_DIR, local_files_only=True)

What is written:
    tokenizer.model          SentencePiece BPE trained here on a generated English corpus,
                             with Gemma's conventions (ids pad 0, eos 1, bos 2, unk 3, <mask> 4,
                             no dummy prefix, digits split, byte fallback, "\\n" kept as a token)
    tokenizer_config.json    written by hand, shaped like gemma-2b's (adds BOS, not EOS)
    special_tokens_map.json
    config.json              GemmaConfig: hidden 64, 2 layers, 4 heads, 1 kv head, head_dim 16
    model.safetensors        random weights, embedding re-initialised with std 0.1

The folder is meant to be built by the same package stack that loads it (build it at test
time, never commit it): no tokenizer.json is written, so each stack converts tokenizer.model
itself (transformers 4.38 needs `protobuf` for that).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import List

DEFAULT_VOCAB_SIZE = 1024
DEFAULT_SEED = 0

# Gemma's fixed special tokens and ids. `<mask>` must exist at id 4: transformers 5.x's
# GemmaTokenizer declares a mask token and would append a new one (vocab + 1) if it were missing.
PAD, EOS, BOS, UNK, MASK = "<pad>", "<eos>", "<bos>", "<unk>", "<mask>"

# Small model, shaped like gemma-2b (multi-query attention, gelu, tied embeddings).
TINY_CONFIG = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=1,
    head_dim=16,
    intermediate_size=128,
    max_position_embeddings=512,
    hidden_act="gelu",
    tie_word_embeddings=True,
    pad_token_id=0,
    eos_token_id=1,
    bos_token_id=2,
    # A random model is not a pretrained one: with the default std 0.02 its attention and MLP
    # layers add almost nothing to the residual stream, so what the input says never reaches the
    # answer position and LoRA alone cannot learn (measured: stuck at the majority label).
    initializer_range=0.1,
)
# With the default std 0.02 the frozen, tied output layer is too weak for LoRA alone to move
# the logits and training stalls; std 0.1 makes it strong enough.
EMBEDDING_STD = 0.1
# Gemma's final RMSNorm scales by (1 + weight). Starting the weight at 3 (scale 4) lets the frozen
# output layer express a confident answer; at scale 1 even a perfectly aligned hidden state
# leaves the loss above 1. With these three settings LoRA learns the synthetic tasks to 100 %
# held-out accuracy in 50-75 steps (batch 16, lr 1e-2; CoLA and QQP, exam stack).
FINAL_NORM_WEIGHT = 3.0

# Overrides for train.py under which the tiny Gemma learns the synthetic data (tools/make_synthetic_data.py):
# used by the demo and the tests.
TINY_TRAINING = ["--learning_rate", "1e-2", "--batch_size", "16", "--grad_accum", "1", "--max_steps", "150",
                 "--lora_r", "8", "--lora_alpha", "16", "--lora_dropout", "0", "--warmup_ratio", "0",
                 "--evals_per_epoch", "2"]


# ----------------------------------------------------------------------------------------------
# Training corpus for the tokenizer: varied English, GLUE-like prompts, digits and punctuation.
# ----------------------------------------------------------------------------------------------

NAMES = """Anna Ben Carla David Emma Frank Grace Henry Isabel John Kate Liam Maria Noah Olivia
Peter Rachel Sam Tina Victor Wendy Paris London Berlin Tokyo America Europe Monday Friday
January March""".split()
NOUNS = """man woman child friend teacher student doctor driver farmer writer player actor
singer family team company government city country village house room door window table
chair book letter story film movie song music game car bus train road street river lake sea
mountain tree flower garden dog cat bird horse fish food water bread coffee tea money job
work school class lesson question answer idea plan problem reason result way day night
morning week year time hour minute word sentence language picture phone computer paper
market shop price news report meeting party trip plot scene ending character performance
director audience review camera stage president law court police hospital island bridge
kitchen box bag ball key gift dinner breakfast lunch weather rain snow sun moon star""".split()
ADJECTIVES = """good bad new old young big small long short high low great little large
happy sad funny boring beautiful ugly easy hard simple difficult early late quick slow warm
cold hot dark bright clean dirty rich poor strong weak quiet loud safe dangerous important
strange different same full empty true false wrong right free busy tired angry kind nice
brilliant dull charming clever stupid wonderful terrible excellent awful fresh real
""".split()
ADVERBS = """gladly quickly slowly happily sadly quietly loudly carefully easily really very
never always often sometimes rarely usually already still also just almost nearly finally
suddenly certainly probably perhaps together again soon today tomorrow yesterday here there
badly well warmly kindly clearly simply""".split()
# (base form, past form)
VERBS = [
    ("see", "saw"), ("make", "made"), ("take", "took"), ("give", "gave"), ("find", "found"),
    ("tell", "told"), ("ask", "asked"), ("help", "helped"), ("like", "liked"), ("love", "loved"),
    ("hate", "hated"), ("want", "wanted"), ("need", "needed"), ("buy", "bought"),
    ("sell", "sold"), ("read", "read"), ("write", "wrote"), ("watch", "watched"),
    ("open", "opened"), ("close", "closed"), ("carry", "carried"), ("bring", "brought"),
    ("build", "built"), ("cook", "cooked"), ("clean", "cleaned"), ("visit", "visited"),
    ("follow", "followed"), ("remember", "remembered"), ("forget", "forgot"),
    ("enjoy", "enjoyed"), ("accept", "accepted"), ("answer", "answered"), ("play", "played"),
    ("meet", "met"), ("leave", "left"), ("keep", "kept"), ("change", "changed"),
    ("show", "showed"), ("call", "called"), ("teach", "taught"), ("catch", "caught"),
    ("win", "won"), ("lose", "lost"), ("move", "moved"), ("paint", "painted"), ("fix", "fixed"),
]
INTRANSITIVE = [
    ("go", "went"), ("come", "came"), ("run", "ran"), ("walk", "walked"), ("sleep", "slept"),
    ("laugh", "laughed"), ("cry", "cried"), ("smile", "smiled"), ("arrive", "arrived"),
    ("wait", "waited"), ("work", "worked"), ("sing", "sang"), ("dance", "danced"),
    ("agree", "agreed"), ("fail", "failed"), ("succeed", "succeeded"), ("stay", "stayed"),
]
PREPOSITIONS = "in on at near under behind after before with without from to for about".split()
CONNECTIVES = "and but because so although while when if".split()
LABEL_WORDS = """yes no true false positive negative entailment neutral contradiction
acceptable unacceptable equivalent same different""".split()
INSTRUCTIONS = [
    "Answer 1 if the sentence is grammatical, otherwise answer 0.",
    "Is the sentiment of the sentence positive? Answer 1 for yes and 0 for no.",
    "Do the two sentences mean the same thing? Answer with 0 or 1.",
    "Does the first sentence entail the second? Answer 1 if it does, 0 if it does not.",
    "Decide whether the question is answered by the sentence. Reply with a single digit.",
    "Classify the input. Write only the label.",
    "Answer 1 if the sentence contains the word gladly, otherwise answer 0.",
]
PUNCTUATION = list(",.;:!?-'\"()/%&*+=@$")


def _third_person(verb: str) -> str:
    """walk -> walks, watch -> watches, carry -> carries."""
    if verb.endswith(("s", "sh", "ch", "x", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _noun_phrase(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.2:
        return rng.choice(NAMES)
    noun = rng.choice(NOUNS)
    if kind < 0.35:
        return "the " + noun + "s"
    if kind < 0.55:
        return "the " + rng.choice(ADJECTIVES) + " " + noun
    return rng.choice(["the", "a", "my", "your", "his", "her", "our", "their", "this", "that"]) + " " + noun


def _sentence(rng: random.Random) -> str:
    """One plain sentence: statement, question, number fact or sentiment-style phrase."""
    subj = _noun_phrase(rng)
    verb, past = rng.choice(VERBS)
    iverb, ipast = rng.choice(INTRANSITIVE)
    obj = _noun_phrase(rng)
    adv = rng.choice(ADVERBS)
    prep = rng.choice(PREPOSITIONS) + " " + _noun_phrase(rng)
    adj = rng.choice(ADJECTIVES)
    number = str(rng.choice([rng.randint(0, 9), rng.randint(10, 99), rng.randint(100, 2030)]))
    templates = [
        f"{subj} {past} {obj} {prep}.",
        f"{subj} {_third_person(verb)} {obj} {adv}.",
        f"{subj} {adv} {ipast} {prep}.",
        f"{subj} will {iverb} {prep} {rng.choice(['today', 'tomorrow', 'soon'])}.",
        f"{subj} did not {verb} {obj}, {rng.choice(CONNECTIVES)} {_noun_phrase(rng)} {ipast}.",
        f"Did {subj} {verb} {obj}?",
        f"Does {subj} {iverb} {adv}?",
        f"Why did {subj} {verb} {obj} {prep}?",
        f"What did {subj} {verb}?",
        f"Who {past} {obj}?",
        f"Where is {obj}?",
        f"How many {rng.choice(NOUNS)}s are there {prep}?",
        f"Is {obj} {adj}?",
        f"{obj} is {rng.choice(['very', 'really', 'not', 'quite'])} {adj}!",
        f"There are {number} {rng.choice(NOUNS)}s {prep}.",
        f"In {rng.randint(1900, 2030)}, {subj} {past} {number} {rng.choice(NOUNS)}s.",
        f"It costs ${rng.randint(1, 999)}.{rng.randint(10, 99)} ({rng.randint(1, 99)}% off).",
        f"a {adj} , {rng.choice(ADJECTIVES)} {rng.choice(['film', 'movie', 'story', 'performance'])} "
        f"that {adv} {_third_person(verb)} {obj} .",
        f'"{subj.capitalize()} {ipast}," said {rng.choice(NAMES)}; {_noun_phrase(rng)} {ipast} - {adv}.',
    ]
    text = rng.choice(templates)
    return text[0].upper() + text[1:]


def _prompt(rng: random.Random) -> str:
    """A GLUE-style instruction prompt with newlines, '###' headers and a digit label."""
    label = rng.choice(["0", "1"])
    if rng.random() < 0.7:
        return (
            f"### Instruction:\n{rng.choice(INSTRUCTIONS)}\n\n### Input:\n{_sentence(rng)}\n\n"
            f"### Response:\n{label}"
        )
    return (
        f"Question: {_sentence(rng)}\nSentence 1: {_sentence(rng)}\nSentence 2: {_sentence(rng)}\n"
        f"Answer: {rng.choice(LABEL_WORDS)}\nLabel: {label}"
    )


def build_corpus(seed: int = DEFAULT_SEED, n_lines: int = 4000) -> List[str]:
    """Deterministic list of varied English lines (some multi-line) for tokenizer training."""
    rng = random.Random(seed)
    lines = []
    for i in range(n_lines):
        if i % 4 == 0:
            lines.append(_prompt(rng))
        else:
            lines.append(" ".join(_sentence(rng) for _ in range(rng.randint(1, 3))))
    # Every word, digit and punctuation mark on its own as well, so all of them are seen.
    lines.append(" ".join(NAMES + NOUNS + ADJECTIVES + ADVERBS + LABEL_WORDS))
    lines.append(" ".join(w for pair in VERBS + INTRANSITIVE for w in pair))
    lines.append(" ".join("0123456789") + " " + " ".join(PUNCTUATION) + " # ## ###")
    return lines


# ----------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------


def train_tokenizer(out_dir: Path, vocab_size: int, seed: int) -> Path:
    """Train tokenizer.model (SentencePiece BPE with Gemma's options) into out_dir."""
    import sentencepiece as spm

    corpus = build_corpus(seed)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = str(Path(tmp) / "tokenizer")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(corpus),
            model_prefix=prefix,
            model_type="bpe",
            vocab_size=vocab_size,
            # Gemma's ids; <mask> (id 4) and "\n" (id 5) are user-defined symbols, which
            # SentencePiece always keeps as single pieces (Gemma keeps "\n" as a token).
            pad_id=0, eos_id=1, bos_id=2, unk_id=3,
            pad_piece=PAD, eos_piece=EOS, bos_piece=BOS, unk_piece=UNK,
            user_defined_symbols=[MASK, "\n"],
            # Gemma's normalisation: none at all; no dummy "▁" prefix, spaces kept as they are.
            normalization_rule_name="identity",
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            allow_whitespace_only_pieces=True,
            # "0" and "1" must be single tokens without a leading space, as in Gemma.
            split_digits=True,
            # Unseen characters become <0x..> byte pieces instead of <unk> (256 ids).
            byte_fallback=True,
            character_coverage=1.0,
            max_sentence_length=100000,
            shuffle_input_sentence=False,  # deterministic for a given seed
            num_threads=1,
            minloglevel=2,  # SentencePiece is very chatty otherwise
        )
        model_file = out_dir / "tokenizer.model"
        model_file.write_bytes(Path(prefix + ".model").read_bytes())
    return model_file


def write_tokenizer_config(out_dir: Path) -> None:
    """tokenizer_config.json and special_tokens_map.json, shaped like gemma-2b's.

    Written by hand rather than by tokenizer.save_pretrained(): on transformers 5.x,
    GemmaTokenizer(vocab_file=...) silently yields a 5-token tokenizer, and files written by
    5.x do not always load on 4.38. These two files load on both stacks.
    """
    added = {}
    for token_id, token in enumerate([PAD, EOS, BOS, UNK, MASK]):
        added[str(token_id)] = {
            "content": token,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
    config = {
        "add_bos_token": True,   # Gemma needs BOS; quality collapses without it
        "add_eos_token": False,  # training code appends EOS to targets itself
        "added_tokens_decoder": added,
        "bos_token": BOS,
        "clean_up_tokenization_spaces": False,
        "eos_token": EOS,
        "legacy": None,
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": PAD,
        "sp_model_kwargs": {},
        "spaces_between_special_tokens": False,
        "tokenizer_class": "GemmaTokenizer",
        "unk_token": UNK,
        "use_default_system_prompt": False,
    }
    # padding_side is deliberately not set, as in gemma-2b: the stacks' defaults differ,
    # so callers must set it themselves.
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD, "unk_token": UNK}
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------


def write_model(out_dir: Path, vocab_size: int, seed: int) -> None:
    """Random tiny GemmaForCausalLM saved as config.json + model.safetensors."""
    import torch
    from transformers import GemmaConfig, GemmaForCausalLM

    torch.manual_seed(seed)
    config = GemmaConfig(vocab_size=vocab_size, **TINY_CONFIG)
    model = GemmaForCausalLM(config)
    with torch.no_grad():
        embedding = model.get_input_embeddings().weight  # also the (tied) output layer
        embedding.normal_(mean=0.0, std=EMBEDDING_STD)
        embedding[config.pad_token_id].zero_()  # as the default init does for padding_idx
        model.model.norm.weight.fill_(FINAL_NORM_WEIGHT)
    model.save_pretrained(str(out_dir), safe_serialization=True)

    # transformers 5.x rewrites hidden_act "gelu" to "gelu_pytorch_tanh" before saving; put
    # back what gemma-2b's config.json says so both stacks take their real-model code path.
    config_file = out_dir / "config.json"
    saved = json.loads(config_file.read_text())
    saved["hidden_act"] = TINY_CONFIG["hidden_act"]
    config_file.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")


def build_tiny_gemma(out_dir, vocab_size: int = DEFAULT_VOCAB_SIZE, seed: int = DEFAULT_SEED) -> Path:
    """Write a tiny random Gemma (tokenizer + model) into out_dir and return its absolute path."""
    out_dir = Path(out_dir).resolve()  # absolute: peft 0.10 looks relative paths up on the hub
    out_dir.mkdir(parents=True, exist_ok=True)
    train_tokenizer(out_dir, vocab_size, seed)
    write_tokenizer_config(out_dir)

    # The model's vocabulary is whatever the tokenizer ended up with (SentencePiece may stop
    # short of vocab_size when the corpus has no more merges to offer).
    import sentencepiece as spm

    n_pieces = spm.SentencePieceProcessor(model_file=str(out_dir / "tokenizer.model")).get_piece_size()
    write_model(out_dir, n_pieces, seed)
    return out_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", help="folder to write (created if missing)")
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE,
                        help=f"SentencePiece vocabulary size (default {DEFAULT_VOCAB_SIZE})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed for corpus and weights")
    args = parser.parse_args(argv)
    folder = build_tiny_gemma(args.out_dir, vocab_size=args.vocab_size, seed=args.seed)
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
