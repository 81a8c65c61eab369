#!/usr/bin/env python3
"""hf_bench: Hugging Face transformers on an xLSTM checkpoint (one xl-init writes, or a real
xLSTM-7B-family one), the path users have: AutoModelForCausalLM with the kernels transformers
ships (the native torch kernels unless the `xlstm` package is installed; the record says
which), mode "inference", bf16 weights on a GPU or fp32 on the CPU.

Measures, one NDJSON record per line on stdout:
  hf_env      versions, device, dtype, threads, the config's kernels and chunk size,
              load seconds, parameter count and weight bytes
  hf_prefill  one forward over N random token ids from an empty state (model(ids,
              use_cache=True): every position's logits, as generate() computes them), per
              N in --prefill: seconds (median of --reps), tok/s, peak memory of that run
  hf_decode   --steps greedy tokens after a prompt of N tokens, per N in --decode-after:
              each step is model(next_id, cache_params=cache, use_cache=True) on the cache
              the prompt left (the recurrent state), argmax on the device; tok/s over the
              steps after one untimed step; peak memory
  hf_memory   the whole run's peak: torch.cuda.max_memory_allocated on a GPU, the process's
              peak RSS on the CPU, against the weights
  hf_skip     a length not measured (--budget spent, out of memory) and why
If the model's forward takes no recurrent cache (a transformers version that only decodes
through generate()), decode is timed as generate(max_new_tokens=steps) minus the prefill of
the same prompt (the record's "method" says which).

Usage: hf_bench.py MODEL_DIR [--device cuda|cuda:N|cpu] [--dtype bf16|fp32|fp16]
           [--threads N] [--prefill 2048,16384] [--decode-after 2048,16384] [--steps 32]
           [--reps 1] [--warmup 128] [--budget SECONDS] [--label NAME] [--seed 0]
Defaults: cuda when torch sees a GPU, else cpu; bf16 on cuda, fp32 on cpu; --threads on
cpu: torch's default. Exit 77 when torch or transformers is missing (the test suite's skip).
Run by tests/bench_cuda.sh (make bench-cuda) on the 7B checkpoint; for the CPU issue's
comparisons: --device cpu --threads N.
"""
import argparse
import inspect
import json
import math
import os
import platform
import resource
import statistics
import sys
import time


def emit(rec):
    print(json.dumps(rec, separators=(",", ":")), flush=True)


def parse_list(s):
    out = []
    for x in s.split(","):
        x = x.strip()
        if x:
            v = int(x)
            if v <= 0:
                raise argparse.ArgumentTypeError("lengths must be positive: %r" % s)
            out.append(v)
    return out


def rss_peak_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9   # ru_maxrss is KiB on Linux


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="checkpoint directory (config.json + safetensors)")
    ap.add_argument("--device", default=None, help="cuda, cuda:N or cpu (default: cuda if available)")
    ap.add_argument("--dtype", choices=["bf16", "fp32", "fp16"], default=None, help="weights and compute (default bf16 on cuda, fp32 on cpu)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (torch.set_num_threads)")
    ap.add_argument("--prefill", type=parse_list, default=[2048, 16384], help="prompt lengths to time (default 2048,16384)")
    ap.add_argument("--decode-after", type=parse_list, default=[2048, 16384], help="contexts to decode after (default 2048,16384)")
    ap.add_argument("--steps", type=int, default=32, help="decode steps per context (default 32)")
    ap.add_argument("--reps", type=int, default=1, help="prefill runs per length, median reported (default 1)")
    ap.add_argument("--warmup", type=int, default=128, help="tokens of the untimed warm-up prefill (default 128)")
    ap.add_argument("--budget", type=float, default=0, help="seconds after which no new length starts (0: none)")
    ap.add_argument("--chunk-size", type=int, default=0, help="override the config's chunk_size")
    ap.add_argument("--label", default=None, help="model label in the records (default: the directory's name)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.steps < 2:
        ap.error("--steps must be at least 2")

    try:
        import torch
        import transformers
        from transformers import AutoConfig, AutoModelForCausalLM
    except Exception as e:   # noqa: BLE001 - any import failure means "cannot run here"
        print("skipped: python3 has no torch/transformers (%s)" % e)
        return 77

    t_start = time.perf_counter()
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    on_gpu = device.startswith("cuda")
    if on_gpu and not torch.cuda.is_available():
        print("skipped: torch sees no GPU (device %s)" % device)
        return 77
    dtype_name = a.dtype or ("bf16" if on_gpu else "fp32")
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[dtype_name]
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if on_gpu:
        dev = torch.device(device)
        torch.cuda.set_device(dev.index if dev.index is not None else 0)   # "cuda" means device 0
        if dtype == torch.float32:
            try:   # plain fp32 where fp32 is asked for (no TF32), as the C engine's fp32 path
                torch.backends.cuda.matmul.allow_tf32 = False
                torch.backends.cudnn.allow_tf32 = False
            except Exception:   # noqa: BLE001 - newer torch may refuse the legacy switch
                pass
    label = a.label or os.path.basename(os.path.normpath(a.model))

    def sync():
        if on_gpu:
            torch.cuda.synchronize()

    # ---- load ----
    config = AutoConfig.from_pretrained(a.model)
    if hasattr(config, "mode"):
        config.mode = "inference"
    if a.chunk_size > 0:
        config.chunk_size = a.chunk_size
    config.use_cache = True
    tv = tuple(int(x) for x in transformers.__version__.split(".")[:2] if x.isdigit())
    load_kw = {"config": config}
    # "dtype" from transformers 4.56 on; older versions take torch_dtype (and would store an
    # unknown "dtype" in the config without complaint, loading fp32)
    load_kw["dtype" if tv >= (4, 56) else "torch_dtype"] = dtype
    try:
        import accelerate  # noqa: F401 - device_map needs it
        have_accelerate = True
    except Exception:   # noqa: BLE001
        have_accelerate = False
    if on_gpu and have_accelerate:
        load_kw["device_map"] = device
    sync()
    t0 = time.perf_counter()
    model, info = AutoModelForCausalLM.from_pretrained(a.model, output_loading_info=True, **load_kw)
    missing = sorted(info.get("missing_keys") or [])
    unexpected = sorted(info.get("unexpected_keys") or [])
    if missing or unexpected:
        print("hf_bench: the checkpoint's tensors do not match %s: missing %s, unexpected %s" % (
            type(model).__name__, missing[:4], unexpected[:4]), file=sys.stderr)
    if next(model.parameters()).dtype != dtype:
        model = model.to(dtype)
    if next(model.parameters()).device.type != torch.device(device).type:
        model = model.to(device)
    model.eval()
    sync()
    load_s = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    vocab = int(getattr(model.config, "vocab_size", 50304))

    external = None
    try:
        mod = sys.modules[type(model).__module__]
        external = bool(getattr(mod, "external_xlstm", False))
    except Exception:   # noqa: BLE001
        pass
    fwd_params = inspect.signature(model.forward).parameters
    cache_kw = "cache_params" if "cache_params" in fwd_params else ("past_key_values" if "past_key_values" in fwd_params else None)
    cfg = model.config
    env = {
        "bench": "hf_env", "model": label, "dir": os.path.abspath(a.model), "device": device,
        "device_name": torch.cuda.get_device_name() if on_gpu else platform.processor() or platform.machine(),
        "dtype": dtype_name, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "transformers": transformers.__version__, "python": platform.python_version(),
        "cuda_runtime": torch.version.cuda, "model_class": type(model).__name__, "external_xlstm_kernels": external,
        "mode": getattr(cfg, "mode", None), "chunkwise_kernel": getattr(cfg, "chunkwise_kernel", None),
        "sequence_kernel": getattr(cfg, "sequence_kernel", None), "step_kernel": getattr(cfg, "step_kernel", None),
        "chunk_size": getattr(cfg, "chunk_size", None), "max_inference_chunksize": getattr(cfg, "max_inference_chunksize", None),
        "inference_state_dtype": getattr(cfg, "inference_state_dtype", None), "cache_arg": cache_kw,
        "params": params, "weights_gb": weight_bytes / 1e9, "load_s": round(load_s, 3),
        "missing_keys": len(missing), "unexpected_keys": len(unexpected),
    }
    emit(env)

    # ---- the measurements ----
    gen = torch.Generator().manual_seed(a.seed)
    maxlen = max(a.prefill + a.decode_after + [a.warmup])
    ids_all = torch.randint(2, max(3, vocab), (1, maxlen), generator=gen).to(device)

    def run_prefill(n):
        """one forward over n tokens from the empty state; returns (seconds, cache, next id, finite)"""
        ids = ids_all[:, :n]
        sync()
        t = time.perf_counter()
        with torch.inference_mode():
            out = model(input_ids=ids, use_cache=True)
            logits = out.logits[:, -1, :]
            nxt = logits.argmax(-1, keepdim=True)
            finite = torch.isfinite(logits).all()
        sync()
        dt = time.perf_counter() - t
        cache = getattr(out, "cache_params", None)
        if cache is None:
            cache = getattr(out, "past_key_values", None)
        del out, logits
        return dt, cache, nxt, bool(finite)

    def run_decode(cache, nxt, steps):
        """steps greedy tokens on the recurrent cache; the first step untimed. Returns tok/s, finite"""
        with torch.inference_mode():
            ok = True
            t = None
            for i in range(steps + 1):
                if i == 1:
                    sync()
                    t = time.perf_counter()
                out = model(input_ids=nxt, use_cache=True, **{cache_kw: cache})
                newer = getattr(out, cache_kw, None)
                if newer is not None:
                    cache = newer
                logits = out.logits[:, -1, :]
                nxt = logits.argmax(-1, keepdim=True)
            ok = bool(torch.isfinite(logits).all())
        sync()
        return steps / (time.perf_counter() - t), ok

    def run_generate_decode(n, steps):
        """decode through generate(): (generate n + steps) - (prefill n), both timed"""
        ids = ids_all[:, :n]
        with torch.inference_mode():
            kw = dict(max_new_tokens=1, min_new_tokens=1, do_sample=False, use_cache=True)
            sync()
            t = time.perf_counter()
            model.generate(ids, **kw)
            sync()
            t1 = time.perf_counter() - t
            kw.update(max_new_tokens=steps + 1, min_new_tokens=steps + 1)
            t = time.perf_counter()
            model.generate(ids, **kw)
            sync()
            t2 = time.perf_counter() - t
        return steps / max(t2 - t1, 1e-9), True

    def reset_peak():
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()

    def peak_gb():
        return torch.cuda.max_memory_allocated() / 1e9 if on_gpu else rss_peak_gb()

    # warm-up: kernels load, cuBLAS picks its algorithms, the allocator grows
    _, cache, nxt, _ = run_prefill(min(a.warmup, maxlen))
    if cache_kw and cache is not None:
        run_decode(cache, nxt, 2)
    del cache
    overall_peak = 0.0
    for n in sorted(set(a.prefill) | set(a.decode_after)):
        spent = time.perf_counter() - t_start
        if a.budget > 0 and spent > a.budget:
            emit({"bench": "hf_skip", "model": label, "tokens": n, "why": "budget", "budget_s": a.budget, "spent_s": round(spent, 1)})
            continue
        try:
            reset_peak()
            times, cache, nxt, finite = [], None, None, True
            reps = a.reps if n in a.prefill else 1
            for r in range(reps):
                cache = nxt = None
                dt, cache, nxt, fin = run_prefill(n)
                times.append(dt)
                finite = finite and fin
            pf_peak = peak_gb()
            if n in a.prefill:
                med = statistics.median(times)
                emit({"bench": "hf_prefill", "model": label, "tokens": n, "reps": reps, "seconds": round(med, 4),
                      "ms": round(med * 1e3, 2), "ms_best": round(min(times) * 1e3, 2), "tok_s": round(n / med, 2),
                      "ttft_s": round(med, 4), "peak_gb": round(pf_peak, 3), "finite": finite, "device": device,
                      "dtype": dtype_name, "threads": torch.get_num_threads()})
            if n in a.decode_after:
                if cache_kw and cache is not None:
                    tps, fin = run_decode(cache, nxt, a.steps)
                    method = "forward(%s)" % cache_kw
                else:
                    del cache
                    cache = None
                    tps, fin = run_generate_decode(n, a.steps)
                    method = "generate - prefill"
                emit({"bench": "hf_decode", "model": label, "context": n, "steps": a.steps, "tok_s": round(tps, 3),
                      "ms_per_token": round(1e3 / tps, 3), "peak_gb": round(peak_gb(), 3), "finite": fin, "method": method,
                      "device": device, "dtype": dtype_name, "threads": torch.get_num_threads()})
            overall_peak = max(overall_peak, peak_gb())
            del cache, nxt
        except Exception as e:   # noqa: BLE001 - out of memory and the like: say so, go on
            if on_gpu:
                torch.cuda.empty_cache()
            emit({"bench": "hf_skip", "model": label, "tokens": n, "why": type(e).__name__, "error": str(e)[:300]})
    rec = {"bench": "hf_memory", "model": label, "device": device, "weights_gb": round(weight_bytes / 1e9, 3),
           "peak_gb": round(overall_peak, 3), "peak_over_weights_gb": round(overall_peak - weight_bytes / 1e9, 3),
           "rss_peak_gb": round(rss_peak_gb(), 3), "what": "torch.cuda.max_memory_allocated" if on_gpu else "peak RSS",
           "total_s": round(time.perf_counter() - t_start, 1)}
    emit(rec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
