# pipelines/workflow.mk: the optimize -> save -> judge -> merge -> plot workflow as make
# recipes over FILE targets, so a re-run redoes only what is out of date:
#
#   RUN_DIR/trials.jsonl   xl-sweep     (+ run_meta.json, summary.csv, best.json, ids/)
#   RUN_DIR/outputs.jsonl  xl-save      (+ outputs/<slug>.txt, windows/ctx<N>_s<k>.txt)
#   RUN_DIR/ratings.csv    xl-judge internal   (+ ratings.jsonl)
#   RUN_DIR/ratings_ollama.csv  xl-judge ollama  (only when JUDGE_API is set)
#   RUN_DIR/merged.csv, pareto.csv  xl-merge  (+ quality.csv, recommended.json, profile_ctx<N>.json)
#   RUN_DIR/stats.csv, mem.csv  xl-decode under the recommended profile, with telemetry logs
#   RUN_DIR/report.md      xl-plot      (+ plots/*.png|svg)
#
# Usage:  make -f pipelines/workflow.mk [demo|report|sweep|save|judge|merge|telemetry|plot|clean-run|help] VAR=value...
# Each step is redone when its inputs are newer or when the make variables it depends on
# change (they are recorded in RUN_DIR/.params.<step>, rewritten only when they differ).
# A failed or interrupted step leaves no half-made target: .DELETE_ON_ERROR removes it, the
# tools write their files by temp + rename, and the sweep runs in RUN_DIR/.sweep (resumed
# with xl-sweep --resume after an interruption, moved into place when it finishes).
# Rebuilding a tool does not by itself redo results (the tools are order-only
# prerequisites): use `make ... clean-run` or delete the step's target to redo one.
# Not for: building the tools (the top-level Makefile does; `make demo` builds first).

ROOT    := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
XL_BIN  ?= $(ROOT)/bin

# ---- parameters -----------------------------------------------------------------------
MODEL       ?=
PROMPT      ?= $(ROOT)/prompts/pydocs.txt
RUNS        ?= $(ROOT)/runs
RUN         ?= demo
RUN_DIR     ?= $(RUNS)/$(RUN)
# sweep (xl-sweep): search mode and space; LIST = 16,64 or a range 1-2. Every knob is a
# run setting of xl-prefill/xl-decode; MATMULS puts the output-changing bf16 precision
# against fp32; DEVICES (e.g. cpu,cuda) and SAMPLING (e.g. greedy,t0.8k40) are opt-in.
MODE        ?= grid
CONTEXTS    ?= 64,256
BACKENDS    ?= chunkwise,recurrent
CHUNK_SIZES ?= 16,64
HEADS       ?= 1,2
WORKERS     ?= 1-2
MATMULS     ?= fp32,bf16
DEVICES     ?=
SAMPLING    ?=
NEW         ?= 32
# timed runs per trial (mean, sd, 95% interval), interleaved INTERLEAVE trials at a time;
# trials of one interleaved batch are compared round by round, so the demo runs all in one
REPEATS     ?= 5
WARMUP      ?= 1
INTERLEAVE  ?= 64
SEED        ?= 42
TRIALS      ?= 8
SWEEP_FLAGS ?=
# save (xl-save): tokens per continuation, prompt windows per trial (their quality is
# compared pair by pair with the fp32 reference), generations at once; SHARE=yes gives
# settings that differ only in knobs that cannot change the output one generation
SAVE_NEW    ?= 64
SAMPLES     ?= 4
SHARE       ?= yes
JOBS        ?= 1
# judges: internal critic = MODEL; external LLM judge only when JUDGE_API is set
JUDGE_API   ?=
JUDGE_MODEL ?= llama3.1:8b
JUDGE_JOBS  ?= 1
JUDGE_FLAGS ?=
# merge, telemetry (one decode under the recommended settings, logged) and plot
MERGE_FLAGS ?=
TELEMETRY_NEW ?= 256
PLOT_FORMAT ?= both

# ---- derived ---------------------------------------------------------------------------
MODEL_DIR := $(if $(MODEL),$(MODEL),$(ROOT)/models/xlstm-tiny-pydocs)
MODEL_FILES := $(wildcard $(MODEL_DIR)/config.json $(MODEL_DIR)/*.safetensors $(MODEL_DIR)/tokenizer.json)
M_FLAG := $(if $(MODEL),-m $(MODEL))

SWEEP_ARGS := $(M_FLAG) --prompt-file $(PROMPT) --search $(MODE) --context $(CONTEXTS) \
  --backend $(BACKENDS) --chunk-size $(CHUNK_SIZES) --heads-per-band $(HEADS) --workers $(WORKERS) \
  $(if $(MATMULS),--matmul $(MATMULS)) $(if $(DEVICES),--device $(DEVICES)) $(if $(SAMPLING),--sampling $(SAMPLING)) \
  -n $(NEW) --repeats $(REPEATS) --warmup $(WARMUP) --interleave $(INTERLEAVE) --seed $(SEED) \
  $(if $(filter random,$(MODE)),--trials $(TRIALS)) $(SWEEP_FLAGS)
SAVE_ARGS   := $(M_FLAG) -n $(SAVE_NEW) --samples $(SAMPLES) $(if $(filter yes,$(SHARE)),--share)
JUDGE_ARGS  := $(M_FLAG)
OLLAMA_ARGS := --api $(JUDGE_API) --model $(JUDGE_MODEL) -j $(JUDGE_JOBS) $(JUDGE_FLAGS)
MERGE_ARGS   = --no-ratings --ratings $(RUN_DIR)/ratings.csv \
  $(if $(JUDGE_API),--ratings-ollama $(RUN_DIR)/ratings_ollama.csv) $(MERGE_FLAGS)

TRIALS_F  := $(RUN_DIR)/trials.jsonl
OUTPUTS_F := $(RUN_DIR)/outputs.jsonl
RATINGS_F := $(RUN_DIR)/ratings.csv
OLLAMA_F  := $(RUN_DIR)/ratings_ollama.csv
MERGED_F  := $(RUN_DIR)/merged.csv $(RUN_DIR)/pareto.csv
STATS_F   := $(RUN_DIR)/stats.csv $(RUN_DIR)/mem.csv
REPORT_F  := $(RUN_DIR)/report.md
comma     := ,
LAST_CTX  := $(lastword $(subst $(comma), ,$(CONTEXTS)))
PART      := $(RUN_DIR)/.sweep

# ---- parameter records -----------------------------------------------------------------
# $(call params,STEP,TEXT): RUN_DIR/.params.STEP holds "STEP: TEXT"; it is rewritten (and so
# becomes newer than the step's target) only when TEXT changed. Done while the makefile
# is read, so `make -q` sees the truth and an unchanged run runs no recipe at all.
NO_RUN_GOALS := help clean-run
ifneq ($(filter-out $(NO_RUN_GOALS),$(or $(MAKECMDGOALS),demo)),)
$(shell mkdir -p $(RUN_DIR))
streq = $(if $(subst x$(1),,x$(2))$(subst x$(2),,x$(1)),,T)
params = $(if $(call streq,$(strip $(file <$(RUN_DIR)/.params.$(1))),$(strip $(1): $(2))),,$(file >$(RUN_DIR)/.params.$(1),$(strip $(1): $(2))))
$(call params,sweep,$(SWEEP_ARGS))
$(call params,save,$(SAVE_ARGS))
$(call params,judge,$(JUDGE_ARGS))
$(call params,ollama,$(if $(JUDGE_API),$(OLLAMA_ARGS),off))
$(call params,merge,$(MERGE_ARGS))
$(call params,telemetry,$(M_FLAG) $(TELEMETRY_NEW) $(LAST_CTX))
$(call params,plot,$(PLOT_FORMAT))
endif

.DELETE_ON_ERROR:
.SUFFIXES:
.PHONY: demo report sweep save judge judge-ollama merge telemetry plot clean-run help
.DEFAULT_GOAL := demo

demo: $(REPORT_F)
	@echo "report: $(REPORT_F)"

report plot: $(REPORT_F)
sweep: $(TRIALS_F)
save: $(OUTPUTS_F)
judge: $(RATINGS_F) $(if $(JUDGE_API),$(OLLAMA_F))
judge-ollama: $(OLLAMA_F)
merge: $(MERGED_F)
telemetry: $(STATS_F)

# 1. sweep: measure every setting. Runs in .sweep, resumed there after an interruption
#    with the same parameters; the finished files are moved up with trials.jsonl last.
#    A new sweep makes every later file stale, so the saved outputs go too.
$(TRIALS_F): $(RUN_DIR)/.params.sweep $(PROMPT) $(MODEL_FILES) | $(XL_BIN)/xl-sweep
	@if [ -f $(PART)/trials.jsonl ] && cmp -s $(RUN_DIR)/.params.sweep $(PART)/.params; then \
	  echo "xl-sweep: resuming $(PART)"; \
	  $(XL_BIN)/xl-sweep --resume $(PART); \
	else \
	  rm -rf $(PART) && mkdir -p $(PART) && cp $(RUN_DIR)/.params.sweep $(PART)/.params && \
	  echo "xl-sweep -o $(PART) $(strip $(SWEEP_ARGS))" && \
	  $(XL_BIN)/xl-sweep -o $(PART) $(SWEEP_ARGS); \
	fi
	rm -rf $(RUN_DIR)/outputs $(OUTPUTS_F) $(RUN_DIR)/ids $(RUN_DIR)/windows
	cd $(PART) && for f in *; do [ "$$f" = trials.jsonl ] || mv -f "$$f" ..; done
	mv -f $(PART)/trials.jsonl $@
	rm -rf $(PART)

# 2. save: SAMPLES continuations (prompt windows of the trial's context) of each successful
#    trial under its own settings. New save parameters (e.g. another MODEL) redo every
#    output (--force).
$(OUTPUTS_F): $(TRIALS_F) $(RUN_DIR)/.params.save | $(XL_BIN)/xl-save $(XL_BIN)/xl-decode
	$(XL_BIN)/xl-save $(RUN_DIR) $(SAVE_ARGS) -j $(JOBS) $(if $(filter $(RUN_DIR)/.params.save,$?),--force)

# 3. judge: log-prob scoring by the critic model (always) ...
$(RATINGS_F): $(OUTPUTS_F) $(RUN_DIR)/.params.judge | $(XL_BIN)/xl-judge
	$(XL_BIN)/xl-judge internal $(RUN_DIR) $(JUDGE_ARGS)

#    ... and by an external LLM when JUDGE_API is set (Ollama, or OpenAI-compatible
#    with JUDGE_FLAGS=--openai). It resumes from ratings_ollama.jsonl after a failed run,
#    unless the outputs or the judge settings are newer than it (then --force).
OLLAMA_JSONL := $(RUN_DIR)/ratings_ollama.jsonl
$(OLLAMA_F): $(OUTPUTS_F) $(RUN_DIR)/.params.ollama | $(XL_BIN)/xl-judge
	$(if $(JUDGE_API),,@echo "JUDGE_API is not set: no external judge" >&2; exit 2)
	$(XL_BIN)/xl-judge ollama $(RUN_DIR) $(OLLAMA_ARGS) \
	  $$([ $(OUTPUTS_F) -nt $(OLLAMA_JSONL) ] || [ $(RUN_DIR)/.params.ollama -nt $(OLLAMA_JSONL) ] && echo --force)

# 4. merge: speed joined with quality, Pareto fronts and recommended profiles per context.
$(MERGED_F) &: $(TRIALS_F) $(RATINGS_F) $(if $(JUDGE_API),$(OLLAMA_F)) $(RUN_DIR)/.params.merge | $(XL_BIN)/xl-merge
	$(XL_BIN)/xl-merge $(RUN_DIR) $(MERGE_ARGS)

# 5. telemetry: one decode of the prompt under the profile recommended for the longest
#    context (the sweep's best when there is none), logging per-step speed and memory for
#    the report's step and memory figures. The logs are renamed into place when complete.
$(STATS_F) &: $(MERGED_F) $(RUN_DIR)/.params.telemetry | $(XL_BIN)/xl-decode
	@p=$(RUN_DIR)/profile_ctx$(LAST_CTX).json; [ -f $$p ] || p=$(RUN_DIR)/best_profile.json; \
	echo "$(XL_BIN)/xl-decode --profile $$p -n $(TELEMETRY_NEW) --stats-log $(RUN_DIR)/stats.csv --mem-log $(RUN_DIR)/mem.csv"; \
	$(XL_BIN)/xl-decode $(M_FLAG) --profile $$p --prompt-file $(PROMPT) -n $(TELEMETRY_NEW) --ignore-eos -q \
	  --stats-log $(RUN_DIR)/stats.csv.part --mem-log $(RUN_DIR)/mem.csv.part --mem-every 20 > /dev/null && \
	mv -f $(RUN_DIR)/mem.csv.part $(RUN_DIR)/mem.csv && mv -f $(RUN_DIR)/stats.csv.part $(RUN_DIR)/stats.csv

# 6. plot: figures and report.md.
$(REPORT_F): $(MERGED_F) $(STATS_F) $(RUN_DIR)/.params.plot | $(XL_BIN)/xl-plot
	$(XL_BIN)/xl-plot $(RUN_DIR) --format $(PLOT_FORMAT)

$(XL_BIN)/%:
	@echo "$@ is missing: build the tools first (make)" >&2; exit 1

clean-run:
	rm -rf $(RUN_DIR)

help:
	@echo "make -f pipelines/workflow.mk [demo|report|sweep|save|judge|judge-ollama|merge|plot|clean-run] VAR=value..."
	@echo "  RUN_DIR=$(RUN_DIR)  MODEL=$(MODEL_DIR)  PROMPT=$(PROMPT)"
	@echo "  MODE=$(MODE) CONTEXTS=$(CONTEXTS) BACKENDS=$(BACKENDS) CHUNK_SIZES=$(CHUNK_SIZES) HEADS=$(HEADS) WORKERS=$(WORKERS)"
	@echo "  MATMULS=$(MATMULS) DEVICES=$(DEVICES) SAMPLING=$(SAMPLING)"
	@echo "  NEW=$(NEW) REPEATS=$(REPEATS) WARMUP=$(WARMUP) INTERLEAVE=$(INTERLEAVE) SEED=$(SEED) TRIALS=$(TRIALS)"
	@echo "  SAVE_NEW=$(SAVE_NEW) SAMPLES=$(SAMPLES) SHARE=$(SHARE) JOBS=$(JOBS)"
	@echo "  JUDGE_API=$(JUDGE_API) JUDGE_MODEL=$(JUDGE_MODEL) JUDGE_JOBS=$(JUDGE_JOBS) TELEMETRY_NEW=$(TELEMETRY_NEW) PLOT_FORMAT=$(PLOT_FORMAT)"
