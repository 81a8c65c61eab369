#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses, tests/fuzz/corpus/NAME/, from the
project's own files (models/, tests/golden, tests/fixtures) and hand-written edge cases.

    python3 tests/fuzz/make_seeds.py STATE_FILE

STATE_FILE is a state of the default model (bin/xl-prefill "def main():" -o STATE_FILE);
it seeds the state harness. The corpora are committed, so this is only run to change them;
it replaces every file it writes and leaves other files (e.g. minimised finds) alone."""
import json, os, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


def st(tensors, meta=None, pad=True, raw_header=None):
    """A safetensors file: tensors = [(name, dtype, shape, bytes)]."""
    h, off, blob = {}, 0, b""
    if meta is not None:
        h["__metadata__"] = meta
    for name, dt, shape, data in tensors:
        h[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    js = raw_header if raw_header is not None else json.dumps(h, separators=(",", ":")).encode()
    if pad:
        js += b" " * (-len(js) % 8)
    return struct.pack("<Q", len(js)) + js + blob


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


# ---- safetensors ----
put("safetensors", "f32_2x3", st([("w", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6))], {"format": "pt"}))
put("safetensors", "dtypes", st([
    ("a.bf16", "BF16", [4], b"\x80\x3f" * 4), ("b.f16", "F16", [2], b"\x00\x3c" * 2),
    ("c.f64", "F64", [1], struct.pack("<d", 1.5)), ("d.i64", "I64", [2], struct.pack("<2q", -1, 7)),
    ("e.i32", "I32", [1], struct.pack("<i", 3)), ("f.i16", "I16", [1], b"\x01\x00"),
    ("g.i8", "I8", [3], b"\x01\xff\x02"), ("h.u8", "U8", [2], b"\x00\xff"), ("i.bool", "BOOL", [2], b"\x00\x01")]))
put("safetensors", "scalar_and_empty", st([("s", "F32", [], f32(2.0)), ("z", "F32", [0, 5], b""), ("y", "F32", [3, 0], b"")]))
put("safetensors", "empty_header", st([]))
put("safetensors", "metadata_only", st([], {"format": "xl-state-1", "model": "0642400ccd946b2e"}))
put("safetensors", "eight_dims", st([("t", "U8", [1, 1, 1, 1, 1, 1, 2, 1], b"\x01\x02")]))
put("safetensors", "nine_dims", st([("t", "U8", [1] * 9, b"\x01")]))
put("safetensors", "overlap", st([], raw_header=b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                                            b'"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}') + b"\0" * 12)
put("safetensors", "past_end", st([], raw_header=b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}') + b"\0" * 8)
put("safetensors", "hlen_huge", struct.pack("<Q", 2**63 + 5) + b"{}")
put("safetensors", "hlen_past_eof", struct.pack("<Q", 100) + b"{}")
put("safetensors", "short", b"\x02\x00\x00")
put("safetensors", "not_object", st([], raw_header=b"[1,2,3]"))
put("safetensors", "bad_offsets", st([], raw_header=b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]},'
                                                b'"b":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}') + b"\0" * 8)
put("safetensors", "float_shape", st([], raw_header=b'{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,6]}}') + b"\0" * 8)
put("safetensors", "huge_shape", st([], raw_header=b'{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'))
put("safetensors", "duplicate", st([], raw_header=b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                              b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}') + b"\0\0")
put("safetensors", "meta_not_string", st([], raw_header=b'{"__metadata__":{"k":1},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}') + b"\0")
put("safetensors", "unknown_dtype", st([], raw_header=b'{"a":{"dtype":"Q4_K","shape":[1],"data_offsets":[0,1]}}') + b"\0")
# the header of a real checkpoint (its data cut off: every offset runs past the end)
real = read("tests/golden/fixtures-v1/v1-m-only/model.safetensors")
hl = struct.unpack("<Q", real[:8])[0]
put("safetensors", "v1_header_only", real[:8 + hl])
put("safetensors", "v1_header_and_some_data", real[:8 + hl + 4096])

# ---- config.json ----
for rel, name in [("models/xlstm-tiny-pydocs/config.json", "tiny_pydocs"),
                  ("tests/golden/fixtures/m128-f32/config.json", "m128_f32"),
                  ("tests/golden/fixtures/m256-fused/config.json", "m256_fused"),
                  ("tests/golden/fixtures/m128-bias-bf16-sharded/config.json", "m128_bias"),
                  ("tests/golden/fixtures-v1/v1-m-only/config.json", "v1_m_only"),
                  ("tests/golden/fixtures-v1/v1-m-s-m-s/config.json", "v1_m_s_m_s")]:
    put("config", name, read(rel))
put("config", "minimal_7b", '{"hidden_size":64,"num_blocks":1,"num_heads":2,"vocab_size":10}')
put("config", "both_spellings_disagree", '{"hidden_size":64,"embedding_dim":32,"num_blocks":1,"num_heads":2,"vocab_size":10}')
put("config", "huge", '{"hidden_size":1048576,"num_blocks":4096,"num_heads":4096,"vocab_size":16777216,'
                      '"qk_dim_factor":64,"v_dim_factor":64,"ffn_proj_factor":64,"ffn_round_up_to_multiple_of":1048576,'
                      '"chunk_size":65536}')
put("config", "tiny_factors", '{"hidden_size":3,"num_blocks":1,"num_heads":1,"vocab_size":1,"qk_dim_factor":1e-6}')
put("config", "v1_all_slstm", '{"model_type":"xlstm_v1","xlstm":{"embedding_dim":64,"num_blocks":2,"vocab_size":50,'
                              '"slstm_at":"all","slstm_block":{"slstm":{"num_heads":4},"feedforward":{"proj_factor":1.3}}}}')
put("config", "v1_big_inner", '{"model_type":"xlstm_v1","xlstm":{"embedding_dim":1048576,"num_blocks":1,"vocab_size":1,'
                              '"mlstm_block":{"mlstm":{"num_heads":1,"proj_factor":1024,"round_proj_up_to_multiple_of":1,'
                              '"qkv_proj_blocksize":1}}}}')
put("config", "v1_bad_slstm_at", '{"model_type":"xlstm_v1","xlstm":{"embedding_dim":64,"num_blocks":2,"vocab_size":50,"slstm_at":[2]}}')
put("config", "model_type_other", '{"model_type":"llama"}')
put("config", "model_type_number", '{"model_type":7}')
put("config", "not_object", "[1]")
put("config", "truncated", '{"hidden_size": 128,')
put("config", "nulls", '{"hidden_size":64,"num_blocks":1,"num_heads":2,"vocab_size":10,"bos_token_id":null,'
                       '"weight_mode":null,"chunk_size":null,"use_bias":null}')

# ---- tokenizer.json (+ tokenizer_config.json after the separator line) ----
SEP = "\n#tokenizer_config.json\n"
full = json.loads(read("models/xlstm-tiny-pydocs/tokenizer.json"))
vocab = full["model"]["vocab"]
ids = {v: k for k, v in vocab.items()}
keep = {k for k, v in vocab.items() if v < 258}   # the specials and the byte alphabet
merges = []
for a, b in full["model"]["merges"][:120]:
    if a in keep and b in keep and a + b in vocab:
        merges.append([a, b])
        keep.add(a + b)
small = dict(full)
small["model"] = dict(full["model"], vocab={k: vocab[k] for k in sorted(keep, key=lambda k: vocab[k])}, merges=merges)
small_json = json.dumps(small, ensure_ascii=False)
put("tokenizer", "pydocs_small", small_json)
put("tokenizer", "pydocs_small_with_config", small_json + SEP + read("models/xlstm-tiny-pydocs/tokenizer_config.json").decode())
byte_chars = [ids[i] for i in range(2, 258) if i in ids]


def tok(**over):
    t = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
         "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
         "post_processor": None, "decoder": {"type": "ByteLevel"},
         "model": {"type": "BPE", "dropout": None, "unk_token": None, "vocab": {c: i for i, c in enumerate(byte_chars[:96])},
                   "merges": []}}
    t.update(over)
    return json.dumps(t, ensure_ascii=False)


v = {c: i for i, c in enumerate(byte_chars[:96])}
v.update({"he": 96, "ll": 97, "hell": 98, "hello": 99})
put("tokenizer", "merges_as_strings", tok(model={"type": "BPE", "vocab": v, "merges": ["h e", "l l", "he ll", "hell o"]}))
put("tokenizer", "added_tokens", tok(added_tokens=[
    {"id": 100, "content": "<|endoftext|>", "special": True, "normalized": False},
    {"id": 101, "content": " pad", "special": False, "lstrip": True, "rstrip": True, "single_word": True, "normalized": True},
    {"id": 5, "content": "!", "special": True},
    {"id": 102, "content": "", "special": False}],
    normalizer={"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "NFD"}]},
    post_processor={"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                                                            {"Sequence": {"id": "A", "type_id": 0}}],
                    "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [100], "tokens": ["<|endoftext|>"]}}})
    + SEP + '{"bos_token": {"content": "<|endoftext|>"}, "eos_token": "!", "add_bos_token": false}')
put("tokenizer", "roberta_no_decoder", tok(decoder=None, post_processor={"type": "RobertaProcessing", "cls": ["<s>", 3]},
                                           model={"type": "BPE", "vocab": {"a": 0, "b": 1, "<0x41>": 2, "<unk>": 3},
                                                  "merges": [], "unk_token": "<unk>", "byte_fallback": True, "fuse_unk": True}))
put("tokenizer", "sparse_ids", tok(model={"type": "BPE", "vocab": {"a": 0, "b": 70000}, "merges": []}))
put("tokenizer", "big_id", tok(model={"type": "BPE", "vocab": {"a": 2147483646}, "merges": []}))
put("tokenizer", "wordpiece", tok(model={"type": "WordPiece", "vocab": {"a": 0}}))
put("tokenizer", "bad_merge", tok(model={"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}))
put("tokenizer", "empty_vocab", tok(model={"type": "BPE", "vocab": {}, "merges": []}))
put("tokenizer", "not_json", "{\"model\": ")

# ---- text for the default tokenizer ----
golden = json.loads(read("tests/golden/tokenizer/tokenizer_golden.json"))
for i, g in enumerate(golden[:24]):
    put("tokenize", "golden_%02d" % i, g["text"])
put("tokenize", "pydocs_prompt", read("prompts/pydocs.txt")[:2048])
put("tokenize", "specials", "<|endoftext|>def<|padding|><|endoftext|")
put("tokenize", "invalid_utf8", b"abc \xff\xc3( \xe2\x82 \xf0\x9f\x98")
put("tokenize", "surrogate_overlong", b"\xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80")
put("tokenize", "nul_and_controls", b"a\x00b\x01\x7f\r\n\t\x0b\x0c")
put("tokenize", "combining", "e\u0301\u0301\u0301 \ufb01 \u212b \u1e9b\u0323 " + "\u0300" * 40)
put("tokenize", "long_word", "x" * 300 + " " + "\u00e9" * 100)
put("tokenize", "whitespace_runs", " \t \n\n   \u3000\u00a0  a  ")

# ---- state files of the default model ----
if len(sys.argv) > 1:
    state = open(sys.argv[1], "rb").read()
    put("state", "tiny_pydocs_def_main", state)
    n = struct.unpack("<Q", state[:8])[0]
    put("state", "header_only", state[:8 + n])
    h = json.loads(state[8:8 + n])
    for label, change in [("other_format", lambda m: m.update(format="xl-state-0")),
                          ("other_model", lambda m: m.update(model="0000000000000000")),
                          ("bad_tokens", lambda m: m.update(tokens="-3", last_token="x")),
                          ("no_meta", lambda m: m.clear())]:
        hh = json.loads(json.dumps(h))
        change(hh["__metadata__"])
        js = json.dumps(hh, separators=(",", ":")).encode()
        js += b" " * (-len(js) % 8)
        put("state", label, struct.pack("<Q", len(js)) + js)   # the metadata is checked first
    put("safetensors", "state_header_only", state[:8 + n])

# ---- NDJSON records ----
trials = read("tests/fixtures/run-small/trials.jsonl").splitlines(keepends=True)
put("records", "trials_3", b"".join(trials[:3]))
put("records", "outputs", '{"slug":"a","text":"def main():\\n    pass","ids":[1,2,3],"prompt_file":"prompts/pydocs.txt"}\n'
                          '{"slug":"b","text":"\\u00e9\\ud83d\\ude00","stop":"eos","n":1e300,"x":-0.0,"y":1.5e-320}\n')
put("records", "blank_and_crlf", '\n  \t\r\n{"a":1}\r\n\n{"b":[true,false,null]}')
put("records", "two_on_a_line", '{"a":1} {"b":2}\n')
put("records", "not_object", '[1,2]\n')
put("records", "nested", '{"a":' * 40 + '1' + '}' * 40 + '\n')
put("records", "duplicate_keys", '{"a":1,"a":"x","b":{"c":[{"d":null}]}}\n')
put("records", "bad_escape", '{"a":"\\u12"}\n')
put("records", "no_final_newline", '{"k":"v"}')
put("records", "huge_number", '{"n":1e999,"m":-1e999}\n')

# ---- CSV tables ----
for f in ["stats.csv", "mem.csv", "ratings.csv", "ratings_ollama.csv"]:
    put("csvtable", f[:-4], read("tests/fixtures/run-small/" + f))
put("csvtable", "summary_head", b"".join(read("tests/fixtures/run-small/summary.csv").splitlines(keepends=True)[:4]))
put("csvtable", "bom_quotes", '\ufeffa,"b ""q""",c\n1,"x,\ny",\n" 2 ",,"z"\r\n')
put("csvtable", "short_row", "a,b,c\n1\n")
put("csvtable", "long_row", "a,b\n1,2,3\n")
put("csvtable", "duplicate_header", "a,a\n1,2\n")
put("csvtable", "empty_header_name", "a,,c\n")
put("csvtable", "header_only", "only\n")
put("csvtable", "one_column_empty_cells", 'v\n""\nx\n""\n')
put("csvtable", "unterminated_quote", 'a\n"abc\n')
put("csvtable", "numbers", "x,y\nnan,inf\n1e308,-1e309\n0x10, 5 \n")
put("csvtable", "nul_byte", b"a,b\n1\x002,3\n")

# ---- judge answers (the model's reply text) ----
put("judge", "ok", '{"coherence": 7, "relevance": 6, "fluency": 9, "overall": 7, "rationale": "Stays on topic."}')
put("judge", "fenced", '```json\n{"coherence":1,"relevance":10,"fluency":5,"overall":5,"rationale":""}\n```\n')
put("judge", "out_of_range", '{"coherence": 11, "relevance": 0, "fluency": 9, "overall": 7, "rationale": "x"}')
put("judge", "not_whole", '{"coherence": 7.5, "relevance": 6, "fluency": 9, "overall": 7, "rationale": "x"}')
put("judge", "missing", '{"coherence": 7, "relevance": 6, "rationale": 3}')
put("judge", "prose", "The continuation is good. I would give it 8/10.")
put("judge", "nul_escape", '{"coherence":7,"relevance":6,"fluency":9,"overall":7,"rationale":"a\\u0000b"}')
put("judge", "unicode", b'  {"coherence":7,"relevance":6,"fluency":9,"overall":7,"rationale":"\xc3\xa9 \\ud83d\\ude00 \xff"}  \r\n')
put("judge", "fence_only", "``````")
put("judge", "fence_newline", "```\n```")

# ---- judge server replies: mode byte (bit 0 OpenAI, bits 1-2 status 200/200/404/500, bit 3 provenance) + body ----
ans = '{"coherence":7,"relevance":6,"fluency":9,"overall":7,"rationale":"ok"}'
put("judge_http", "ollama_ok", b"\x00" + json.dumps({"model": "judge:8b", "response": ans, "done": True}).encode())
put("judge_http", "openai_ok", b"\x01" + json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": ans}}]}).encode())
put("judge_http", "openai_refusal", b"\x01" + json.dumps({"choices": [{"message": {"refusal": "no", "content": None}}]}).encode())
put("judge_http", "ollama_no_response", b"\x00" + b'{"done":true}')
put("judge_http", "error_200", b"\x00" + b'{"error":"model is loading"}')
put("judge_http", "not_json_200", b"\x00" + b"<html>bad gateway</html>")
put("judge_http", "missing_404", b"\x04" + b'{"error":"model \\"judge:8b\\" not found, try pulling it first"}')
put("judge_http", "openai_500", b"\x07" + b'{"error":{"message":"overloaded","type":"server_error"}}')
put("judge_http", "empty_500", b"\x06")
put("judge_http", "info_ollama", b"\x08" + json.dumps({"version": "0.5.1", "models": [
    {"name": "judge:8b", "model": "judge:8b", "digest": "sha256:abc"}, {"name": "judge", "digest": 5}]}).encode())
put("judge_http", "info_openai", b"\x09" + json.dumps({"data": [{"id": "judge:8b", "digest": "d1"}, {"id": "judge"}, 7]}).encode())

# ---- sweep settings (--config files and run_meta.json "config") ----
put("sweep_config", "grid", '{"chunk_size":"16,32,64","heads_per_band":[1,2],"workers":"1-2","context":[128,512],"new":32}')
put("sweep_config", "ga", '{"search":"ga","objective":"prefill","population":8,"elites":2,"generations":4,"mutation":0.25,'
                          '"seed":42,"backend":["chunkwise","recurrent"],"_comment":"ignored"}')
put("sweep_config", "pareto", '{"search":"pareto","chunk-size":"16-256*2","workers":"1-8+2","trial_timeout":0,"progress":"no"}')
put("sweep_config", "run_meta_like", json.dumps({"model": "models/xlstm-tiny-pydocs", "prompt_file": "prompts/pydocs.txt",
                                                 "search": "random", "trials": 16, "repeats": 3, "warmup": 1,
                                                 "tool_prefix": None, "bin": None, "profile_out": None, "run": "x"}))
put("sweep_config", "unknown_key", '{"chunk":16}')
put("sweep_config", "bad_types", '{"chunk_size":{"a":1}}')
put("sweep_config", "big_numbers", '{"seed":1e300,"new":-1,"trials":1e19,"mutation":2}')
put("sweep_config", "ranges", '{"chunk_size":"4-5*2305843009213693951","heads_per_band":"1-4096","context":"1-16777216*2"}')
put("sweep_config", "empty_items", '{"workers":"1,,2","backend":"chunkwise, ,"}')
put("sweep_config", "big_grid", '{"chunk_size":"1-1000","heads_per_band":"1-1000","workers":"1-2"}')
print("seeds written under", OUT)
