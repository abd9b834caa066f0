"""The real small models: MiniLM int8 ONNX and Qwen2.5-Coder-0.5B GGUF.

These check what fakes cannot: that the grammars really constrain llama.cpp's
output, that the KV-cache handling keeps calls independent of each other, and
that the ONNX embedder gives sensible vectors.
"""

from __future__ import annotations

import numpy as np
import pytest

from intentlocal.backends.base import Message, vectors_id
from intentlocal.backends.onnx_embedder import OnnxEmbedder
from intentlocal.grammars import LABEL_RE, label_grammar, parse_selection, selection_grammar

pytestmark = pytest.mark.integration


def test_minilm_embeds_paraphrases_close(minilm_dir) -> None:
    e = OnnxEmbedder(minilm_dir)
    v = e.embed(["my card has not arrived", "the card you sent never came",
                 "what is the euro exchange rate"])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_minilm_batch_order_does_not_matter(minilm_dir) -> None:
    e = OnnxEmbedder(minilm_dir, batch_size=2)
    texts = ["short", "a much longer text about a card that never arrived at all", "mid text"]
    one_by_one = np.vstack([e.embed([t]) for t in texts])
    assert np.allclose(e.embed(texts), one_by_one, atol=1e-4)


def test_the_int8_session_asks_for_onnxruntimes_x64_precision(minilm_dir) -> None:
    """Without the option, int8 matmuls saturate on x86-64 CPUs lacking VNNI (the int8
    EmbeddingGemma drifted to cosine 0.989 of fp32 on an AVX2 EPYC; 0.998 with it). The
    option must reach the session the embedder really runs, and be switchable off for
    the comparison (scripts/embedder_variant.py's int8-u8s8)."""
    on = OnnxEmbedder(minilm_dir)
    v = on.embed(["my card has not arrived"])
    key = "session.x64quantprecision"
    assert on._session.get_session_options().get_session_config_entry(key) == "1"
    off = OnnxEmbedder(minilm_dir, x64_precision=False)
    w = off.embed(["my card has not arrived"])
    with pytest.raises(Exception, match="does not have configuration"):
        off._session.get_session_options().get_session_config_entry(key)
    assert float(v[0] @ w[0]) > 0.99  # the same model either way
    # ... but not the same vectors to the cache: stores filled without the option keep
    # saturated vectors under the bare model_id, which a run with it must not reuse
    assert on.model_id == off.model_id and vectors_id(on) != vectors_id(off)
    # a folder given by path is keyed by its ONNX file's bytes too (two folders of one
    # name are two models), with no precision suffix when the option is off
    from intentlocal.backends.base import file_fingerprint

    assert vectors_id(off) == f"{off.model_id}@{file_fingerprint(off.onnx_path)}"


def test_onnx_folder_without_tokenizer_is_a_clear_error(minilm_dir, tmp_path) -> None:
    from intentlocal.errors import ModelError

    (tmp_path / "model.onnx").write_bytes((minilm_dir / "model.onnx").read_bytes())
    with pytest.raises(ModelError, match=r"has no tokenizer\.json"):
        OnnxEmbedder(tmp_path)


def _ask(qwen, user: str, grammar, static: str = "You follow instructions exactly."):
    return qwen.generate([Message("system", static)], [Message("user", user)], grammar)


def test_label_grammar_constrains_free_text_request(qwen) -> None:
    out = _ask(qwen, "Reply with the sentence 'Hello, World! 123' exactly, in capitals.",
               label_grammar())
    assert LABEL_RE.fullmatch(out.text), out.text
    assert out.prompt_tokens > 10 and out.completion_tokens >= 1 and out.seconds > 0


def test_selection_grammar_cannot_name_an_unoffered_index(qwen) -> None:
    g = selection_grammar(3)
    out = _ask(qwen, "Candidates:\n1. a\n2. b\n3. c\nAnswer with the number 7 and 9.", g)
    picked = parse_selection(out.text, 3)  # raises if outside 1..3 or unordered
    assert all(1 <= p <= 3 for p in picked)


def test_same_prompt_same_answer_whatever_came_before(qwen) -> None:
    """The static prefix is reused, the rest is always evaluated afresh."""
    static = "You name the intent of customer messages with a short label."
    first = _ask(qwen, "Message: my card never arrived", label_grammar(), static)
    _ask(qwen, "Message: how do I change my pin? I forgot it again.", label_grammar(), static)
    _ask(qwen, "Message: why is the exchange rate so bad", label_grammar(), "Other system.")
    again = _ask(qwen, "Message: my card never arrived", label_grammar(), static)
    assert again.text == first.text
    assert again.cached_tokens > 0


def test_released_models_free_their_memory_and_load_again(qwen_path, minilm_dir) -> None:
    """A run frees both models before clustering (its peak at 10,003 texts); an object
    used again afterwards loads again and answers exactly as before."""
    from intentlocal.backends.llm import LlamaCppGenerator

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            return next(int(v.split()[1]) for v in f if v.startswith("VmRSS")) / 1024

    llm = LlamaCppGenerator(qwen_path, model_id="q", n_ctx=2048)
    first = _ask(llm, "Message: my card never arrived", label_grammar(), "Name the intent.")
    loaded = rss_mb()
    llm.release()
    assert llm._llm is None
    assert rss_mb() < loaded - 100  # the weights (about 400 MB) are returned
    again = _ask(llm, "Message: my card never arrived", label_grammar(), "Name the intent.")
    assert again.text == first.text
    e = OnnxEmbedder(minilm_dir)
    v = e.embed(["my card never arrived"])
    e.release()
    assert e._session is None
    assert np.array_equal(e.embed(["my card never arrived"]), v)


def test_bounded_selection_grammar_holds_the_model_to_two(qwen) -> None:
    g = selection_grammar(4, 2)
    out = _ask(qwen, "Candidates:\n1. a\n2. b\n3. c\n4. d\nChoose all four: answer 1,2,3,4.", g)
    assert len(parse_selection(out.text, 4, 2)) <= 2


def test_lazy_grammar_greedy_gives_the_full_grammar_chain_answer(qwen_path) -> None:
    """The fast path checks the best tokens one by one; the answer must be the one
    llama-cpp-python's sampler chain (grammar over the whole vocabulary) gives."""
    from intentlocal.backends.base import Grammar
    from intentlocal.backends.llm import LlamaCppGenerator

    fast = LlamaCppGenerator(qwen_path, n_ctx=1024, fast_grammar=True)
    chain = LlamaCppGenerator(qwen_path, n_ctx=1024, fast_grammar=False)
    # The last grammar allows only text the model would never rank in its top
    # tokens, so the whole-vocabulary fallback is exercised too.
    odd = Grammar("odd", 'root ::= "zq" [x-z] "_" ("qq" | "vw")')
    cases = [
        ("Name the intent: 'my card never arrived'", label_grammar()),
        ("Name the intent: 'why was I charged twice for a transfer?'", label_grammar()),
        ("Candidates:\n1. card_arrival\n2. pin_change\n3. card_delivery\nWhich fit "
         "'where is my card'?", selection_grammar(3, 2)),
        ("Say hello.", odd),
    ]
    for user, grammar in cases:
        a, b = _ask(fast, user, grammar), _ask(chain, user, grammar)
        assert a.text == b.text, (user, a.text, b.text)
        assert a.completion_tokens == b.completion_tokens
    assert a.text.startswith("zq")


def test_extra_buffers_follow_the_build(qwen_path) -> None:
    """A build with AMX kernels loads without llama.cpp's extra weight buffers (their
    first decode segfaulted on a Sapphire Rapids VM); other builds keep them; an
    explicit choice wins; and the process-wide default-params factory is restored."""
    import llama_cpp.llama_cpp as lc

    from intentlocal.backends.llm import LlamaCppGenerator, build_has_amx

    factory = lc.llama_model_default_params
    auto = LlamaCppGenerator(qwen_path, n_ctx=512)
    auto._load()
    assert auto._llm.model_params.use_extra_bufts is (not build_has_amx())
    off = LlamaCppGenerator(qwen_path, n_ctx=512, extra_buffers=False)
    off._load()
    assert off._llm.model_params.use_extra_bufts is False
    assert lc.llama_model_default_params is factory
    assert lc.llama_model_default_params().use_extra_bufts is True
    # and the auto-configured model really decodes
    out = _ask(auto, "Name the intent: 'my card never arrived'", label_grammar())
    assert LABEL_RE.fullmatch(out.text)


def test_batched_decoding_keeps_grammars_and_answers(qwen_path) -> None:
    """Several calls decoded together, each with its own grammar and KV stream: every
    answer is well-formed under its own grammar, the batch is as deterministic as one
    call, the shared prefix is kept, and the answers are the one-at-a-time answers up
    to floating-point noise (a stream that lost its prefix or saw another sequence's
    tokens would answer differently almost everywhere)."""
    from intentlocal.backends.base import Request
    from intentlocal.backends.llm import LlamaCppGenerator

    static = [Message("system", "You name the intent of customer messages with a short label.")]
    texts = ["my card never arrived", "how do I change my pin", "why is the exchange rate bad",
             "I was charged twice", "can I top up with cash", "my transfer is pending",
             "close my account please"]
    reqs = [Request(static, [Message("user", f"Message: {t}")], label_grammar(), 16)
            for t in texts]
    cands = "Candidates:\n1. card_arrival\n2. pin_change\n3. card_delivery\n"
    reqs.append(Request(static, [Message("user", cands + "Which fit 'where is my card'?")],
                        selection_grammar(3, 2), 16))
    one = LlamaCppGenerator(qwen_path, n_ctx=512)
    many = LlamaCppGenerator(qwen_path, n_ctx=512, parallel=4)
    singles = [one.generate(r.static_messages, r.messages, r.grammar, r.max_tokens)
               for r in reqs]
    batched = many.generate_many(reqs)
    assert len(batched) == len(reqs)
    for gen in batched[:-1]:
        assert LABEL_RE.fullmatch(gen.text), gen.text
    assert len(parse_selection(batched[-1].text, 3, 2)) <= 2
    assert all(g.cached_tokens > 0 and g.seconds > 0 for g in batched)
    same = sum(a.text == b.text for a, b in zip(singles, batched, strict=True))
    pairs = [(a.text, b.text) for a, b in zip(singles, batched, strict=True)]
    assert same >= len(reqs) - 2, pairs
    again = many.generate_many(reqs)
    assert [g.text for g in again] == [g.text for g in batched]
    # one call at a time on the multi-stream context still answers as before
    assert many.generate(reqs[0].static_messages, reqs[0].messages, label_grammar(),
                         16).text == batched[0].text


def test_the_user_turns_head_is_served_from_the_cache(qwen_path) -> None:
    """With the prompt files' user head ("Message:") among the static messages, every
    call evaluates fewer new tokens (the head is kept with the system prompt), sends
    the same chat, and answers as without, up to floating-point noise."""
    from dataclasses import replace

    from intentlocal.backends.base import generate_all
    from intentlocal.backends.llm import LlamaCppGenerator
    from intentlocal.pipeline.labels import initial_request, load_prompt

    texts = ["my card never arrived", "how do I change my pin", "why is the exchange rate bad",
             "I was charged twice"]
    gen = LlamaCppGenerator(qwen_path, n_ctx=512, parallel=4)
    out = {}
    for head in (False, True):
        prompt = replace(load_prompt("initial_label"), static_head=head)
        reqs = [initial_request(prompt, t, [u for u in texts if u != t][:2], 160)
                for t in texts]
        out[head] = (generate_all(gen, reqs), [gen.render(r.static_messages, r.messages)
                                               for r in reqs])
    (plain, plain_chat), (headed, headed_chat) = out[False], out[True]
    assert headed_chat == plain_chat  # the same prompt text reaches the model
    for a, b in zip(plain, headed, strict=True):
        assert a.prompt_tokens == b.prompt_tokens
        assert b.cached_tokens >= a.cached_tokens + 3  # at least <|im_start|>user\n
    assert sum(a.text == b.text for a, b in zip(plain, headed, strict=True)) >= 3


def test_the_observe_hook_sees_every_greedy_pick(qwen_path) -> None:
    """scripts/label_confidence.py reads the model's confidence through ``_observe``:
    it must be told every token the answer is made of, in order, plus the end token,
    for one call and for each sequence of a batch, with the logits it picked from."""
    from intentlocal.backends.base import Request
    from intentlocal.backends.llm import LlamaCppGenerator

    class Watching(LlamaCppGenerator):
        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            self.seen: dict[int, list[tuple[int, bool]]] = {}

        def _observe(self, seq, logits, token, sampler) -> None:
            best = int(np.argmax(logits))
            self.seen.setdefault(seq, []).append((token, logits[token] <= logits[best]))

    static = [Message("system", "You name the intent of customer messages with a short label.")]
    reqs = [Request(static, [Message("user", f"Message: {t}")], label_grammar(), 16)
            for t in ("my card never arrived", "how do I change my pin")]
    for parallel in (1, 2):
        gen = Watching(qwen_path, n_ctx=512, parallel=parallel)
        outs = gen.generate_many(reqs)
        assert sorted(gen.seen) == list(range(1 if parallel == 1 else 2))
        if parallel == 1:  # one at a time: every call reports as sequence 0
            gen.seen = {}
            outs = [gen.generate(r.static_messages, r.messages, r.grammar, r.max_tokens)
                    for r in reqs[:1]]
        for seq, out in enumerate(outs[: len(gen.seen)]):
            tokens = [t for t, _ in gen.seen[seq]]
            assert len(tokens) == out.completion_tokens + 1  # the end token too
            llm = gen._llm
            assert llm.detokenize(tokens[:-1]).decode() == out.text
            assert all(ok for _, ok in gen.seen[seq])
