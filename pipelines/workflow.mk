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
# change (they are recorded in RUN_DIR/.params.<step>, rewritten by a recipe only when they
# differ, so `make -n` writes nothing and `make -q` sees the truth).
# Variables are data: RUN is a plain name, paths hold no blanks or characters make or a
# shell would read as syntax (checked with $(error)), every value reaches the shell as one
# quoted word, and each step prints the command it runs. *_FLAGS variables are split into
# words on blanks (no quoting inside them).
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
# concurrent judge requests (xl-judge --workers: threads); JUDGE_JOBS is the old spelling
JUDGE_WORKERS ?= $(or $(JUDGE_JOBS),1)
JUDGE_FLAGS ?=
# merge, telemetry (one decode under the recommended settings, logged) and plot
MERGE_FLAGS ?=
TELEMETRY_NEW ?= 256
PLOT_FORMAT ?= both

# ---- checks: variables are data ----------------------------------------------------------
empty :=
comma := ,
ALNUM := a b c d e f g h i j k l m n o p q r s t u v w x y z A B C D E F G H I J K L M N O P Q R S T U V W X Y Z 0 1 2 3 4 5 6 7 8 9
# characters of a name (RUN), of a path (a target or prerequisite: no blank, ':', '%', '='
# or wildcard, which make reads as syntax), and of a shell word needing no quotes
NAME_CHARS := $(ALNUM) . _ -
PATH_CHARS := $(NAME_CHARS) / + $(comma) @
WORD_CHARS := $(PATH_CHARS) : % =
# $(call strip_chars,TEXT,CHARS): TEXT without any of CHARS (empty: TEXT is made of them)
strip_chars = $(if $(2),$(call strip_chars,$(subst $(firstword $(2)),,$(1)),$(wordlist 2,$(words $(2)),$(2))),$(1))
# $(call q,TEXT): TEXT as one shell word: bare when it is made of WORD_CHARS, else in single
# quotes (a ' inside written '\''). $(call qw,WORDS): each make word of WORDS so.
q = $(if $(1),$(if $(call strip_chars,$(1),$(WORD_CHARS)),'$(subst ','\'',$(1))',$(1)),'')
qw = $(foreach w,$(1),$(call q,$(w)))

# A value given on the command line or in the environment is taken as literal text, never
# as make syntax: `make RUN_DIR='$(shell ...)'` is a (refused) path, not a command.
VARIABLES := XL_BIN MODEL PROMPT RUNS RUN RUN_DIR MODE CONTEXTS BACKENDS CHUNK_SIZES HEADS WORKERS MATMULS \
  DEVICES SAMPLING NEW REPEATS WARMUP INTERLEAVE SEED TRIALS SWEEP_FLAGS SAVE_NEW SAMPLES SHARE JOBS JUDGE_API \
  JUDGE_MODEL JUDGE_JOBS JUDGE_WORKERS JUDGE_FLAGS MERGE_FLAGS TELEMETRY_NEW PLOT_FORMAT
$(foreach v,$(VARIABLES),$(if $(filter command environment%,$(firstword $(origin $(v)))),\
  $(eval override $(v) := $(subst $$,$$$$,$(value $(v))))))

ifneq ($(words $(RUN)),1)
  $(error RUN='$(RUN)': give one name of letters, digits, '.', '_' and '-' (a directory under RUNS; RUN_DIR=PATH for elsewhere))
endif
ifneq ($(call strip_chars,$(RUN),$(NAME_CHARS))$(filter .%,$(RUN)),)
  $(error RUN='$(RUN)': a name of letters, digits, '.', '_' and '-', not starting with '.' (RUN_DIR=PATH for elsewhere))
endif
# paths that are targets or prerequisites
$(foreach v,RUNS RUN_DIR PROMPT MODEL XL_BIN,$(if $(word 2,$($(v)))$(call strip_chars,$($(v)),$(PATH_CHARS)),\
  $(error $(v)='$($(v))': a path of letters, digits and . _ - / + $(comma) @ only (no blanks or shell or make syntax))))
ifeq ($(filter-out /,$(RUN_DIR)),)
  $(error RUN_DIR='$(RUN_DIR)': not a run directory)
endif
# values that are one word each (the *_FLAGS variables are lists of words)
ONE_WORD := MODE CONTEXTS BACKENDS CHUNK_SIZES HEADS WORKERS MATMULS DEVICES SAMPLING NEW REPEATS WARMUP \
  INTERLEAVE SEED TRIALS SAVE_NEW SAMPLES SHARE JOBS JUDGE_API JUDGE_MODEL JUDGE_WORKERS TELEMETRY_NEW PLOT_FORMAT
$(foreach v,$(ONE_WORD),$(if $(word 2,$($(v))),$(error $(v)='$($(v))': one value expected)))
ifneq ($(JUDGE_JOBS),)
  $(warning JUDGE_JOBS is deprecated (kept for one release): use JUDGE_WORKERS, xl-judge's --workers)
endif

# ---- derived ---------------------------------------------------------------------------
MODEL_DIR := $(if $(MODEL),$(MODEL),$(ROOT)/models/xlstm-tiny-pydocs)
MODEL_FILES := $(wildcard $(MODEL_DIR)/config.json $(MODEL_DIR)/*.safetensors $(MODEL_DIR)/tokenizer.json)
M_FLAG := $(if $(MODEL),-m $(MODEL))

TRIALS_F  := $(RUN_DIR)/trials.jsonl
OUTPUTS_F := $(RUN_DIR)/outputs.jsonl
RATINGS_F := $(RUN_DIR)/ratings.csv
OLLAMA_F  := $(RUN_DIR)/ratings_ollama.csv
OLLAMA_JSONL := $(RUN_DIR)/ratings_ollama.jsonl
MERGED_F  := $(RUN_DIR)/merged.csv $(RUN_DIR)/pareto.csv
STATS_F   := $(RUN_DIR)/stats.csv $(RUN_DIR)/mem.csv
REPORT_F  := $(RUN_DIR)/report.md
LAST_CTX  := $(lastword $(subst $(comma), ,$(CONTEXTS)))
PART      := $(RUN_DIR)/.sweep

# Each step's arguments as make words; the commands below quote every word (qw).
SWEEP_ARGS := $(M_FLAG) --prompt-file $(PROMPT) --search $(MODE) --context $(CONTEXTS) \
  --backend $(BACKENDS) --chunk-size $(CHUNK_SIZES) --heads-per-band $(HEADS) --workers $(WORKERS) \
  $(if $(MATMULS),--matmul $(MATMULS)) $(if $(DEVICES),--device $(DEVICES)) $(if $(SAMPLING),--sampling $(SAMPLING)) \
  -n $(NEW) --repeats $(REPEATS) --warmup $(WARMUP) --interleave $(INTERLEAVE) --seed $(SEED) \
  $(if $(filter random,$(MODE)),--trials $(TRIALS)) $(SWEEP_FLAGS)
SAVE_ARGS   := $(M_FLAG) -n $(SAVE_NEW) --samples $(SAMPLES) $(if $(filter yes,$(SHARE)),--share)
JUDGE_ARGS  := $(M_FLAG)
# With one sample every output continues PROMPT itself, which may lie outside the run
# directory (the judge sends only prompts inside it, or xltools' own, unless named with
# --prompt-file); with SAMPLES > 1 each output continues its own window in RUN_DIR/windows.
OLLAMA_ARGS := --api $(JUDGE_API) --judge-model $(JUDGE_MODEL) --workers $(JUDGE_WORKERS) \
  $(if $(filter 1,$(SAMPLES)),--prompt-file $(PROMPT)) $(JUDGE_FLAGS)
MERGE_ARGS  := --no-ratings --ratings $(RUN_DIR)/ratings.csv \
  $(if $(JUDGE_API),--ratings-ollama $(RUN_DIR)/ratings_ollama.csv) $(MERGE_FLAGS)
TELEMETRY_ARGS := $(M_FLAG) --prompt-file $(PROMPT) -n $(TELEMETRY_NEW) --ignore-eos -q \
  --stats-log $(RUN_DIR)/stats.csv.part --mem-log $(RUN_DIR)/mem.csv.part --mem-every 20

# The commands, built once: what a step prints is what it runs.
SWEEP_CMD     := $(call qw,$(XL_BIN)/xl-sweep -o $(PART) $(SWEEP_ARGS))
RESUME_CMD    := $(call qw,$(XL_BIN)/xl-sweep --resume $(PART))
SAVE_CMD      := $(call qw,$(XL_BIN)/xl-save $(RUN_DIR) $(SAVE_ARGS) -j $(JOBS))
JUDGE_CMD     := $(call qw,$(XL_BIN)/xl-judge internal $(RUN_DIR) $(JUDGE_ARGS))
OLLAMA_CMD    := $(call qw,$(XL_BIN)/xl-judge ollama $(RUN_DIR) $(OLLAMA_ARGS))
MERGE_CMD     := $(call qw,$(XL_BIN)/xl-merge $(RUN_DIR) $(MERGE_ARGS))
TELEMETRY_CMD := $(call qw,$(XL_BIN)/xl-decode $(TELEMETRY_ARGS))
PLOT_CMD      := $(call qw,$(XL_BIN)/xl-plot $(RUN_DIR) --format $(PLOT_FORMAT))
# A judge URL's user:password@ is a secret: printed (and recorded) as ***@.
JUDGE_API_SHOWN := $(if $(findstring @,$(JUDGE_API)),$(firstword $(subst ://, ,$(JUDGE_API)))://***@$(lastword $(subst @, ,$(JUDGE_API))),$(JUDGE_API))
OLLAMA_SHOWN  := $(call qw,$(XL_BIN)/xl-judge ollama $(RUN_DIR) $(subst $(JUDGE_API),$(JUDGE_API_SHOWN),$(OLLAMA_ARGS)))

# ---- parameter records -----------------------------------------------------------------
# RUN_DIR/.params.STEP holds "STEP: TEXT" (TEXT: the make variables the step depends on).
# Reading it while the makefile is read has no side effect; when it differs (or is missing)
# its rule runs and rewrites it (temp + rename), which makes it newer than the step's
# target. Nothing is written while reading the makefile, so `make -n` writes nothing.
PARAMS_sweep     := $(SWEEP_ARGS)
PARAMS_save      := $(SAVE_ARGS)
PARAMS_judge     := $(JUDGE_ARGS)
PARAMS_ollama    := $(if $(JUDGE_API),$(subst $(JUDGE_API),$(JUDGE_API_SHOWN),$(OLLAMA_ARGS)),off)
PARAMS_merge     := $(MERGE_ARGS)
PARAMS_telemetry := $(M_FLAG) $(TELEMETRY_NEW) $(LAST_CTX)
PARAMS_plot      := $(PLOT_FORMAT)
STEPS := sweep save judge ollama merge telemetry plot
streq = $(if $(subst x$(1),,x$(2))$(subst x$(2),,x$(1)),,T)
params_text = $(strip $(1): $(PARAMS_$(1)))
params_same = $(call streq,$(strip $(file <$(RUN_DIR)/.params.$(1))),$(call params_text,$(1)))
# ($$ so that eval expands each value once: a value's text is never read as make syntax)
define params_rule
$$(RUN_DIR)/.params.$(1): $$(if $$(call params_same,$(1)),,FORCE)
	@mkdir -p $$(call q,$$(RUN_DIR)) && printf '%s\n' $$(call q,$$(call params_text,$(1))) > $$(call q,$$(RUN_DIR)/.params.$(1).tmp) && \
	  mv -f $$(call q,$$(RUN_DIR)/.params.$(1).tmp) $$(call q,$$(RUN_DIR)/.params.$(1))
endef
$(foreach s,$(STEPS),$(eval $(call params_rule,$(s))))
FORCE:

.DELETE_ON_ERROR:
.SUFFIXES:
.PHONY: demo report sweep save judge judge-ollama merge telemetry plot clean-run help FORCE
.DEFAULT_GOAL := demo

demo: $(REPORT_F)
	@printf 'report: %s\n' $(call q,$(REPORT_F))

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
	@if [ -f $(call q,$(PART)/trials.jsonl) ] && cmp -s $(call q,$(RUN_DIR)/.params.sweep) $(call q,$(PART)/.params); then \
	  printf 'xl-sweep: resuming %s\n%s\n' $(call q,$(PART)) $(call q,$(RESUME_CMD)); \
	  $(RESUME_CMD); \
	else \
	  rm -rf $(call q,$(PART)) && mkdir -p $(call q,$(PART)) && cp $(call q,$(RUN_DIR)/.params.sweep) $(call q,$(PART)/.params) && \
	  printf '%s\n' $(call q,$(SWEEP_CMD)) && \
	  $(SWEEP_CMD); \
	fi
	rm -rf $(call qw,$(RUN_DIR)/outputs $(OUTPUTS_F) $(RUN_DIR)/ids $(RUN_DIR)/windows)
	cd $(call q,$(PART)) && for f in *; do [ "$$f" = trials.jsonl ] || mv -f "$$f" ..; done
	mv -f $(call q,$(PART)/trials.jsonl) $(call q,$@)
	rm -rf $(call q,$(PART))

# 2. save: SAMPLES continuations (prompt windows of the trial's context) of each successful
#    trial under its own settings. New save parameters (e.g. another MODEL) redo every
#    output (--force).
$(OUTPUTS_F): $(TRIALS_F) $(RUN_DIR)/.params.save | $(XL_BIN)/xl-save $(XL_BIN)/xl-decode
	$(SAVE_CMD) $(if $(filter $(RUN_DIR)/.params.save,$?),--force)

# 3. judge: log-prob scoring by the critic model (always) ...
$(RATINGS_F): $(OUTPUTS_F) $(RUN_DIR)/.params.judge | $(XL_BIN)/xl-judge
	$(JUDGE_CMD)

#    ... and by an external LLM when JUDGE_API is set (Ollama, or OpenAI-compatible
#    with JUDGE_FLAGS=--openai; a key in $$XL_JUDGE_API_KEY). It resumes from
#    ratings_ollama.jsonl after a failed run, unless the outputs or the judge settings are
#    newer than it (then --force). The printed command shows a user:password@ as ***@.
$(OLLAMA_F): $(OUTPUTS_F) $(RUN_DIR)/.params.ollama | $(XL_BIN)/xl-judge
	$(if $(JUDGE_API),,@echo "JUDGE_API is not set: no external judge" >&2; exit 2)
	@force=; if [ $(call q,$(OUTPUTS_F)) -nt $(call q,$(OLLAMA_JSONL)) ] || [ $(call q,$(RUN_DIR)/.params.ollama) -nt $(call q,$(OLLAMA_JSONL)) ]; \
	then force=--force; fi; \
	printf '%s%s\n' $(call q,$(OLLAMA_SHOWN)) "$${force:+ $$force}"; \
	$(OLLAMA_CMD) $$force

# 4. merge: speed joined with quality, Pareto fronts and recommended profiles per context.
$(MERGED_F) &: $(TRIALS_F) $(RATINGS_F) $(if $(JUDGE_API),$(OLLAMA_F)) $(RUN_DIR)/.params.merge | $(XL_BIN)/xl-merge
	$(MERGE_CMD)

# 5. telemetry: one decode of the prompt under the profile recommended for the longest
#    context (the sweep's best when there is none), logging per-step speed and memory for
#    the report's step and memory figures. The logs are renamed into place when complete.
#    The profile is chosen when the step runs (xl-merge has just written it).
$(STATS_F) &: $(MERGED_F) $(RUN_DIR)/.params.telemetry | $(XL_BIN)/xl-decode
	@p=$(call q,$(RUN_DIR)/profile_ctx$(LAST_CTX).json); [ -f "$$p" ] || p=$(call q,$(RUN_DIR)/best_profile.json); \
	printf '%s --profile %s\n' $(call q,$(TELEMETRY_CMD)) "$$p"; \
	$(TELEMETRY_CMD) --profile "$$p" > /dev/null && \
	mv -f $(call q,$(RUN_DIR)/mem.csv.part) $(call q,$(RUN_DIR)/mem.csv) && \
	mv -f $(call q,$(RUN_DIR)/stats.csv.part) $(call q,$(RUN_DIR)/stats.csv)

# 6. plot: figures and report.md.
$(REPORT_F): $(MERGED_F) $(STATS_F) $(RUN_DIR)/.params.plot | $(XL_BIN)/xl-plot
	$(PLOT_CMD)

$(XL_BIN)/%:
	@printf '%s is missing: build the tools first (make)\n' $(call q,$@) >&2; exit 1

clean-run:
	rm -rf $(call q,$(RUN_DIR))

help:
	@printf '%s\n' 'make -f pipelines/workflow.mk [demo|report|sweep|save|judge|judge-ollama|merge|plot|clean-run] VAR=value...' \
	  $(call q,  RUN=$(RUN) RUN_DIR=$(RUN_DIR)  MODEL=$(MODEL_DIR)  PROMPT=$(PROMPT)) \
	  $(call q,  MODE=$(MODE) CONTEXTS=$(CONTEXTS) BACKENDS=$(BACKENDS) CHUNK_SIZES=$(CHUNK_SIZES) HEADS=$(HEADS) WORKERS=$(WORKERS)) \
	  $(call q,  MATMULS=$(MATMULS) DEVICES=$(DEVICES) SAMPLING=$(SAMPLING) SWEEP_FLAGS=$(SWEEP_FLAGS)) \
	  $(call q,  NEW=$(NEW) REPEATS=$(REPEATS) WARMUP=$(WARMUP) INTERLEAVE=$(INTERLEAVE) SEED=$(SEED) TRIALS=$(TRIALS)) \
	  $(call q,  SAVE_NEW=$(SAVE_NEW) SAMPLES=$(SAMPLES) SHARE=$(SHARE) JOBS=$(JOBS)) \
	  $(call q,  JUDGE_API=$(JUDGE_API_SHOWN) JUDGE_MODEL=$(JUDGE_MODEL) JUDGE_WORKERS=$(JUDGE_WORKERS) JUDGE_FLAGS=$(JUDGE_FLAGS)) \
	  $(call q,  MERGE_FLAGS=$(MERGE_FLAGS) TELEMETRY_NEW=$(TELEMETRY_NEW) PLOT_FORMAT=$(PLOT_FORMAT))
